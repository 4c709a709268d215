"""The periodic cleanup jobs: abandoned uploads and drafts, expired and revoked deliveries."""

import io
import os
import threading
import time
import uuid
from datetime import timedelta
from pathlib import Path

import pytest
from django.db import connection
from django.utils import timezone
from django.utils.module_loading import import_string

from deliveries import audit
from deliveries.models import AuditEvent, Delivery, DeliveryFile, Recipient
from deliveries.storage import blob_name, blob_store
from deliveries.tasks import expire_deliveries, remove_abandoned_uploads
from secupass import sxf
from tests.deliveries import storage_support


def hours_ago(hours):
    return timezone.now() - timedelta(hours=hours)


def partial_upload(delivery, received=1000, touched=None) -> DeliveryFile:
    """A file whose upload stopped after ``received`` bytes."""
    f = DeliveryFile(
        delivery=delivery,
        name="half.bin",
        size=50_000,
        blob_size=sxf.blob_length(50_000),
        offset=received,
    )
    f.storage_name = blob_name(delivery.id, f.id)
    f.upload_state = blob_store().create(f.storage_name, f.blob_size)
    blob_store().append(
        f.storage_name, 0, io.BytesIO(b"\0" * received).read, received, f.upload_state
    )
    f.save()
    DeliveryFile.objects.filter(pk=f.pk).update(touched_at=touched or timezone.now())
    return f


def blob_exists(f) -> bool:
    return storage_support.holds(f.storage_name)  # on the disk, or in the bucket


@pytest.mark.usefixtures("blob_backend")
def test_untouched_unfinished_uploads_are_removed_after_the_expiry(make_delivery, settings):
    settings.UPLOAD_EXPIRY_HOURS = 24
    made = make_delivery(files={"done.txt": b"complete"}, sent=False)
    stale = partial_upload(made.delivery, touched=hours_ago(24.1))
    fresh = partial_upload(made.delivery, touched=hours_ago(23.9))

    assert remove_abandoned_uploads() == {"uploads": 1, "drafts": 0, "orphans": 0}
    assert not DeliveryFile.objects.filter(pk=stale.pk).exists()
    assert not blob_exists(stale)
    assert DeliveryFile.objects.filter(pk=fresh.pk).exists() and blob_exists(fresh)
    assert blob_exists(made.files["done.txt"])
    assert Delivery.objects.filter(pk=made.delivery.pk).exists()


@pytest.mark.usefixtures("blob_backend")
def test_drafts_never_sent_are_removed_entirely(make_delivery, settings):
    settings.UPLOAD_EXPIRY_HOURS = 24
    old = make_delivery(files={"a.txt": b"a", "b.txt": b"b"}, sent=False)
    busy = make_delivery(files={"c.txt": b"c"}, sent=False)
    sent = make_delivery(files={"d.txt": b"d"})
    Delivery.objects.update(created_at=hours_ago(30))
    DeliveryFile.objects.update(touched_at=hours_ago(30))
    recent = partial_upload(busy.delivery, touched=hours_ago(1))  # still being worked on
    created = audit.record(
        AuditEvent.Kind.CREATED, actor=old.delivery.sender, delivery=old.delivery
    )

    assert remove_abandoned_uploads() == {"uploads": 0, "drafts": 1, "orphans": 0}
    assert not Delivery.objects.filter(pk=old.delivery.pk).exists()
    assert not Recipient.objects.filter(delivery_id=old.delivery.pk).exists()
    assert not DeliveryFile.objects.filter(delivery_id=old.delivery.pk).exists()
    assert not any(blob_exists(f) for f in old.files.values())
    assert not (Path(settings.MEDIA_ROOT) / str(old.delivery.id)).exists()
    created.refresh_from_db()  # the audit trail keeps the event, without the delivery
    assert created.kind == AuditEvent.Kind.CREATED and created.delivery_id is None
    assert Delivery.objects.filter(pk=busy.delivery.pk).exists() and blob_exists(recent)
    assert blob_exists(busy.files["c.txt"])
    assert Delivery.objects.get(pk=sent.delivery.pk).status == Delivery.Status.SENT
    assert blob_exists(sent.files["d.txt"])


def test_orphan_blobs_are_swept_once_old(make_delivery, settings):
    made = make_delivery(files={"kept.txt": b"kept"})
    store = blob_store()
    old_orphan = blob_name(made.delivery.id, uuid.uuid4())
    new_orphan = blob_name(made.delivery.id, uuid.uuid4())
    for name in (old_orphan, new_orphan):
        store.create(name)
    two_days_ago = time.time() - 48 * 3600
    os.utime(store.path(old_orphan), (two_days_ago, two_days_ago))
    kept = made.files["kept.txt"]
    os.utime(store.path(kept.storage_name), (two_days_ago, two_days_ago))

    assert remove_abandoned_uploads()["orphans"] == 1
    assert not store.path(old_orphan).exists()
    assert store.path(new_orphan).exists()
    assert blob_exists(kept)


