""" "Approval needed" mails: a recipient of level 3/4 deliveries made or reset a key.

Receivers of ``secupass.signals.key_created`` and ``key_reset`` (connected in
``DeliveriesConfig.ready``). Every sender with an active level 3/4 delivery to the key's
address, which the new key cannot open yet, gets one mail per key, listing those
deliveries and pointing to the approval page. The signals are sent inside the transaction
that registers the key, so the mail is queued (or not) together with it.
"""

from django.conf import settings
from django.urls import reverse

from deliveries.models import Delivery, KeyEntry
from outbox.services import queue_mail


def waiting_deliveries(user, key):
    """Active level 3/4 deliveries to the user's address (not revoked for it) of other
    senders, without an entry for ``key``, grouped by sender."""
    deliveries = (
        Delivery.objects.active()
        .filter(
            level__in=(Delivery.Level.SECUPASS, Delivery.Level.SECUPASS_PLUS),
            recipients__email=user.email,
            recipients__revoked_at__isnull=True,
        )
        .exclude(sender=user)
        .exclude(
            pk__in=KeyEntry.objects.filter(kind=KeyEntry.Kind.P256, key_ref=str(key.id)).values(
                "delivery_id"
            )
        )
        .select_related("sender")
        .order_by("sender_id", "sent_at")
        .distinct()
    )
    by_sender: dict = {}
    for delivery in deliveries:
        by_sender.setdefault(delivery.sender, []).append(delivery)
    return by_sender


def tell_senders(user, key, *, reset: bool) -> int:
    """Queue one "approval needed" mail per sender; returns how many were queued."""
    if not (user.is_active and (user.is_sender or user.email_verified_at)):
        return 0  # not an address the account has shown to be its own
    by_sender = waiting_deliveries(user, key)
    approvals_url = settings.SITE_URL + reverse("sender:approvals")
    for sender, deliveries in by_sender.items():
        if not sender.is_sender:
            continue
        queue_mail(
            sender.email,
            "key_approval_needed",
            {
                "recipient_email": user.email,
                "reset": reset,
                "subjects": [d.subject for d in deliveries],
                "approvals_url": approvals_url,
            },
            language=sender.language or settings.LANGUAGE_CODE,
        )
    return len(by_sender)


def on_key_created(sender, *, user, key, **kwargs):
    tell_senders(user, key, reset=False)


def on_key_reset(sender, *, user, old_key, new_key, **kwargs):
    tell_senders(user, new_key, reset=True)


def connect():
    from secupass import signals

    signals.key_created.connect(on_key_created, dispatch_uid="deliveries.key_mail.key_created")
    signals.key_reset.connect(on_key_reset, dispatch_uid="deliveries.key_mail.key_reset")
