"""Periodic cleanup (CELERY_BEAT_SCHEDULE): abandoned uploads and expired deliveries.

Both jobs are idempotent and safe to run twice at once: every change is a
conditional UPDATE or DELETE that only one run can win, and deleting a blob that
is already gone is no error.
"""

from datetime import timedelta

from celery import shared_task
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from deliveries import audit
from deliveries.models import AuditEvent, Delivery, DeliveryFile
from deliveries.storage import blob_store

ORPHAN_BATCH = 500


@shared_task(ignore_result=True)
def remove_abandoned_uploads() -> dict:
    """Remove what senders started and left, untouched for UPLOAD_EXPIRY_HOURS.

    - unfinished uploads of drafts: the file row and its blob;
    - draft deliveries never sent, with no upload activity since the cutoff: the whole
      delivery (recipients, files, blobs);
    - blobs without a file row (a process died between deleting the row and the blob);
    - uploads the store began (S3 multipart uploads) that no unfinished file row records,
      started more than UPLOAD_EXPIRY_HOURS ago (counted with the orphans).
    """
    expiry = timedelta(hours=settings.UPLOAD_EXPIRY_HOURS)
    cutoff = timezone.now() - expiry
    store = blob_store()
    removed = {"uploads": 0, "drafts": 0, "orphans": 0}

    stale = DeliveryFile.objects.filter(
        state=DeliveryFile.State.UPLOADING,
        touched_at__lt=cutoff,
        delivery__status=Delivery.Status.DRAFT,
    ).values_list("pk", "storage_name")
    for pk, name in list(stale):
        deleted, _ = DeliveryFile.objects.filter(
            pk=pk, state=DeliveryFile.State.UPLOADING, touched_at__lt=cutoff
        ).delete()
        if deleted:
            store.delete(name)
            removed["uploads"] += 1

    drafts = (
        Delivery.objects.filter(status=Delivery.Status.DRAFT, created_at__lt=cutoff)
        .exclude(files__touched_at__gte=cutoff)
        .values_list("pk", flat=True)
    )
    for pk in list(drafts):
        with transaction.atomic():
            # Locked, so a send or an upload that starts now waits, then finds no draft.
            draft = (
                Delivery.objects.select_for_update()
                .filter(pk=pk, status=Delivery.Status.DRAFT, created_at__lt=cutoff)
                .first()
            )
            if draft is None or draft.files.filter(touched_at__gte=cutoff).exists():
                continue
            names = list(draft.files.values_list("storage_name", flat=True))
            draft.delete()
        for name in names:
            store.delete(name)
        removed["drafts"] += 1

    old = list(store.names_older_than(expiry.total_seconds()))
    for i in range(0, len(old), ORPHAN_BATCH):
        batch = old[i : i + ORPHAN_BATCH]
        known = set(
            DeliveryFile.objects.filter(storage_name__in=batch).values_list(
                "storage_name", flat=True
            )
        )
        for name in batch:
            if name not in known:
                store.delete(name)
                removed["orphans"] += 1

    for name, upload_id in list(store.abandoned_uploads(expiry.total_seconds())):
        if not _records_upload(name, upload_id):
            store.abort_upload(name, upload_id)
            removed["orphans"] += 1
    return removed


def _records_upload(name: str, upload_id: str) -> bool:
    """Does an unfinished file row still write to this backend upload?"""
    states = DeliveryFile.objects.filter(
        storage_name=name, state=DeliveryFile.State.UPLOADING
    ).values_list("upload_state", flat=True)
    return any((state or {}).get("multipart", {}).get("id") == upload_id for state in states)


@shared_task(ignore_result=True)
def expire_deliveries() -> dict:
    """Mark sent deliveries past their expiry as expired (with an audit event), then
    delete the blobs of expired and revoked deliveries. The rows stay for the audit trail."""
    now = timezone.now()
    store = blob_store()
    done = {"expired": 0, "purged": 0}

    due = Delivery.objects.filter(status=Delivery.Status.SENT, expires_at__lte=now)
    for delivery in list(due):
        with transaction.atomic():
            won = Delivery.objects.filter(
                pk=delivery.pk, status=Delivery.Status.SENT, expires_at__lte=now
            ).update(status=Delivery.Status.EXPIRED)
            if won:
                audit.record(
                    AuditEvent.Kind.EXPIRED,
                    delivery=delivery,
                    expires_at=delivery.expires_at.isoformat(),
                )
                done["expired"] += 1

    purge = Delivery.objects.filter(
        status__in=[Delivery.Status.EXPIRED, Delivery.Status.REVOKED],
        blobs_deleted_at__isnull=True,
    )
    for delivery in list(purge):
        for name in delivery.files.values_list("storage_name", flat=True):
            store.delete(name)
        done["purged"] += Delivery.objects.filter(
            pk=delivery.pk, blobs_deleted_at__isnull=True
        ).update(blobs_deleted_at=timezone.now())
    return done
