import email
import smtplib
import stat
from datetime import timedelta
from email import policy

import pytest
from celery.beat import Scheduler
from django.contrib.auth.models import Permission
from django.core import mail
from django.core.mail.backends.base import BaseEmailBackend
from django.db import transaction
from django.urls import reverse
from django.utils import timezone

from accounts.models import User
from outbox import services
from outbox.models import OutgoingMail
from outbox.tasks import send_mail_task, sweep_outbox
from secushare.celery import app

LINK = "https://secushare.example/accounts/reset/MQ/c4t-0123456789abcdef/"
CHANGELIST = "admin:outbox_outgoingmail_changelist"


class DisconnectingBackend(BaseEmailBackend):
    """An SMTP relay that hangs up: every send fails the way smtplib fails."""

    def send_messages(self, email_messages):
        raise smtplib.SMTPServerDisconnected("Connection unexpectedly closed")


class UnknownRecipientBackend(BaseEmailBackend):
    """An SMTP relay that refuses the recipient for good."""

    def send_messages(self, email_messages):
        refused = {m.to[0]: (550, b"5.1.1 No such user") for m in email_messages}
        raise smtplib.SMTPRecipientsRefused(refused)


@pytest.fixture
def eager(settings):
    settings.CELERY_TASK_ALWAYS_EAGER = True
    settings.CELERY_TASK_EAGER_PROPAGATES = True


def queue_reset(to="ada@example.org", language="en"):
    return services.queue_mail(
        to, "password_reset", {"name": "Ada", "secret_link": LINK}, language=language
    )


def make_due(row):
    """Move the clock: the backoff of the last attempt is over."""
    OutgoingMail.objects.filter(pk=row.pk).update(next_attempt_at=timezone.now())


def test_rolled_back_transaction_sends_nothing(db, eager, django_capture_on_commit_callbacks):
    with (
        django_capture_on_commit_callbacks(execute=True) as callbacks,
        pytest.raises(RuntimeError),
        transaction.atomic(),
    ):
        queue_reset()
        raise RuntimeError("the change that caused the mail failed")
    assert callbacks == []
    assert not OutgoingMail.objects.exists()
    assert mail.outbox == []


