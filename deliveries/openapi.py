"""The OpenAPI 3.1 description of /api/v1/, written by hand and served as JSON.

``tests/deliveries/test_api.py`` checks that every route under /api/v1/ is in it.
"""

from django.conf import settings
from django.http import JsonResponse
from django.views.decorators.http import require_GET

from secupass.openapi import KEY_PATHS

VERSION = "1.0.0"

_ERROR = {"$ref": "#/components/responses/Error"}
_AUTH = {"$ref": "#/components/responses/Unauthorized"}
_NOT_FOUND = {"$ref": "#/components/responses/NotFound"}
_DELIVERY_ID = {
    "name": "pk",
    "in": "path",
    "required": True,
    "description": "The delivery's id.",
    "schema": {"type": "string", "format": "uuid"},
}
_FILE_ID = {
    "name": "file_id",
    "in": "path",
    "required": True,
    "description": "The file id from the Location header of the creation request.",
    "schema": {"type": "string", "format": "uuid"},
}
_TUS_RESUMABLE = {
    "name": "Tus-Resumable",
    "in": "header",
    "required": True,
    "schema": {"type": "string", "const": "1.0.0"},
}


def _json(schema_ref: str, description: str) -> dict:
    return {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{schema_ref}"}}},
    }


def _delivery_action(summary: str, description: str, body: dict | None = None) -> dict:
    operation = {
        "summary": summary,
        "description": description,
        "parameters": [_DELIVERY_ID],
        "responses": {
            "200": _json("Delivery", "The delivery as it is now."),
            "400": _ERROR,
            "401": _AUTH,
            "404": _NOT_FOUND,
        },
    }
    if body is not None:
        operation["requestBody"] = {"required": True, "content": {"application/json": body}}
    return operation


