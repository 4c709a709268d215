"""Workflows that span several models: creating, sending, withdrawing, extending."""

from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from deliveries import audit
from deliveries.models import AuditEvent, Delivery, DeliveryFile, KeyEntry, Recipient, new_token
from deliveries.storage import StoreError, blob_store
from outbox.services import queue_mail
from secupass import masterkeys, sxf


class SendError(Exception):
    """Why a delivery cannot go out, in words for the sender."""


def verify_files(delivery: Delivery, delivery_key: bytes) -> None:
    """Check every blob's header against its record and authenticate it whole, so a
    broken upload is caught while the sender is still there (DESIGN.md section 5)."""
    store = blob_store()
    for f in delivery.files.all():
        if f.state == DeliveryFile.State.UPLOADING:
            raise SendError(_("The file “%(name)s” has not finished uploading.") % {"name": f.name})
        if f.state == DeliveryFile.State.VERIFIED:
            continue
        try:
            with store.open(f.storage_name) as blob:
                sxf.verify_blob(
                    delivery_key,
                    blob,
                    delivery_id=delivery.id,
                    file_id=f.id,
                    blob_length=f.blob_size,
                )
        except (sxf.SXFError, StoreError) as e:
            raise SendError(
                _("The file “%(name)s” arrived damaged (%(error)s). Please upload it again.")
                % {"name": f.name, "error": e}
            ) from e
        DeliveryFile.objects.filter(pk=f.pk).update(state=DeliveryFile.State.VERIFIED)


def check_sendable(delivery: Delivery) -> None:
    """What every level needs before it can go out: a draft with files and recipients."""
    if delivery.status != Delivery.Status.DRAFT:
        raise SendError(_("This delivery has been sent already."))
    if not delivery.files.exists():
        raise SendError(_("Add at least one file."))
    if not delivery.recipients.exists():
        raise SendError(_("Add at least one recipient."))


def lock_draft(delivery: Delivery) -> Delivery:
    """Lock the delivery's row for this transaction; refuse if it was sent meanwhile."""
    locked = Delivery.objects.select_for_update().get(pk=delivery.pk)
    if locked.status != Delivery.Status.DRAFT:
        raise SendError(_("This delivery has been sent already."))
    return locked


def send(delivery: Delivery, *, delivery_key: bytes | None, actor, request=None) -> None:
    """Send a draft at level 1 or 2: wrap the key, give every recipient a link, queue mails.

    Levels 3 and 4 go out through ``deliveries.services_e2e.send_e2e``.
    """
    if not delivery.server_holds_key:
        raise SendError(
            _("At levels 3 and 4 the delivery key never reaches the server; send key entries.")
        )
    check_sendable(delivery)
    if delivery_key is None or len(delivery_key) != 32:
        raise SendError(_("The delivery key is missing or malformed."))
    verify_files(delivery, delivery_key)
    with transaction.atomic():
        lock_draft(delivery)
        entry = masterkeys.wrap(delivery.id, delivery_key)
        KeyEntry.objects.create(
            delivery=delivery, kind=KeyEntry.Kind.KEK, key_ref=entry["kek_id"], data=entry
        )
        go_out(delivery, actor=actor, request=request)


def go_out(delivery: Delivery, *, actor, request=None) -> None:
    """Mark a locked draft sent, give every recipient a link and queue the mails (all
    levels; call inside the transaction that stored the key entries)."""
    # Re-checked under the lock: a file added after the checks (tus creation locks the
    # same row) would otherwise go out unfinished or unverified.
    ready = [DeliveryFile.State.VERIFIED]
    if not delivery.server_holds_key:
        ready.append(DeliveryFile.State.COMPLETE)  # the server cannot authenticate these
    if delivery.files.exclude(state__in=ready).exists():
        raise SendError(_("A file was added while sending. Please send again."))
    now = timezone.now()
    delivery.status = Delivery.Status.SENT
    delivery.sent_at = now
    delivery.save(update_fields=["status", "sent_at"])
    files = list(delivery.files.all())
    for recipient in delivery.recipients.all():
        token, digest = new_token()
        recipient.token_hash = digest
        recipient.mail_sent_at = now
        recipient.save(update_fields=["token_hash", "mail_sent_at"])
        queue_mail(
            recipient.email,
            "delivery_new",
            mail_context(delivery, files, secret_link=link(token)),
            language=delivery.language,
        )
    audit.record(
        AuditEvent.Kind.SENT,
        request=request,
        actor=actor,
        delivery=delivery,
        recipients=delivery.recipients.count(),
        files=len(files),
        bytes=sum(f.size for f in files),
    )


def link(token: str) -> str:
    from django.conf import settings
    from django.urls import reverse

    return settings.SITE_URL + reverse("receive:landing", kwargs={"token": token})


def mail_context(delivery: Delivery, files, **extra) -> dict:
    """What a delivery mail may show. Level 4 mails carry no message and no names."""
    context = {
        "sender_name": delivery.sender.get_full_name(),
        "sender_email": delivery.sender.email,
        "subject": delivery.subject,
        "level": delivery.level,
        "expires_at": delivery.expires_at.isoformat(),
        "file_count": len(files),
        "total_size": sum(f.size for f in files),
        **extra,
    }
    if delivery.level < Delivery.Level.SECUPASS_PLUS:
        context["message"] = delivery.message
        context["file_names"] = [f.name for f in files]
    return context


def new_recipient(delivery: Delivery, email: str) -> Recipient:
    """A recipient row for a draft; its real link token is made when the delivery is sent."""
    return Recipient.objects.create(delivery=delivery, email=email, token_hash=new_token()[1])