def test_committed_mail_is_sent_once(db, eager, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        row = queue_reset()
    assert len(callbacks) == 1
    assert len(mail.outbox) == 1
    row.refresh_from_db()
    assert row.status == OutgoingMail.Status.SENT
    assert row.attempts == 1
    assert row.sent_at is not None
    assert row.message_id == mail.outbox[0].extra_headers["Message-ID"]

    # A second copy of the task (redelivery, sweep) finds the row sent.
    assert send_mail_task.delay(row.pk).get() == "skipped"
    assert sweep_outbox() == 0
    assert len(mail.outbox) == 1


@pytest.mark.parametrize("language", ["en", "de"])
def test_mail_has_text_and_html_in_the_rows_language(
    db, eager, django_capture_on_commit_callbacks, language
):
    with django_capture_on_commit_callbacks(execute=True):
        queue_reset(language=language)
    [message] = mail.outbox
    assert message.to == ["ada@example.org"]
    assert LINK in message.body
    [(html, mimetype)] = message.alternatives
    assert mimetype == "text/html"
    assert LINK in html
    assert f'<html lang="{language}">' in html
    parsed = message.message()
    assert parsed["Content-Language"] == language
    assert parsed["Auto-Submitted"] == "auto-generated"
    assert "\n" not in message.subject


def test_english_subject(db, eager, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        queue_reset(language="en")
    assert mail.outbox[0].subject == "Reset your SecuShare password"


def test_smtp_failure_is_retried_with_backoff(
    db, eager, settings, django_capture_on_commit_callbacks
):
    settings.EMAIL_BACKEND = f"{__name__}.DisconnectingBackend"
    before = timezone.now()
    with django_capture_on_commit_callbacks(execute=True):
        row = queue_reset()
    row.refresh_from_db()
    assert mail.outbox == []
    assert row.status == OutgoingMail.Status.PENDING
    assert row.attempts == 1
    assert row.last_error.startswith("SMTPServerDisconnected")
    assert row.next_attempt_at >= before + services.backoff(1)
    assert row.next_attempt_at <= timezone.now() + services.backoff(1)
    assert row.context["secret_link"] == LINK


def test_backoff_doubles_and_is_capped():
    assert [services.backoff(n).total_seconds() for n in (1, 2, 3, 4)] == [30, 60, 120, 240]
    assert services.backoff(30) == timedelta(hours=6)


def test_fails_after_max_attempts(db, settings):
    settings.OUTBOX_MAX_ATTEMPTS = 3
    settings.EMAIL_BACKEND = f"{__name__}.DisconnectingBackend"
    row = queue_reset()
    delays = []
    for _attempt in range(2):
        started = timezone.now()
        assert services.deliver(row.pk) == "retry"
        row.refresh_from_db()
        delays.append(row.next_attempt_at - started)
        assert services.deliver(row.pk) == "skipped"  # not due before the backoff is over
        make_due(row)
    assert delays[0] >= services.backoff(1)
    assert delays[1] >= services.backoff(2)
    assert services.deliver(row.pk) == "failed"
    row.refresh_from_db()
    assert row.status == OutgoingMail.Status.FAILED
    assert row.attempts == 3
    assert row.last_error.startswith("SMTPServerDisconnected")
    assert services.deliver(row.pk) == "skipped"
    assert mail.outbox == []


def test_recipient_refused_for_good_is_not_retried(db, settings):
    settings.EMAIL_BACKEND = f"{__name__}.UnknownRecipientBackend"
    row = queue_reset()
    assert services.deliver(row.pk) == "failed"
    row.refresh_from_db()
    assert row.status == OutgoingMail.Status.FAILED
    assert row.attempts == 1
    assert "No such user" in row.last_error


def test_mail_that_cannot_be_rendered_fails_at_once(db):
    row = services.queue_mail("ada@example.org", "no_such_mail", {}, language="en")
    assert services.deliver(row.pk) == "failed"
    row.refresh_from_db()
    assert row.status == OutgoingMail.Status.FAILED
    assert row.attempts == 1
    assert row.last_error.startswith("TemplateDoesNotExist")
    assert mail.outbox == []


def test_secret_context_is_removed_once_sent(db, eager, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        with_secret = queue_reset()
        without_secret = services.queue_mail(
            "bob@example.org", "password_reset", {"name": "Bob"}, language="en"
        )
    with_secret.refresh_from_db()
    without_secret.refresh_from_db()
    assert with_secret.context == {"name": "Ada"}
    assert with_secret.scrubbed
    assert without_secret.context == {"name": "Bob"}
    assert not without_secret.scrubbed
    assert LINK in mail.outbox[0].body


def test_embedded_backend_keeps_an_eml_file(
    db, eager, settings, tmp_path, capsys, django_capture_on_commit_callbacks
):
    settings.EMAIL_BACKEND = "outbox.backends.ConsoleAndFileBackend"
    settings.EMAIL_FILE_PATH = tmp_path / "mail"
    with django_capture_on_commit_callbacks(execute=True):
        queue_reset(language="de")
    [path] = (tmp_path / "mail").iterdir()
    assert path.suffix == ".eml"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    message = email.message_from_bytes(path.read_bytes(), policy=policy.default)
    assert message["To"] == "ada@example.org"
    assert message["Content-Language"] == "de"
    assert message.get_content_type() == "multipart/alternative"
    assert LINK in message.get_body(("plain",)).get_content()
    html = message.get_body(("html",)).get_content()
    assert LINK in html
    assert '<html lang="de">' in html
    assert "ada@example.org" in capsys.readouterr().out


def test_sweep_resends_lost_and_stuck_mails(db, eager, settings):
    settings.OUTBOX_STUCK_SECONDS = 60
    settings.OUTBOX_MAX_ATTEMPTS = 3
    now = timezone.now()
    long_ago = now - timedelta(minutes=2)
    context = {"name": "Ada", "secret_link": LINK}

    def row(to, **fields):
        return OutgoingMail.objects.create(
            to=to, template="password_reset", context=context, language="en", **fields
        )

    lost = row("lost@example.org", next_attempt_at=long_ago)
    on_its_way = row("on-its-way@example.org", next_attempt_at=now)
    later = row("later@example.org", attempts=1, next_attempt_at=now + timedelta(minutes=5))
    died = row("died@example.org", status="sending", attempts=1, claimed_at=long_ago)
    busy = row("busy@example.org", status="sending", attempts=1, claimed_at=now)
    died_last = row("died-last@example.org", status="sending", attempts=3, claimed_at=long_ago)

    assert sweep_outbox() == 2

    assert sorted(m.to[0] for m in mail.outbox) == ["died@example.org", "lost@example.org"]
    status = dict(OutgoingMail.objects.values_list("pk", "status"))
    assert status[lost.pk] == status[died.pk] == OutgoingMail.Status.SENT
    assert status[on_its_way.pk] == status[later.pk] == OutgoingMail.Status.PENDING
    assert status[busy.pk] == OutgoingMail.Status.SENDING
    assert status[died_last.pk] == OutgoingMail.Status.FAILED
    died.refresh_from_db()
    died_last.refresh_from_db()
    assert died.attempts == 2
    assert died_last.last_error == services.WORKER_LOST


def test_beat_schedules_the_sweep():
    app.loader.import_default_modules()
    scheduler = Scheduler(app=app, lazy=False)
    entry = scheduler.schedule["sweep-outbox"]
    assert entry.task == sweep_outbox.name == "outbox.tasks.sweep_outbox"
    assert entry.task in app.tasks
    assert entry.schedule.run_every == timedelta(seconds=60)


# -- Administration ------------------------------------------------------------------


def make_row(**fields):
    fields.setdefault("to", "ada@example.org")
    fields.setdefault("context", {"name": "Ada", "secret_link": LINK})
    return OutgoingMail.objects.create(template="password_reset", language="en", **fields)


def post_send_again(client, *rows):
    return client.post(
        reverse(CHANGELIST),
        {"action": "send_again", "_selected_action": [r.pk for r in rows]},
        follow=True,
    )


def test_admin_sends_a_failed_mail_again(admin_client, eager, django_capture_on_commit_callbacks):
    row = make_row(status="failed", attempts=8, last_error="SMTPServerDisconnected: gone")
    with django_capture_on_commit_callbacks(execute=True):
        response = post_send_again(admin_client, row)
    assert "1 mail was queued again." in response.text
    row.refresh_from_db()
    assert row.status == OutgoingMail.Status.SENT
    assert row.attempts == 1
    assert row.last_error == ""
    assert [m.to for m in mail.outbox] == [["ada@example.org"]]
    assert LINK in mail.outbox[0].body


def test_admin_refuses_mails_whose_links_were_removed(
    admin_client, eager, django_capture_on_commit_callbacks
):
    scrubbed = make_row(status="sent", scrubbed=True, context={"name": "Ada"})
    sending = make_row(to="busy@example.org", status="sending", claimed_at=timezone.now())
    pending = make_row(to="waiting@example.org", status="pending", attempts=2)
    receipt = make_row(to="sam@example.org", status="sent", context={"name": "Sam"})
    with django_capture_on_commit_callbacks(execute=True):
        response = post_send_again(admin_client, scrubbed, sending, pending, receipt)
    assert "2 mails were queued again." in response.text
    assert "1 mail was not queued again: it was sent and its links with tokens" in response.text
    assert "1 mail is being sent right now and was left alone." in response.text
    assert sorted(m.to[0] for m in mail.outbox) == ["sam@example.org", "waiting@example.org"]
    scrubbed.refresh_from_db()
    sending.refresh_from_db()
    assert (scrubbed.status, scrubbed.attempts) == (OutgoingMail.Status.SENT, 0)
    assert sending.status == OutgoingMail.Status.SENDING


def test_non_staff_user_cannot_send_again(sender_client, eager):
    row = make_row(status="failed", attempts=8)
    response = sender_client.post(
        reverse(CHANGELIST), {"action": "send_again", "_selected_action": [row.pk]}
    )
    assert response.status_code == 302
    assert response.url.startswith(reverse("admin:login"))
    row.refresh_from_db()
    assert (row.status, row.attempts) == (OutgoingMail.Status.FAILED, 8)
    assert mail.outbox == []


def test_staff_who_may_only_view_mails_cannot_send_again(db, client, eager, password):
    viewer = User.objects.create_user("viewer@example.org", password, is_staff=True)
    viewer.user_permissions.add(Permission.objects.get(codename="view_outgoingmail"))
    client.force_login(viewer)
    row = make_row(status="failed", attempts=8)

    page = client.get(reverse(CHANGELIST))
    assert page.status_code == 200
    assert 'value="send_again"' not in page.text

    post_send_again(client, row)
    row.refresh_from_db()
    assert (row.status, row.attempts) == (OutgoingMail.Status.FAILED, 8)
    assert mail.outbox == []


def test_admin_hides_links_with_tokens(admin_client):
    row = make_row(status="pending")
    response = admin_client.get(reverse("admin:outbox_outgoingmail_change", args=[row.pk]))
    assert response.status_code == 200
    assert "Ada" in response.text
    assert "(hidden)" in response.text
    assert LINK not in response.text
    assert "c4t-0123456789abcdef" not in response.text
