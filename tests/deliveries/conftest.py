"""Factories for deliveries made the way the browser makes them: real SXF1 blobs."""

import io
import secrets
from dataclasses import dataclass, field
from datetime import timedelta

import pytest
from django.utils import timezone

from deliveries.models import Delivery, DeliveryFile, KeyEntry, Recipient, new_token
from deliveries.storage import blob_name, blob_store
from secupass import masterkeys, sxf
from tests.deliveries import storage_support


@dataclass
class Made:
    delivery: Delivery
    key: bytes
    files: dict  # name -> DeliveryFile
    plaintexts: dict  # name -> bytes
    tokens: dict = field(default_factory=dict)  # email -> link token
    recipients: dict = field(default_factory=dict)  # email -> Recipient


def store_blob(delivery, key, name, data, content_type="application/octet-stream"):
    """Encrypt ``data`` into a stored SXF1 blob and return its completed DeliveryFile."""
    f = DeliveryFile(
        delivery=delivery,
        name=name,
        content_type=content_type,
        size=len(data),
        blob_size=sxf.blob_length(len(data)),
    )
    f.storage_name = blob_name(delivery.id, f.id)
    store = blob_store()
    upload = store.create(f.storage_name, f.blob_size)
    encryptor = sxf.Encryptor(key, delivery.id, f.id, len(data))
    blob = b"".join(encryptor.encrypt_stream(io.BytesIO(data)))
    store.append(f.storage_name, 0, io.BytesIO(blob).read, len(blob), upload)
    store.finish(f.storage_name, upload)
    f.offset = f.blob_size
    f.state = DeliveryFile.State.COMPLETE
    f.completed_at = timezone.now()
    f.save()
    return f


@pytest.fixture
def make_delivery(db, sender, settings, tmp_path):
    """make_delivery(level=1, recipients=[...], files={name: bytes}, sent=True, **fields)."""
    settings.MEDIA_ROOT = tmp_path / "blobs"

    def make(
        level=1,
        recipients=("rita@example.org",),
        files=None,
        sent=True,
        owner=None,
        **fields,
    ):
        files = files if files is not None else {"report.pdf": b"%PDF-1.7 report " * 5000}
        fields.setdefault("subject", "Quarterly figures")
        fields.setdefault("message", "Here are the figures.")
        fields.setdefault("language", "en")
        fields.setdefault("expires_at", timezone.now() + timedelta(days=14))
        delivery = Delivery.objects.create(sender=owner or sender, level=level, **fields)
        key = secrets.token_bytes(32)
        made = Made(delivery=delivery, key=key, files={}, plaintexts=dict(files))
        for name, data in files.items():
            made.files[name] = store_blob(delivery, key, name, data)
        for email in recipients:
            token, digest = new_token()
            made.tokens[email] = token
            made.recipients[email] = Recipient.objects.create(
                delivery=delivery,
                email=email,
                token_hash=digest,
                mail_sent_at=timezone.now() if sent else None,
            )
        if sent:
            if delivery.server_holds_key:
                entry = masterkeys.wrap(delivery.id, key)
                KeyEntry.objects.create(
                    delivery=delivery, kind=KeyEntry.Kind.KEK, key_ref=entry["kek_id"], data=entry
                )
            delivery.status = Delivery.Status.SENT
            delivery.sent_at = timezone.now()
            delivery.save()
        return made

    return make


@pytest.fixture(scope="session")
def s3_server():
    """A real S3 API (moto in server mode) on loopback, for the whole run."""
    server = storage_support.S3Server()
    yield server.endpoint
    server.stop()


@pytest.fixture(params=["local", "s3"])
def blob_backend(request, settings, tmp_path):
    """Run the test on the local disk and again on S3 (an empty bucket each time).

    ``make_delivery`` and every request of the test then use that store.
    """
    settings.MEDIA_ROOT = tmp_path / "blobs"
    if request.param == "s3":
        storage_support.use_s3(settings, request.getfixturevalue("s3_server"))
        storage_support.make_bucket()
        storage_support.empty_bucket()
    yield request.param
    if request.param == "s3":
        storage_support.empty_bucket()
