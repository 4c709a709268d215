"""Helpers for level 3 and 4 tests: keys made in Python, drafts created and filled through
the JSON API and tus, and send bodies built the way a sender's client builds them."""

import base64
import hashlib
import io
import json
import mimetypes
import os
import secrets
import uuid
from dataclasses import dataclass, field

from django.test import Client
from django.utils import timezone

from accounts.models import User
from accounts.tokens import issue_token
from deliveries.models import Delivery
from secupass import keys, sxf
from secupass.models import UserKey

DELIVERIES = "/api/v1/deliveries"
APPROVALS = "/api/v1/approvals"
UPLOADS = "/api/v1/uploads/"
PASSWORD = "correct horse battery staple"


class Api:
    """A client that talks JSON with a personal API token."""

    def __init__(self, user=None, token=None):
        self.client = Client()
        self.headers = {}
        if user is not None:
            token = token or issue_token(user, "tests")[1]
        if token:
            self.headers["Authorization"] = f"Bearer {token}"

    def _call(self, method, path, body=None):
        data = json.dumps(body) if body is not None else ""
        return self.client.generic(
            method, path, data, content_type="application/json", headers=self.headers
        )

    def get(self, path):
        return self._call("GET", path)

    def post(self, path, body=None):
        return self._call("POST", path, body if body is not None else {})

    def delete(self, path):
        return self._call("DELETE", path)


def guest(email, **fields) -> User:
    """A guest whose address is verified (so senders may encrypt to their key)."""
    return User.objects.create_guest(email, PASSWORD, email_verified_at=timezone.now(), **fields)


@dataclass
class Keyed:
    """A user with an active SecuPass key and its private keys."""

    user: User
    key: UserKey
    private: keys.UserKeys
    derived: keys.DerivedKeys | None = None  # only for a key made from a real SecuPass

    @property
    def key_id(self) -> str:
        return str(self.key.id)


def make_key(user, secupass=None, *, pins=None, iterations=keys.DEFAULT_ITERATIONS) -> Keyed:
    """Register a new active key for ``user`` (a reset if there was one). With a SecuPass it
    unlocks like a browser's key; without, it is sealed under random keys (no PBKDF2)."""
    key, pepper = UserKey.issue(user)
    derived = None
    if secupass is not None:
        unlocked, body = keys.create_key(secupass, key.id, pepper, iterations=iterations)
        private, derived = unlocked.keys, unlocked.derived
        salt = sxf.b64u_decode(body["salt"])
        record = sxf.b64u_decode(body["private_record"])
        ring_key = derived.keyring_key
    else:
        private = keys.generate_user_keys()
        salt = os.urandom(keys.KDF_SALT_LEN)
        record = keys.seal_private_record(private, os.urandom(32), key.id)
        ring_key = os.urandom(32)
    key.register(
        ecdh_public=private.ecdh_public,
        ecdsa_public=private.ecdsa_public,
        kdf=keys.KDF_NAME,
        iterations=iterations,
        salt=salt,
        private_record=record,
        keyring=keys.seal_keyring(pins or {}, 1, ring_key, key.id),
        keyring_version=1,
    )
    key.refresh_from_db()
    return Keyed(user, key, private, derived)


def open_keyring(user, secupass):
    """(version, pins) of the user's stored keyring, opened with their SecuPass."""
    key = UserKey.objects.active().get(user=user)
    derived = keys.derive(secupass, bytes(key.salt), key.iterations, key.pepper_bytes())
    return keys.open_keyring(bytes(key.keyring), derived.keyring_key, key.id)


@dataclass
class Draft:
    id: str
    level: int
    message: str
    key: bytes
    delivery: Delivery
    files: list = field(default_factory=list)  # manifest entries


def create_draft(
    api,
    *,
    level=3,
    recipients=("rita@example.org",),
    message="Here are the figures.",
    subject="Quarterly figures",
):
    """A level 3/4 draft through the API; at level 4 the message stays with the client."""
    body = {"level": level, "subject": subject, "recipients": list(recipients)}
    if level < 4:
        body["message"] = message
    response = api.post(DELIVERIES, body)
    assert response.status_code == 201, response.content
    draft_id = response.json()["id"]
    return Draft(
        id=draft_id,
        level=level,
        message=message,
        key=secrets.token_bytes(32),
        delivery=Delivery.objects.get(pk=draft_id),
    )


def _metadata(values: dict) -> str:
    return ",".join(f"{k} {base64.b64encode(v.encode()).decode()}" for k, v in values.items())


def add_file(api, draft, name, data, content_type=None):
    """Encrypt and upload one file with tus, as a client does; the manifest entry is kept."""
    content_type = content_type or mimetypes.guess_type(name)[0] or "application/octet-stream"
    values = {"delivery": draft.id, "size": str(len(data))}
    if draft.level < 4:
        values |= {"filename": name, "filetype": content_type}
    tus = {**api.headers, "Tus-Resumable": "1.0.0"}
    length = sxf.blob_length(len(data))
    created = api.client.generic(
        "POST",
        UPLOADS,
        b"",
        headers={**tus, "Upload-Length": str(length), "Upload-Metadata": _metadata(values)},
    )
    assert created.status_code == 201, created.content
    location = created["Location"]
    file_id = str(uuid.UUID(location.rstrip("/").rsplit("/", 1)[-1]))
    digest = sxf.BlobDigest()
    encryptor = sxf.Encryptor(draft.key, draft.id, file_id, len(data))
    blob = b"".join(encryptor.encrypt_stream(io.BytesIO(data), digest=digest))
    patched = api.client.generic(
        "PATCH",
        location,
        blob,
        content_type="application/offset+octet-stream",
        headers={**tus, "Upload-Offset": "0"},
    )
    assert patched.status_code == 204, patched.content
    draft.files.append(
        {
            "file_id": file_id,
            "name": name,
            "type": content_type,
            "size": len(data),
            "digest": digest.hexdigest(),
        }
    )
    return file_id


def send_body(draft, sender_key, readers=(), *, entries=None, **changes) -> dict:
    """The body of POST .../send at levels 3/4: entries for the sender's key and each
    reader's, the sealed manifest and the sender's signature; ``changes`` replace fields."""
    if entries is None:
        entries = [
            sxf.wrap_p256(k.private.ecdh_public, k.key_id, draft.id, draft.key)
            for k in (sender_key, *readers)
        ]
    message_sha256 = hashlib.sha256(draft.message.encode()).hexdigest()
    manifest = {"files": list(draft.files)}
    if draft.level == 4:
        manifest["message"] = draft.message
    else:
        manifest["message_sha256"] = message_sha256
    blob = keys.seal_manifest(manifest, draft.key, draft.id)
    signature = keys.sign_delivery(sender_key.private.ecdsa, draft.id, draft.level, draft.key, blob)
    body = {
        "entries": entries,
        "manifest": sxf.b64u_encode(blob),
        "signature": sxf.b64u_encode(signature),
    }
    if draft.level < 4:
        body["message_sha256"] = message_sha256
    body.update(changes)
    return body


def send(api, draft, body):
    return api.post(f"{DELIVERIES}/{draft.id}/send", body)


def use_live_site(settings, live_server, tmp_path):
    """Settings for a browser test against the live server (static files as they are)."""
    settings.MEDIA_ROOT = tmp_path / "blobs"
    settings.SITE_URL = live_server.url
    settings.CELERY_TASK_ALWAYS_EAGER = True


def log_in(page, email, password):
    page.goto("/accounts/login/")
    page.get_by_label("E-mail address").fill(email)
    page.get_by_label("Password", exact=True).fill(password)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(lambda url: "/accounts/login/" not in url)