@pytest.mark.usefixtures("blob_backend")
def test_removing_abandoned_uploads_twice_is_harmless(make_delivery):
    made = make_delivery(files={}, sent=False)
    partial_upload(made.delivery, touched=hours_ago(48))
    Delivery.objects.update(created_at=hours_ago(48))
    assert remove_abandoned_uploads() == {"uploads": 1, "drafts": 1, "orphans": 0}
    assert remove_abandoned_uploads() == {"uploads": 0, "drafts": 0, "orphans": 0}
    assert not Delivery.objects.exists()


@pytest.mark.usefixtures("blob_backend")
def test_expiry_marks_expired_deletes_blobs_keeps_rows_and_audits(make_delivery):
    due = make_delivery(files={"a.txt": b"a", "b.txt": b"b"}, expires_at=hours_ago(1))
    active = make_delivery(files={"c.txt": b"c"})
    revoked = make_delivery(files={"d.txt": b"d"})
    Delivery.objects.filter(pk=revoked.delivery.pk).update(
        status=Delivery.Status.REVOKED, revoked_at=timezone.now()
    )
    draft = make_delivery(files={"e.txt": b"e"}, sent=False, expires_at=hours_ago(1))

    assert expire_deliveries() == {"expired": 1, "purged": 2}

    d = Delivery.objects.get(pk=due.delivery.pk)
    assert d.status == Delivery.Status.EXPIRED and d.blobs_deleted_at is not None
    assert d.files.count() == 2 and d.recipients.count() == 1
    assert not any(blob_exists(f) for f in due.files.values())
    assert "expired" in str(d.unavailable_reason())
    event = AuditEvent.objects.get(kind=AuditEvent.Kind.EXPIRED)
    assert event.delivery_id == d.pk and event.actor is None

    r = Delivery.objects.get(pk=revoked.delivery.pk)
    assert r.status == Delivery.Status.REVOKED and r.blobs_deleted_at is not None
    assert not blob_exists(revoked.files["d.txt"])

    a = Delivery.objects.get(pk=active.delivery.pk)
    assert a.status == Delivery.Status.SENT and a.blobs_deleted_at is None
    assert blob_exists(active.files["c.txt"])
    assert Delivery.objects.get(pk=draft.delivery.pk).status == Delivery.Status.DRAFT
    assert blob_exists(draft.files["e.txt"])

    assert expire_deliveries() == {"expired": 0, "purged": 0}
    assert AuditEvent.objects.filter(kind=AuditEvent.Kind.EXPIRED).count() == 1
    assert Delivery.objects.get(pk=due.delivery.pk).blobs_deleted_at == d.blobs_deleted_at


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("blob_backend")
def test_two_expiry_runs_at_once_expire_each_delivery_once(make_delivery):
    made = [make_delivery(files={"f.txt": b"x"}, expires_at=hours_ago(1)) for _ in range(5)]
    start = threading.Barrier(2)
    results, errors = [], []

    def run():
        try:
            start.wait()
            results.append(expire_deliveries())
        except Exception as e:  # reported below, in the test's thread
            errors.append(e)
        finally:
            connection.close()

    threads = [threading.Thread(target=run) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert errors == []
    assert sum(r["expired"] for r in results) == 5
    assert sum(r["purged"] for r in results) == 5
    assert AuditEvent.objects.filter(kind=AuditEvent.Kind.EXPIRED).count() == 5
    assert set(Delivery.objects.values_list("status", flat=True)) == {Delivery.Status.EXPIRED}
    assert not any(blob_exists(f) for m in made for f in m.files.values())


def test_beat_runs_both_jobs(settings):
    tasks = {entry["task"]: entry["schedule"] for entry in settings.CELERY_BEAT_SCHEDULE.values()}
    assert import_string("deliveries.tasks.expire_deliveries") is expire_deliveries
    assert tasks["deliveries.tasks.expire_deliveries"] <= 15 * 60
    assert tasks["deliveries.tasks.remove_abandoned_uploads"] <= 60 * 60
    assert expire_deliveries.name == "deliveries.tasks.expire_deliveries"
    assert remove_abandoned_uploads.name == "deliveries.tasks.remove_abandoned_uploads"
