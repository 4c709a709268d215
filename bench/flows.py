"""What a sender's client and a recipient's client do, over HTTP through nginx: create a
delivery, upload with tus, send, open the link. Level 3 records are made directly in the
database (what a sender's browser would have uploaded), since only their serving is measured.
"""

import os
import secrets
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

from bench.http import Client, Slice
from bench.stack import PASSWORD, RECIPIENT, Stack, b64
from secupass import sxf

PATTERN = os.urandom(1 << 20)  # plaintext for the benchmark: random, repeated


class FlowError(Exception):
    pass


def _expect(response, status: int, what: str):
    if response.status != status:
        raise FlowError(f"{what}: HTTP {response.status} {response.body[:300]!r}")
    return response


def plaintext_pieces(size: int, piece: int) -> Iterator[bytes]:
    """``size`` bytes of benchmark plaintext, ``piece`` bytes at a time."""
    pattern = PATTERN * max(1, -(-piece // len(PATTERN)))
    sent = 0
    while sent < size:
        n = min(piece, size - sent)
        yield pattern[:n]
        sent += n


def blob_pieces(key: bytes, delivery_id, file_id, size: int) -> Iterator[bytes]:
    """The SXF1 blob of ``size`` plaintext bytes, encrypted as it is consumed."""
    encryptor = sxf.Encryptor(key, delivery_id, file_id, size)
    yield encryptor.header_bytes
    chunk = encryptor.header.chunk_size
    for i, plain in enumerate(plaintext_pieces(size, chunk)):
        yield encryptor.encrypt_chunk(i, plain)
    if size == 0:
        yield encryptor.encrypt_chunk(0, b"")


def write_blob(path: Path, key: bytes, delivery_id, file_id, size: int) -> int:
    """Write the blob and wait until it is on disk, so that no writeback of it is still
    going on when a timed upload of it starts (the app's fsync would wait behind it)."""
    with path.open("wb") as out:
        for piece in blob_pieces(key, delivery_id, file_id, size):
            out.write(piece)
        out.flush()
        os.fsync(out.fileno())
    return path.stat().st_size


def write_plain(path: Path, size: int) -> None:
    with path.open("wb") as out:
        for piece in plaintext_pieces(size, 1 << 20):
            out.write(piece)


@dataclass
class Draft:
    id: str
    key: bytes = field(default_factory=lambda: secrets.token_bytes(32))


def create_delivery(stack: Stack, recipients=(RECIPIENT,)) -> Draft:
    response = stack.front().json(
        "POST",
        "/api/v1/deliveries",
        {"level": 1, "subject": "Benchmark", "recipients": list(recipients)},
        headers=stack.api_headers(),
    )
    return Draft(_expect(response, 201, "creating a delivery").json()["id"])


def tus_headers(stack: Stack, **extra) -> dict:
    return {"Tus-Resumable": "1.0.0", **stack.api_headers(), **extra}


def tus_create(stack: Stack, draft: Draft, size: int, name: str, client=None) -> str:
    """Create the upload; return its path (its last part is the file id)."""
    metadata = ",".join(
        f"{k} {b64(v)}"
        for k, v in {"delivery": draft.id, "filename": name, "size": str(size)}.items()
    )
    response = (client or stack.front()).request(
        "POST",
        "/api/v1/uploads/",
        headers=tus_headers(
            stack, **{"Upload-Length": str(sxf.blob_length(size)), "Upload-Metadata": metadata}
        ),
        body=b"",
        keep=True,
    )
    _expect(response, 201, "creating an upload")
    return response.headers["Location"]


def tus_patch(stack: Stack, path: str, offset: int, body, length: int, client=None) -> int:
    client = client or stack.front()
    response = client.request(
        "PATCH",
        path,
        headers=tus_headers(
            stack,
            **{"Upload-Offset": str(offset), "Content-Type": "application/offset+octet-stream"},
        ),
        body=body,
        length=length,
        keep=True,
    )
    _expect(response, 204, "uploading")
    return int(response.headers["Upload-Offset"])


def tus_upload_file(stack: Stack, path: str, blob: Path, chunk: int, client=None) -> None:
    size = blob.stat().st_size
    offset = 0
    while offset < size:
        count = min(chunk, size - offset)
        offset = tus_patch(stack, path, offset, Slice(blob, offset, count), count, client)


def tus_upload_stream(stack: Stack, path: str, pieces: Iterator[bytes], size: int, chunk: int):
    """Upload a blob produced on the fly, in PATCH requests of ``chunk`` bytes."""
    pending = b""
    offset = 0
    source = iter(pieces)
    while offset < size:
        count = min(chunk, size - offset)

        def body(count=count):
            nonlocal pending
            left = count
            while left:
                if not pending:
                    pending = next(source)
                piece, pending = pending[:left], pending[left:]
                left -= len(piece)
                yield piece

        offset = tus_patch(stack, path, offset, body(), count)


def send(stack: Stack, draft: Draft) -> None:
    response = stack.front().json(
        "POST",
        f"/api/v1/deliveries/{draft.id}/send",
        {"delivery_key": sxf.b64u_encode(draft.key)},
        headers=stack.api_headers(),
    )
    _expect(response, 200, "sending")


def link_token(email: str = RECIPIENT) -> str:
    """The link token in the newest delivery mail to ``email`` waiting in the outbox (the
    benchmark sends one delivery at a time)."""
    from outbox.models import OutgoingMail

    mail = OutgoingMail.objects.filter(to=email, template="delivery_new").order_by("-id").first()
    if mail is None:
        raise FlowError(f"no delivery mail to {email}")
    return mail.context["secret_link"].rsplit("/d/", 1)[1]


def open_link(stack: Stack, token: str, email: str = RECIPIENT, password=None):
    """A recipient's client with the session the link opens; returns (client, files JSON)."""
    client = stack.front()
    body = {"token": token, "email": email}
    if password:
        body["password"] = password
    response = client.json("POST", "/api/v1/receive", body)
    _expect(response, 200, "opening the link")
    return client, response.json()["files"]


def path_of(url: str) -> str:
    return "/" + url.split("://", 1)[-1].split("/", 1)[1]


@dataclass
class Level3:
    client: Client
    blob_path: str  # the app's URL of the ciphertext
    storage_name: str
    blob_size: int
    file_id: str


def make_level3(stack: Stack, size: int) -> Level3:
    """A sent level 3 delivery with one file of ``size`` bytes to a recipient who has a key
    with an entry for it, and that recipient's logged-in client."""
    from django.utils import timezone

    from accounts.models import User
    from deliveries.models import Delivery, DeliveryFile, KeyEntry, Recipient, new_token
    from deliveries.storage import blob_name, blob_store
    from secupass import keys
    from secupass.models import UserKey

    sender = User.objects.get(email="bench-sender@example.org")
    guest = User.objects.filter(email=RECIPIENT).first() or User.objects.create_guest(
        RECIPIENT, PASSWORD, email_verified_at=timezone.now()
    )
    key = UserKey.objects.active().filter(user=guest).first()
    if key is None:
        key, _pepper = UserKey.issue(guest)
        private = keys.generate_user_keys()
        key.register(
            ecdh_public=private.ecdh_public,
            ecdsa_public=private.ecdsa_public,
            kdf=keys.KDF_NAME,
            iterations=keys.DEFAULT_ITERATIONS,
            salt=os.urandom(keys.KDF_SALT_LEN),
            private_record=keys.seal_private_record(private, os.urandom(32), key.id),
            keyring=keys.seal_keyring({}, 1, os.urandom(32), key.id),
            keyring_version=1,
        )
        key.refresh_from_db()
    delivery = Delivery.objects.create(
        sender=sender,
        level=Delivery.Level.SECUPASS,
        subject="Benchmark level 3",
        expires_at=timezone.now() + timedelta(days=1),
        language="en",
    )
    delivery_key = secrets.token_bytes(32)
    f = DeliveryFile(
        delivery=delivery,
        name="ciphertext.bin",
        content_type="application/octet-stream",
        size=size,
        blob_size=sxf.blob_length(size),
    )
    f.storage_name = blob_name(delivery.id, f.id)
    store = blob_store()
    store.create(f.storage_name)
    write_blob(store.path(f.storage_name), delivery_key, delivery.id, f.id, size)
    f.offset = f.blob_size
    f.state = DeliveryFile.State.VERIFIED
    f.completed_at = timezone.now()
    f.save()
    entry = sxf.wrap_p256(bytes(key.ecdh_public), str(key.id), delivery.id, delivery_key)
    KeyEntry.objects.create(
        delivery=delivery, kind=KeyEntry.Kind.P256, key_ref=str(key.id), data=entry
    )
    token, digest = new_token()
    recipient = Recipient.objects.create(
        delivery=delivery, email=RECIPIENT, token_hash=digest, mail_sent_at=timezone.now()
    )
    delivery.status = Delivery.Status.SENT
    delivery.sent_at = timezone.now()
    delivery.save()
    client, _files = open_link(stack, token, password=PASSWORD)
    return Level3(
        client=client,
        blob_path=f"/r/{recipient.pk}/blobs/{f.id}",
        storage_name=f.storage_name,
        blob_size=f.blob_size,
        file_id=str(f.id),
    )
