"""Queue, render and send mails through the persisted outbox (DESIGN.md section 6).

A row goes ``pending`` → ``sending`` (claimed by one worker, which counts the
attempt) → ``sent``, or back to ``pending`` with a backoff after an SMTP error, or
``failed`` after ``OUTBOX_MAX_ATTEMPTS`` or an error that retrying cannot fix.  The
periodic ``sweep()`` hands rows to workers again whose task message was lost or
whose worker died.  A mail goes out twice only if a worker dies after the SMTP
server accepted it and before the row is marked sent.
"""

import logging
import smtplib
from datetime import timedelta
from urllib.parse import urlsplit

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.core.mail.message import make_msgid
from django.db import transaction
from django.db.models import F
from django.template.loader import render_to_string
from django.utils import timezone, translation

from outbox.models import OutgoingMail

log = logging.getLogger(__name__)

SCRUB_PREFIX = "secret_"
SWEEP_BATCH = 500
WORKER_LOST = "The worker sending this mail stopped or did not finish in time."


def queue_mail(to: str, template: str, context: dict, language: str) -> OutgoingMail:
    """Write an outbox row in the caller's transaction; a worker sends it after commit.

    ``context`` must be JSON: primary keys, links and plain strings.  Keys starting
    with ``secret_`` (links with tokens) are removed from the row once it is sent.
    If the caller's transaction rolls back, the row and the task go with it.
    """
    mail = OutgoingMail.objects.create(to=to, template=template, context=context, language=language)
    enqueue(mail.pk)
    return mail


def enqueue(pk: int) -> None:
    """Give a row to a worker once the current transaction commits.

    Robust: if the broker cannot be reached, the request that caused the mail does
    not fail for it; the row stays waiting and ``sweep()`` queues it later.
    """
    from outbox.tasks import send_mail_task

    def send_after_commit():
        send_mail_task.delay(pk)

    transaction.on_commit(send_after_commit, robust=True)


def send_again(mail: OutgoingMail) -> bool:
    """Queue a row once more with a fresh count of attempts (admin action).

    Returns False, changing nothing, for a row being sent right now (it is left to
    its worker) and for a sent row whose links with tokens were removed (it can no
    longer be rendered as it was).  The check is part of the update, so a worker
    finishing meanwhile cannot slip through.
    """
    queued = (
        OutgoingMail.objects.filter(pk=mail.pk, scrubbed=False)
        .exclude(status=OutgoingMail.Status.SENDING)
        .update(
            status=OutgoingMail.Status.PENDING,
            next_attempt_at=timezone.now(),
            attempts=0,
            last_error="",
            claimed_at=None,
        )
    )
    if queued:
        enqueue(mail.pk)
    return bool(queued)


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
            "Content-Language": mail.language,
            "Message-ID": make_msgid(domain=urlsplit(settings.SITE_URL).hostname),
        },
    )
    message.attach_alternative(html, "text/html")
    return message


def claim(pk: int) -> OutgoingMail | None:
    """Mark a due row as being sent by this worker; None if it is not due or taken.

    The attempt is counted here, so a mail whose sending kills the worker every
    time ends as failed instead of being swept forever.
    """
    now = timezone.now()
    claimed = (
        OutgoingMail.objects.filter(pk=pk)
        .due(now)
        .update(status=OutgoingMail.Status.SENDING, claimed_at=now, attempts=F("attempts") + 1)
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
    try:
        message = render(mail)
    except Exception as e:
        # A missing template or a context it cannot use fails the same way every time.
        log.exception("mail %s (%s) cannot be rendered", mail.pk, mail.template)
        _record_failure(mail, OutgoingMail.Status.FAILED, _describe(e))
        return "failed"
    try:
        message.send()
    except Exception as e:
        if mail.attempts >= settings.OUTBOX_MAX_ATTEMPTS or _permanent(e):
            status, next_attempt_at = OutgoingMail.Status.FAILED, None
        else:
            status = OutgoingMail.Status.PENDING
            next_attempt_at = timezone.now() + backoff(mail.attempts)
        _record_failure(mail, status, _describe(e), next_attempt_at)
        log.warning(
            "mail %s (%s) failed on attempt %s, now %s: %s",
            mail.pk,
            mail.template,
            mail.attempts,
            status,
            _describe(e),
        )
        return "retry" if status == OutgoingMail.Status.PENDING else "failed"
    # Links with tokens in them are needed only until the mail is out.  The mail
    # is out, so this is recorded even if the sweep took the row from us meanwhile:
    # that keeps a waiting copy from going out a second time.
    context = {k: v for k, v in mail.context.items() if not k.startswith(SCRUB_PREFIX)}
    OutgoingMail.objects.filter(pk=mail.pk).update(
        status=OutgoingMail.Status.SENT,
        sent_at=timezone.now(),
        last_error="",
        message_id=message.extra_headers["Message-ID"],
        context=context,
        scrubbed=len(context) < len(mail.context),
    )
    return "sent"


def sweep(now=None) -> int:
    """Give rows to workers again whose task was lost or whose worker died.

    A row stuck in sending has used up an attempt; after the last one it fails.
    Returns how many rows were queued.
    """
    now = now or timezone.now()
    stuck = OutgoingMail.objects.stuck(now)
    stuck.filter(attempts__gte=settings.OUTBOX_MAX_ATTEMPTS).update(
        status=OutgoingMail.Status.FAILED, last_error=WORKER_LOST
    )
    # Due since the claim, so the row is overdue now.
    stuck.update(
        status=OutgoingMail.Status.PENDING, next_attempt_at=F("claimed_at"), last_error=WORKER_LOST
    )
    pks = list(
        OutgoingMail.objects.overdue(now)
        .order_by("next_attempt_at")
        .values_list("pk", flat=True)[:SWEEP_BATCH]
    )
    from outbox.tasks import send_mail_task

    for pk in pks:
        send_mail_task.delay(pk)
    if pks:
        log.info("outbox sweep queued %s mails again", len(pks))
    return len(pks)


def _record_failure(mail, status, error, next_attempt_at=None):
    """Store the outcome of a failed attempt, unless the sweep took the row meanwhile."""
    fields = {"status": status, "last_error": error}
    if next_attempt_at is not None:
        fields["next_attempt_at"] = next_attempt_at
    OutgoingMail.objects.filter(
        pk=mail.pk, status=OutgoingMail.Status.SENDING, claimed_at=mail.claimed_at
    ).update(**fields)


def _permanent(error: Exception) -> bool:
    """The SMTP server refused the recipient for good (5xx): retrying cannot help."""
    return isinstance(error, smtplib.SMTPRecipientsRefused) and all(
        500 <= code < 600 for code, _message in error.recipients.values()
    )


def _describe(error: Exception) -> str:
    return f"{type(error).__name__}: {error}"[:2000]