PATHS = {
    "/api/v1/deliveries": {
        "get": {
            "summary": "List your deliveries, newest first",
            "parameters": [
                {"name": "limit", "in": "query", "schema": {"type": "integer", "default": 50}},
                {"name": "offset", "in": "query", "schema": {"type": "integer", "default": 0}},
            ],
            "responses": {
                "200": _json("DeliveryList", "One page of deliveries."),
                "400": _ERROR,
                "401": _AUTH,
                "403": _ERROR,
            },
        },
        "post": {
            "summary": "Create a draft delivery",
            "description": (
                "Validates everything a person decides before uploading. Upload the files "
                "with tus to `upload_url`, then send the draft."
            ),
            "requestBody": {
                "required": True,
                "content": {
                    "application/json": {"schema": {"$ref": "#/components/schemas/NewDelivery"}}
                },
            },
            "responses": {
                "201": _json("Delivery", "The draft."),
                "400": {"$ref": "#/components/responses/ValidationErrors"},
                "401": _AUTH,
                "403": _ERROR,
            },
        },
    },
    "/api/v1/deliveries/{pk}": {
        "get": {
            "summary": "One delivery with its files and per-recipient status",
            "parameters": [_DELIVERY_ID],
            "responses": {
                "200": _json("Delivery", "The delivery."),
                "401": _AUTH,
                "404": _NOT_FOUND,
            },
        },
        "delete": {
            "summary": "Delete a draft and its uploaded files",
            "parameters": [_DELIVERY_ID],
            "responses": {
                "204": {"description": "Deleted."},
                "400": _ERROR,
                "401": _AUTH,
                "404": _NOT_FOUND,
            },
        },
    },
    "/api/v1/deliveries/{pk}/send": {
        "post": _delivery_action(
            "Send a draft",
            "Levels 1 and 2 hand over the delivery key (32 bytes, unpadded base64url); the "
            "server checks every uploaded blob, keeps the key only wrapped under its master "
            "key, and mails each recipient a personal link. Levels 3 and 4 never hand over "
            "the key: the client sends p256 key entries (one for the sender's own key, one "
            "per approved recipient key), the encrypted manifest and the sender's signature "
            "(DESIGN.md section 4); level 3 also the SHA-256 of the message.",
            {
                "schema": {
                    "oneOf": [
                        {
                            "type": "object",
                            "required": ["delivery_key"],
                            "properties": {
                                "delivery_key": {
                                    "type": "string",
                                    "pattern": "^[A-Za-z0-9_-]{43}$",
                                }
                            },
                        },
                        {
                            "type": "object",
                            "required": ["entries", "manifest", "signature"],
                            "properties": {
                                "entries": {
                                    "type": "array",
                                    "items": {
                                        "type": "object",
                                        "required": ["kind", "key_id", "eph", "ct"],
                                        "properties": {
                                            "kind": {"const": "p256"},
                                            "key_id": {"type": "string", "format": "uuid"},
                                            "eph": {"type": "string"},
                                            "ct": {"type": "string"},
                                        },
                                    },
                                },
                                "manifest": {"type": "string"},
                                "signature": {"type": "string"},
                                "message_sha256": {"type": "string", "pattern": "^[0-9a-f]{64}$"},
                            },
                        },
                    ]
                }
            },
        )
    },
    "/api/v1/deliveries/{pk}/revoke": {
        "post": _delivery_action(
            "Withdraw a sent delivery",
            "No link works any more; every recipient who got the mail is told.",
        )
    },
    "/api/v1/deliveries/{pk}/recipients/{rid}/revoke": {
        "post": {
            **_delivery_action(
                "Withdraw one recipient's link",
                "That recipient's link stops working and they are told; the others keep theirs.",
            ),
            "parameters": [
                _DELIVERY_ID,
                {
                    "name": "rid",
                    "in": "path",
                    "required": True,
                    "description": "The recipient's id.",
                    "schema": {"type": "string", "format": "uuid"},
                },
            ],
        }
    },
    "/api/v1/deliveries/{pk}/extend": {
        "post": _delivery_action(
            "Keep a delivery longer",
            "Moves the expiry by `days`; it stays within the configured maximum from today.",
            {
                "schema": {
                    "type": "object",
                    "required": ["days"],
                    "properties": {"days": {"type": "integer", "minimum": 1}},
                }
            },
        )
    },
    "/api/v1/approvals": {
        "get": {
            "summary": "Recipients' SecuPass keys waiting for your approval (levels 3, 4)",
            "description": "Each pending key with its fingerprint data and the deliveries "
            "waiting for it.",
            "responses": {"200": {"description": "The pending keys."}, "401": _AUTH},
        },
        "post": {
            "summary": "Approve a recipient's key: store the delivery keys wrapped for it",
            "description": "Body `{key_id, entries: [{delivery_id, entry}]}`; each entry is a "
            "public-key entry made by your client after comparing the key's fingerprint. The "
            "recipient is mailed.",
            "responses": {"200": {"description": "Stored."}, "400": _ERROR, "401": _AUTH},
        },
    },
    "/api/v1/schema": {
        "get": {
            "summary": "This description",
            "security": [],
            "responses": {"200": {"description": "The OpenAPI document."}},
        }
    },
    "/api/v1/uploads/": {
        "options": {
            "summary": "tus capabilities",
            "security": [],
            "responses": {
                "204": {
                    "description": "Tus-Version, Tus-Extension (creation, termination, "
                    "expiration) and Tus-Max-Size headers."
                }
            },
        },
        "post": {
            "summary": "Create an upload (tus creation)",
            "description": (
                "`Upload-Length` is the SXF1 blob length of the file; `Upload-Metadata` "
                "carries `delivery` (uuid), `filename`, `filetype` and `size` (plaintext "
                "length, decimal). Limits and the quota are checked before any byte is stored."
            ),
            "parameters": [
                _TUS_RESUMABLE,
                {
                    "name": "Upload-Length",
                    "in": "header",
                    "required": True,
                    "schema": {"type": "integer"},
                },
                {
                    "name": "Upload-Metadata",
                    "in": "header",
                    "required": True,
                    "schema": {"type": "string"},
                },
            ],
            "responses": {
                "201": {
                    "description": "Created; `Location` is /api/v1/uploads/<file id>, and "
                    "`Upload-Expires` says until when it can be finished."
                },
                "400": _ERROR,
                "401": _AUTH,
                "404": _NOT_FOUND,
                "413": _ERROR,
            },
        },
    },
    "/api/v1/uploads/{file_id}": {
        "head": {
            "summary": "How many bytes arrived (tus core)",
            "parameters": [_FILE_ID, _TUS_RESUMABLE],
            "responses": {
                "200": {"description": "`Upload-Offset` and `Upload-Length`."},
                "404": _NOT_FOUND,
            },
        },
        "patch": {
            "summary": "Append bytes at Upload-Offset (tus core)",
            "parameters": [
                _FILE_ID,
                _TUS_RESUMABLE,
                {
                    "name": "Upload-Offset",
                    "in": "header",
                    "required": True,
                    "schema": {"type": "integer"},
                },
            ],
            "requestBody": {
                "required": True,
                "content": {
                    "application/offset+octet-stream": {
                        "schema": {"type": "string", "format": "binary"}
                    }
                },
            },
            "responses": {
                "204": {"description": "Stored; the new `Upload-Offset`."},
                "400": _ERROR,
                "404": _NOT_FOUND,
                "409": _ERROR,
                "413": _ERROR,
            },
        },
        "delete": {
            "summary": "Remove an upload (tus termination; drafts only)",
            "parameters": [_FILE_ID, _TUS_RESUMABLE],
            "responses": {"204": {"description": "Removed."}, "404": _NOT_FOUND},
        },
    },
    "/api/v1/receive": {
        "post": {
            "summary": "Open a delivery as its recipient (used by the command-line client)",
            "description": (
                "The link token and the address the mail went to (level 2: and the guest "
                "account's password). Answers the files and a session cookie that authorises "
                "their URLs. Wrong addresses are refused and throttled."
            ),
            "security": [],
            "requestBody": {
                "required": True,
                "content": {
                    "application/json": {
                        "schema": {
                            "type": "object",
                            "required": ["token", "email"],
                            "properties": {
                                "token": {"type": "string"},
                                "email": {"type": "string", "format": "email"},
                                "password": {"type": "string"},
                            },
                        }
                    }
                },
            },
            "responses": {
                "200": _json("Received", "The delivery and its files."),
                "400": _ERROR,
                "403": _ERROR,
                "404": _NOT_FOUND,
                "410": _ERROR,
                "429": _ERROR,
            },
        }
    },
}

