"""Remind senders a day before a delivery expires that not everybody has downloaded it.

Periodic: ``deliveries.reminders.remind_expiring`` in CELERY_BEAT_SCHEDULE.
"""

from datetime import timedelta

from celery import shared_task
from django.conf import settings
from django.db import transaction
from django.db.models import F, Q
from django.urls import reverse
from django.utils import timezone

from deliveries.models import Delivery
from outbox.services import queue_mail

REMIND_BEFORE = timedelta(days=1)
BATCH = 500


def due(now):
    """Active deliveries expiring within a day, out for at least a day (a sender who
    just sent a one-day delivery needs no reminder), with someone still to download,
    and not reminded for this expiry yet: after an extension they are due again."""
    return (
        Delivery.objects.active(now)
        .filter(expires_at__lte=now + REMIND_BEFORE, sent_at__lte=now - REMIND_BEFORE)
        .filter(Q(reminded_at__isnull=True) | Q(reminded_at__lt=F("expires_at") - REMIND_BEFORE))
        .filter(recipients__revoked_at__isnull=True, recipients__downloaded_at__isnull=True)
        .distinct()
    )


def send_reminders(now=None) -> int:
    """Queue one reminder per due delivery; returns how many were queued.

    Each delivery is claimed by a conditional update, so two runs at once (or a run
    repeated by a redelivered task message) remind once.
    """
    now = now or timezone.now()
    queued = 0
    for pk in list(due(now).order_by("expires_at").values_list("pk", flat=True)[:BATCH]):
        with transaction.atomic():
            claimed = (
                Delivery.objects.filter(pk=pk)
                .filter(
                    Q(reminded_at__isnull=True) | Q(reminded_at__lt=F("expires_at") - REMIND_BEFORE)
                )
                .update(reminded_at=now)
            )
            if not claimed:
                continue
            delivery = Delivery.objects.select_related("sender").get(pk=pk)
            recipients = list(delivery.recipients.filter(revoked_at__isnull=True))
            pending = [r.email for r in recipients if r.downloaded_at is None]
            if not pending or not delivery.sender.is_active:
                continue
            queue_mail(
                delivery.sender.email,
                "expiry_reminder",
                {
                    "subject": delivery.subject,
                    "expires_at": delivery.expires_at.isoformat(),
                    "delivery_url": settings.SITE_URL
                    + reverse("sender:detail", kwargs={"pk": delivery.pk}),
                    "recipient_count": len(recipients),
                    "pending": pending,
                    "pending_count": len(pending),
                },
                language=delivery.sender.language,
            )
            queued += 1
    return queued


@shared_task(ignore_result=True)
def remind_expiring() -> int:
    """Periodic (CELERY_BEAT_SCHEDULE, hourly): remind senders of deliveries about to expire."""
    return send_reminders()