class ActionRefused(Exception):
    """Why a change to a delivery is refused, in words for the sender."""


def create_draft(sender, data: dict, *, request=None) -> Delivery:
    """A draft from a valid ``DeliveryForm``'s cleaned data, with its recipients."""
    with transaction.atomic():
        delivery = Delivery.objects.create(
            sender=sender,
            level=data["level"],
            subject=data["subject"],
            message=data["message"],
            language=data["language"],
            expires_at=timezone.now() + timedelta(days=data["expires_in_days"]),
            download_limit=data["download_limit"],
            notify_on_download=data["notify_on_download"],
        )
        for email in data["recipients"]:
            new_recipient(delivery, email)
        audit.record(
            AuditEvent.Kind.CREATED,
            request=request,
            actor=sender,
            delivery=delivery,
            level=delivery.level,
            recipients=len(data["recipients"]),
        )
    return delivery


def _locked(delivery: Delivery) -> Delivery:
    """The delivery's row, locked for this transaction, with its current values."""
    return Delivery.objects.select_for_update().get(pk=delivery.pk)


def _refuse_unless_active(delivery: Delivery) -> None:
    if delivery.status == Delivery.Status.DRAFT:
        raise ActionRefused(_("This delivery has not been sent yet."))
    if delivery.status == Delivery.Status.REVOKED:
        raise ActionRefused(_("This delivery has been withdrawn already."))
    if delivery.status == Delivery.Status.EXPIRED or delivery.expires_at <= timezone.now():
        raise ActionRefused(_("This delivery has expired."))


def _queue_revoked_mail(delivery: Delivery, recipient: Recipient) -> None:
    queue_mail(
        recipient.email,
        "delivery_revoked",
        {
            "sender_name": delivery.sender.get_full_name(),
            "sender_email": delivery.sender.email,
            "subject": delivery.subject,
        },
        language=delivery.language,
    )


def revoke(delivery: Delivery, *, actor, request=None) -> Delivery:
    """Withdraw a sent delivery: no link works any more, and each recipient who got
    the mail is told. The blobs go with the next cleanup run."""
    with transaction.atomic():
        locked = _locked(delivery)
        _refuse_unless_active(locked)
        locked.status = Delivery.Status.REVOKED
        locked.revoked_at = timezone.now()
        locked.save(update_fields=["status", "revoked_at"])
        told = 0
        for recipient in locked.recipients.filter(revoked_at__isnull=True):
            if recipient.mail_sent_at:
                _queue_revoked_mail(locked, recipient)
                told += 1
        audit.record(
            AuditEvent.Kind.REVOKED, request=request, actor=actor, delivery=locked, told=told
        )
    return locked


def revoke_recipient(recipient: Recipient, *, actor, request=None) -> Recipient:
    """Withdraw one recipient's link; the others keep theirs."""
    with transaction.atomic():
        delivery = _locked(recipient.delivery)
        _refuse_unless_active(delivery)
        recipient = Recipient.objects.select_for_update().get(pk=recipient.pk)
        if recipient.revoked_at:
            raise ActionRefused(
                _("The link for %(email)s has been withdrawn already.") % {"email": recipient.email}
            )
        recipient.revoked_at = timezone.now()
        recipient.save(update_fields=["revoked_at"])
        if recipient.mail_sent_at:
            _queue_revoked_mail(delivery, recipient)
        audit.record(
            AuditEvent.Kind.RECIPIENT_REVOKED,
            request=request,
            actor=actor,
            delivery=delivery,
            recipient=recipient,
        )
    return recipient


def max_extension_days(delivery: Delivery, now=None) -> int:
    """How many days the expiry can still move: it stays within DELIVERY_MAX_DAYS of now."""
    now = now or timezone.now()
    start = max(delivery.expires_at, now)
    left = now + timedelta(days=settings.DELIVERY_MAX_DAYS) - start
    return max(0, left.days)


def extend(delivery: Delivery, days: int, *, actor, request=None) -> Delivery:
    """Keep a delivery (draft or sent) ``days`` longer than now planned."""
    with transaction.atomic():
        locked = _locked(delivery)
        if locked.status != Delivery.Status.DRAFT:
            _refuse_unless_active(locked)
        if days < 1:
            raise ActionRefused(_("Extend by at least one day."))
        left = max_extension_days(locked)
        if days > left:
            limits = {"max": settings.DELIVERY_MAX_DAYS, "left": left}
            if left == 0:
                raise ActionRefused(
                    _(
                        "A delivery can be kept for at most %(max)d days from today; "
                        "this one cannot be extended further."
                    )
                    % limits
                )
            raise ActionRefused(
                ngettext(
                    "A delivery can be kept for at most %(max)d days from today, so this one "
                    "can be extended by %(left)d day at most.",
                    "A delivery can be kept for at most %(max)d days from today, so this one "
                    "can be extended by %(left)d days at most.",
                    left,
                )
                % limits
            )
        before = locked.expires_at
        locked.extend(days)
        audit.record(
            AuditEvent.Kind.EXTENDED,
            request=request,
            actor=actor,
            delivery=locked,
            days=days,
            expires_before=before.isoformat(),
            expires_at=locked.expires_at.isoformat(),
        )
    return locked


def delete_draft(delivery: Delivery) -> None:
    """Remove a draft that was never sent, with its uploaded blobs."""
    with transaction.atomic():
        locked = _locked(delivery)
        if locked.status != Delivery.Status.DRAFT:
            raise ActionRefused(_("Only a draft can be deleted; withdraw a sent delivery instead."))
        names = list(locked.files.values_list("storage_name", flat=True))
        locked.delete()
    store = blob_store()
    for name in names:
        if name:
            store.delete(name)