_TIME = {"type": ["string", "null"], "format": "date-time"}

SCHEMAS = {
    "Error": {
        "type": "object",
        "required": ["error"],
        "properties": {"error": {"type": "string", "description": "A sentence for a person."}},
    },
    "ValidationErrors": {
        "type": "object",
        "required": ["errors"],
        "properties": {
            "errors": {
                "type": "object",
                "additionalProperties": {"type": "array", "items": {"type": "string"}},
                "description": "Sentences per field.",
            }
        },
    },
    "NewDelivery": {
        "type": "object",
        "required": ["level", "subject", "recipients"],
        "additionalProperties": False,
        "properties": {
            "level": {
                "type": "integer",
                "enum": [1, 2, 3, 4],
                "description": "3 and 4 need your SecuPass key.",
            },
            "subject": {"type": "string", "maxLength": 200},
            "message": {"type": "string", "maxLength": 20000},
            "recipients": {
                "oneOf": [
                    {"type": "array", "items": {"type": "string"}},
                    {
                        "type": "string",
                        "description": "A pasted list: commas, semicolons, spaces or lines.",
                    },
                ]
            },
            "expires_in_days": {"type": ["integer", "null"], "minimum": 1},
            "download_limit": {"type": ["integer", "null"], "minimum": 1},
            "notify_on_download": {"type": "boolean", "default": False},
            "language": {"type": "string", "enum": ["de", "en"]},
        },
    },
    "File": {
        "type": "object",
        "properties": {
            "id": {"type": "string", "format": "uuid"},
            "name": {"type": "string"},
            "content_type": {"type": "string"},
            "size": {"type": "integer", "description": "Plaintext bytes."},
            "state": {"type": "string", "enum": ["uploading", "complete", "verified"]},
            "uploaded": {"type": "integer", "description": "Blob bytes received."},
            "blob_size": {"type": "integer"},
        },
    },
    "Recipient": {
        "type": "object",
        "properties": {
            "id": {"type": "string", "format": "uuid"},
            "email": {"type": "string"},
            "status": {
                "type": "string",
                "enum": [
                    "draft",
                    "pending",
                    "mail_sent",
                    "opened",
                    "confirmed",
                    "downloaded",
                    "revoked",
                ],
            },
            "mail_sent_at": _TIME,
            "opened_at": _TIME,
            "confirmed_at": _TIME,
            "downloaded_at": _TIME,
            "revoked_at": _TIME,
        },
    },
    "DeliverySummary": {
        "type": "object",
        "properties": {
            "id": {"type": "string", "format": "uuid"},
            "url": {"type": "string"},
            "level": {"type": "integer"},
            "subject": {"type": "string"},
            "status": {"type": "string", "enum": ["draft", "sent", "revoked", "expired"]},
            "language": {"type": "string"},
            "created_at": _TIME,
            "sent_at": _TIME,
            "expires_at": _TIME,
            "revoked_at": _TIME,
            "download_limit": {"type": ["integer", "null"]},
            "notify_on_download": {"type": "boolean"},
            "recipient_count": {"type": "integer", "description": "In lists only."},
            "downloaded_count": {"type": "integer", "description": "In lists only."},
            "file_count": {"type": "integer", "description": "In lists only."},
        },
    },
    "Delivery": {
        "allOf": [
            {"$ref": "#/components/schemas/DeliverySummary"},
            {
                "type": "object",
                "properties": {
                    "message": {"type": "string"},
                    "upload_url": {"type": "string"},
                    "files": {"type": "array", "items": {"$ref": "#/components/schemas/File"}},
                    "recipients": {
                        "type": "array",
                        "items": {"$ref": "#/components/schemas/Recipient"},
                    },
                },
            },
        ]
    },
    "DeliveryList": {
        "type": "object",
        "properties": {
            "count": {"type": "integer"},
            "next": {"type": ["string", "null"]},
            "results": {"type": "array", "items": {"$ref": "#/components/schemas/DeliverySummary"}},
        },
    },
    "Received": {
        "type": "object",
        "properties": {
            "delivery": {"type": "object"},
            "files": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {
                        "id": {"type": "string", "format": "uuid"},
                        "name": {"type": "string"},
                        "size": {"type": "integer"},
                        "content_type": {"type": "string"},
                        "url": {"type": "string"},
                    },
                },
            },
            "zip_url": {"type": ["string", "null"]},
            "e2e_url": {"type": "string"},
        },
    },
}


