"""Level 3 and 4 deliveries made in Python the way a sender's browser makes them: SXF1 blobs
written as a stream, public-key entries, the sealed manifest and the sender's signature."""

import hashlib
import io
import os
import secrets
from dataclasses import dataclass, field
from datetime import timedelta

from django.utils import timezone

from accounts.emails import normalize_email
from deliveries.models import Delivery, DeliveryFile, KeyEntry, Recipient, new_token
from deliveries.storage import blob_name, blob_store
from secupass import keys, sxf
from tests.deliveries.e2e_support import Keyed


class RandomSource:
    """``size`` random bytes to read once, hashed as they are read."""

    def __init__(self, size: int):
        self.left = size
        self.sha256 = hashlib.sha256()

    def read(self, n: int) -> bytes:
        data = os.urandom(max(0, min(n, self.left)))
        self.left -= len(data)
        self.sha256.update(data)
        return data


def store_e2e_blob(delivery, key, name, data, content_type="application/octet-stream"):
    """Encrypt ``data`` (bytes, or an int: that many random bytes) into a stored blob,
    streaming. Returns (DeliveryFile, manifest entry, SHA-256 of the plaintext)."""
    source = RandomSource(data) if isinstance(data, int) else io.BytesIO(data)
    size = data if isinstance(data, int) else len(data)
    f = DeliveryFile(
        delivery=delivery,
        name=name if delivery.level < Delivery.Level.SECUPASS_PLUS else "",
        content_type=content_type,
        size=size,
        blob_size=sxf.blob_length(size),
    )
    f.storage_name = blob_name(delivery.id, f.id)
    store = blob_store()
    store.create(f.storage_name)
    digest = sxf.BlobDigest()
    with open(store.path(f.storage_name), "wb") as out:
        for part in sxf.Encryptor(key, delivery.id, f.id, size).encrypt_stream(
            source, digest=digest
        ):
            out.write(part)
    f.offset = f.blob_size
    f.state = DeliveryFile.State.COMPLETE
    f.completed_at = timezone.now()
    f.save()
    plain_sha = (
        source.sha256.hexdigest() if isinstance(data, int) else hashlib.sha256(data).hexdigest()
    )
    entry = {
        "file_id": str(f.id),
        "name": name,
        "type": content_type,
        "size": size,
        "digest": digest.hexdigest(),
    }
    return f, entry, plain_sha


@dataclass
class E2E:
    delivery: Delivery
    key: bytes
    files: dict  # name -> DeliveryFile
    sha256: dict  # name -> hex SHA-256 of the plaintext
    manifest: dict
    plaintexts: dict = field(default_factory=dict)
    tokens: dict = field(default_factory=dict)  # email -> link token
    recipients: dict = field(default_factory=dict)  # email -> Recipient


def add_entry(made: E2E, holder: Keyed) -> KeyEntry:
    """Wrap the delivery key for ``holder``'s key (what an approval stores)."""
    entry = sxf.wrap_p256(holder.private.ecdh_public, holder.key_id, made.delivery.id, made.key)
    return KeyEntry.objects.create(
        delivery=made.delivery, kind=KeyEntry.Kind.P256, key_ref=holder.key_id, data=entry
    )


def make_e2e_delivery(
    sender: Keyed,
    *,
    level=3,
    recipients=("rita@example.org",),
    readers=(),
    files=None,
    message="Die Zahlen, wie besprochen.",
    subject="Quarterly figures",
    **fields,
) -> E2E:
    """A sent level 3/4 delivery from ``sender`` to ``recipients``, with entries for the
    sender's key and each Keyed in ``readers``."""
    files = files if files is not None else {"Überblick Q3.pdf": b"%PDF-1.7 figures " * 9000}
    fields.setdefault("expires_at", timezone.now() + timedelta(days=14))
    fields.setdefault("language", "en")
    delivery = Delivery.objects.create(
        sender=sender.user,
        level=level,
        subject=subject,
        message=message if level == Delivery.Level.SECUPASS else "",
        message_sha256=hashlib.sha256(message.encode()).hexdigest() if level == 3 else "",
        **fields,
    )
    key = secrets.token_bytes(32)
    made = E2E(delivery=delivery, key=key, files={}, sha256={}, manifest={})
    listed = []
    for name, data in files.items():
        f, entry, plain_sha = store_e2e_blob(delivery, key, name, data)
        made.files[name] = f
        made.sha256[name] = plain_sha
        if isinstance(data, bytes):
            made.plaintexts[name] = data
        listed.append(entry)
    manifest = {"files": listed}
    if level == Delivery.Level.SECUPASS:
        manifest["message_sha256"] = delivery.message_sha256
    else:
        manifest["message"] = message
    made.manifest = manifest
    blob = keys.seal_manifest(manifest, key, delivery.id)
    delivery.manifest = blob
    delivery.signature = keys.sign_delivery(sender.private.ecdsa, delivery.id, level, key, blob)
    for email in recipients:
        token, digest = new_token()
        made.tokens[email] = token
        made.recipients[email] = Recipient.objects.create(
            delivery=delivery,
            email=normalize_email(email),
            token_hash=digest,
            mail_sent_at=timezone.now(),
        )
    add_entry(made, sender)
    for holder in readers:
        add_entry(made, holder)
    delivery.status = Delivery.Status.SENT
    delivery.sent_at = timezone.now()
    delivery.save()
    return made
