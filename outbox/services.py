"""Queue, render and send mails through the persisted outbox (DESIGN.md section 6)."""

import logging
from datetime import timedelta
from urllib.parse import urlsplit

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.core.mail.message import make_msgid
from django.db import transaction
from django.template.loader import render_to_string
from django.utils import timezone, translation

from outbox.models import OutgoingMail

log = logging.getLogger(__name__)


def queue_mail(to: str, template: str, context: dict, language: str) -> OutgoingMail:
    """Write an outbox row in the caller's transaction; a worker sends it after commit.

    ``context`` must be JSON: primary keys, links and plain strings.  Keys starting
    with ``secret_`` (links with tokens) are removed from the row once it is sent.
    If the caller's transaction rolls back, the row and the task go with it.
    """
    mail = OutgoingMail.objects.create(to=to, template=template, context=context, language=language)
    from outbox.tasks import send_mail_task

    transaction.on_commit(lambda: send_mail_task.delay(mail.pk))
    return mail


def render(mail: OutgoingMail) -> EmailMultiAlternatives:
    context = {**mail.context, "site_name": settings.SITE_NAME, "site_url": settings.SITE_URL}
    with translation.override(mail.language):
        subject = render_to_string(f"mail/{mail.template}_subject.txt", context)
        text = render_to_string(f"mail/{mail.template}.txt", context)
        html = render_to_string(f"mail/{mail.template}.html", context)
    message = EmailMultiAlternatives(
        subject=" ".join(subject.split()),
        body=text,
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=[mail.to],
        headers={
            "Auto-Submitted": "auto-generated",
            "Message-ID": make_msgid(domain=urlsplit(settings.SITE_URL).hostname),
        },
    )
    message.attach_alternative(html, "text/html")
    return message


def claim(pk: int) -> OutgoingMail | None:
    """Mark a due row as being sent by this worker; None if another worker has it."""
    now = timezone.now()
    claimed = (
        OutgoingMail.objects.filter(pk=pk)
        .due(now)
        .update(status=OutgoingMail.Status.SENDING, claimed_at=now)
    )
    if not claimed:
        return None
    return OutgoingMail.objects.get(pk=pk)


def backoff(attempts: int) -> timedelta:
    return timedelta(seconds=min(30 * 2 ** (attempts - 1), 6 * 60 * 60))


def deliver(pk: int) -> str:
    """Send one row if it is due. Returns what happened, for logs and tests."""
    mail = claim(pk)
    if mail is None:
        return "skipped"
    mail.attempts += 1
    try:
        message = render(mail)
        message.send()
    except Exception as e:
        mail.last_error = f"{type(e).__name__}: {e}"[:2000]
        if mail.attempts >= settings.OUTBOX_MAX_ATTEMPTS:
            mail.status = OutgoingMail.Status.FAILED
        else:
            mail.status = OutgoingMail.Status.PENDING
            mail.next_attempt_at = timezone.now() + backoff(mail.attempts)
        mail.save(update_fields=["attempts", "last_error", "status", "next_attempt_at"])
        log.warning(
            "mail %s to template %s failed (attempt %s): %s",
            mail.pk,
            mail.template,
            mail.attempts,
            mail.last_error,
        )
        return "retry" if mail.status == OutgoingMail.Status.PENDING else "failed"
    mail.status = OutgoingMail.Status.SENT
    mail.sent_at = timezone.now()
    mail.last_error = ""
    mail.message_id = message.extra_headers["Message-ID"]
    # Links with tokens in them are needed only until the mail is out.
    mail.context = {k: v for k, v in mail.context.items() if not k.startswith("secret_")}
    mail.save(
        update_fields=["attempts", "last_error", "status", "sent_at", "message_id", "context"]
    )
    return "sent"