def document() -> dict:
    return {
        "openapi": "3.1.0",
        "info": {
            "title": f"{settings.SITE_NAME} API",
            "version": VERSION,
            "description": (
                "Create deliveries, upload their encrypted files with tus 1.0, send them, "
                "follow their status and withdraw them. Authenticate with a personal API token "
                "(`Authorization: Bearer ssk_...`, made on the API tokens page) or, from the "
                "site's own pages, with the session and an `X-CSRFToken` header."
            ),
        },
        "servers": [{"url": settings.SITE_URL}],
        "security": [{"bearer": []}, {"session": []}],
        "paths": {**PATHS, **KEY_PATHS},
        "components": {
            "securitySchemes": {
                "bearer": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "A personal API token.",
                },
                "session": {"type": "apiKey", "in": "cookie", "name": settings.SESSION_COOKIE_NAME},
            },
            "schemas": SCHEMAS,
            "responses": {
                "Error": _json("Error", "Refused, with the reason."),
                "ValidationErrors": _json("ValidationErrors", "Invalid fields."),
                "Unauthorized": _json("Error", "No valid token or session."),
                "NotFound": _json("Error", "No such object among yours."),
            },
        },
    }


@require_GET
def schema_view(request):
    return JsonResponse(document(), json_dumps_params={"indent": 1})
