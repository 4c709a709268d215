"""OpenAPI description of the SecuPass key API (/api/v1/keys/), merged into the
schema that /api/v1/schema serves. Field formats: DESIGN.md section 4; binary
values are unpadded base64url."""

_ERROR = {"$ref": "#/components/responses/Error"}
_AUTH = {"$ref": "#/components/responses/Unauthorized"}
_NOT_FOUND = {"$ref": "#/components/responses/NotFound"}
_B64U = {"type": "string", "pattern": "^[A-Za-z0-9_-]*$"}
_KEY_ID = {
    "name": "key_id",
    "in": "path",
    "required": True,
    "schema": {"type": "string", "format": "uuid"},
}
_PUBLIC_KEY = {
    "type": "object",
    "properties": {
        "key_id": {"type": "string", "format": "uuid"},
        "email": {"type": "string", "format": "email"},
        "ecdh_public": _B64U,
        "ecdsa_public": _B64U,
        "fingerprint": {"type": "string"},
        "fingerprint_hex": {"type": "string", "pattern": "^[0-9a-f]{64}$"},
    },
}
_RECORD = {
    "type": "object",
    "properties": {
        "kdf": {"const": "pbkdf2-sha256"},
        "iterations": {"type": "integer", "minimum": 600000},
        "salt": _B64U,
        "private_record": _B64U,
        "keyring": _B64U,
        "keyring_version": {"type": "integer", "minimum": 1},
    },
}


def _op(summary, description, responses, body=None, parameters=None):
    operation = {"summary": summary, "description": description, "responses": responses}
    if body is not None:
        operation["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": body}},
        }
    if parameters:
        operation["parameters"] = parameters
    return operation


def _ok(description, schema):
    return {"description": description, "content": {"application/json": {"schema": schema}}}


KEY_PATHS = {
    "/api/v1/keys/issue": {
        "post": _op(
            "Start a new SecuPass key",
            "The server issues a key id and the key's pepper (32 random bytes, kept only "
            "wrapped under the master key). The client makes the key pairs and seals them.",
            {
                "201": _ok(
                    "Issued.", {"type": "object", "properties": {"key_id": {}, "pepper": _B64U}}
                ),
                "401": _AUTH,
                "429": _ERROR,
            },
        )
    },
    "/api/v1/keys/{key_id}/register": {
        "post": _op(
            "Register the sealed key (first key, or a reset)",
            "Public keys, KDF parameters, the private record sealed under the SecuPass and "
            "pepper, and the empty keyring. Registering retires the previous key.",
            {"200": _ok("Active.", _PUBLIC_KEY), "400": _ERROR, "401": _AUTH, "404": _NOT_FOUND},
            body={
                "type": "object",
                "properties": {
                    "ecdh_public": _B64U,
                    "ecdsa_public": _B64U,
                    **_RECORD["properties"],
                },
            },
            parameters=[_KEY_ID],
        )
    },
    "/api/v1/keys/check-password": {
        "post": _op(
            "Is this my login password?",
            "Lets a key page refuse a SecuPass equal to the login password without sending "
            "the SecuPass. Throttled like logins.",
            {
                "200": _ok(
                    "Answer.", {"type": "object", "properties": {"ok": {"type": "boolean"}}}
                ),
                "400": _ERROR,
                "401": _AUTH,
                "429": _ERROR,
            },
            body={"type": "object", "properties": {"password": {"type": "string"}}},
        )
    },
    "/api/v1/keys/mine": {
        "get": _op(
            "My active key: public keys and the sealed record",
            "Everything a client needs to unlock, except the pepper.",
            {
                "200": _ok("The key.", {"allOf": [_PUBLIC_KEY, _RECORD]}),
                "401": _AUTH,
                "404": _NOT_FOUND,
            },
        )
    },
    "/api/v1/keys/mine/pepper": {
        "post": _op(
            "Release my key's pepper for one unlock",
            "Only to the key's owner; throttled per account and client address, and audited.",
            {
                "200": _ok("The pepper.", {"type": "object", "properties": {"pepper": _B64U}}),
                "401": _AUTH,
                "404": _NOT_FOUND,
                "429": _ERROR,
            },
        )
    },
    "/api/v1/keys/mine/keyring": {
        "put": _op(
            "Store my encrypted keyring",
            "The version must be greater than the stored one (409 otherwise), so an old "
            "keyring cannot be replayed.",
            {"200": _ok("Stored.", {"type": "object"}), "400": _ERROR, "401": _AUTH, "409": _ERROR},
            body={
                "type": "object",
                "properties": {
                    "keyring": _B64U,
                    "version": {"type": "integer"},
                    "key_id": {"type": "string"},
                },
            },
        )
    },
    "/api/v1/keys/mine/change": {
        "post": _op(
            "Change my SecuPass",
            "Same key and pepper; the private record and keyring re-sealed with a new salt.",
            {"200": _ok("Changed.", _PUBLIC_KEY), "400": _ERROR, "401": _AUTH, "409": _ERROR},
            body=_RECORD,
        )
    },
    "/api/v1/keys/lookup": {
        "get": _op(
            "The active public key of an address (senders only)",
            "Clients recompute the fingerprint and compare it with their keyring's pin.",
            {"200": _ok("The key.", _PUBLIC_KEY), "401": _AUTH, "403": _ERROR, "404": _NOT_FOUND},
            parameters=[
                {
                    "name": "email",
                    "in": "query",
                    "required": True,
                    "schema": {"type": "string", "format": "email"},
                }
            ],
        )
    },
    "/api/v1/keys/users/{key_id}": {
        "get": _op(
            "A public key by its id",
            "For verifying a sender's signature.",
            {"200": _ok("The key.", _PUBLIC_KEY), "401": _AUTH, "404": _NOT_FOUND},
            parameters=[_KEY_ID],
        )
    },
}
