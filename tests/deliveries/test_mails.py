"""The delivery mails: new delivery, receipt, revoked, expiry reminder."""

import re
from datetime import datetime, timedelta
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

import pytest
from django.conf import settings as django_settings
from django.core import mail
from django.utils import formats, timezone, translation

from deliveries.models import Delivery, Recipient
from deliveries.reminders import remind_expiring, send_reminders
from deliveries.services import mail_context
from deliveries.services import send as send_delivery
from outbox.models import OutgoingMail
from outbox.services import queue_mail

LINK = "https://secushare.example/r/personal-token-0123456789abcdef"


@pytest.fixture
def eager(settings):
    settings.CELERY_TASK_ALWAYS_EAGER = True
    settings.CELERY_TASK_EAGER_PROPAGATES = True


@pytest.fixture
def send(db, eager, django_capture_on_commit_callbacks):
    """send(to, template, context, language) → the one EmailMultiAlternatives sent."""

    def send(to, template, context, language="en"):
        before = len(mail.outbox)
        with django_capture_on_commit_callbacks(execute=True):
            row = queue_mail(to, template, context, language=language)
        row.refresh_from_db()
        assert row.status == OutgoingMail.Status.SENT, row.last_error
        assert len(mail.outbox) == before + 1
        return mail.outbox[-1]

    return send


def html_of(message) -> str:
    [(html, mimetype)] = message.alternatives
    assert mimetype == "text/html"
    return html


def local_date(iso: str, language: str) -> str:
    moment = timezone.localtime(datetime.fromisoformat(iso), ZoneInfo(django_settings.TIME_ZONE))
    with translation.override(language):
        return formats.date_format(moment, "DATETIME_FORMAT")


def test_new_delivery_mail_at_level_1_shows_message_names_and_link(make_delivery, send):
    made = make_delivery(
        level=1,
        files={"report.pdf": b"x" * 2048, "figures.xlsx": b"y"},
        message="Please check page 3.\nThanks!",
    )
    context = mail_context(made.delivery, list(made.delivery.files.all()), secret_link=LINK)

    message = send("rita@example.org", "delivery_new", context)

    html = html_of(message)
    assert message.to == ["rita@example.org"]
    assert "Sam Sender (sender@example.org)" in message.subject
    assert "Quarterly figures" in message.subject
    for part in (message.body, html):
        assert LINK in part
        assert "report.pdf" in part and "figures.xlsx" in part
        assert "Please check page 3." in part
        assert "do not forward" in part
        assert local_date(context["expires_at"], "en") in part
    assert f'href="{LINK}"' in html
    assert "2 files, 2.0\xa0KB in total" in message.body
    # Level 1 asks only for the address.
    assert "guest account" not in message.body and "SecuPass" not in message.body


def test_sending_mails_each_recipient_a_working_personal_link(
    make_delivery, sender, client, eager, django_capture_on_commit_callbacks
):
    made = make_delivery(
        files={"report.pdf": b"r" * 100},
        recipients=["rita@example.org", "ron@example.org"],
        sent=False,
    )

    with django_capture_on_commit_callbacks(execute=True):
        send_delivery(made.delivery, delivery_key=made.key, actor=sender)

    assert sorted(m.to[0] for m in mail.outbox) == ["rita@example.org", "ron@example.org"]
    links = set()
    for message in mail.outbox:
        [link] = re.findall(r"https?://\S+/d/\S+", message.body)
        assert f'href="{link}"' in html_of(message)
        assert "report.pdf" in message.body
        links.add(link)
        assert client.get(urlsplit(link).path).status_code == 200
    assert len(links) == 2  # one personal link each


def test_new_delivery_mail_at_level_2_explains_the_guest_account(make_delivery, send):
    made = make_delivery(level=2, files={"a.txt": b"a"})
    context = mail_context(made.delivery, list(made.delivery.files.all()), secret_link=LINK)

    message = send("rita@example.org", "delivery_new", context)

    assert "guest account" in message.body and "guest account" in html_of(message)


def test_level_4_mail_has_neither_message_nor_names(make_delivery, send):
    made = make_delivery(
        level=4, files={"secret-plan.pdf": b"z" * 10}, message="The launch is on Friday."
    )
    context = mail_context(made.delivery, list(made.delivery.files.all()), secret_link=LINK)

    assert "message" not in context and "file_names" not in context
    message = send("rita@example.org", "delivery_new", context)

    for part in (message.subject, message.body, html_of(message)):
        assert "secret-plan.pdf" not in part
        assert "launch is on Friday" not in part
    assert LINK in message.body and "1 file, 10\xa0bytes" in message.body
    assert "SecuPass" in message.body


@pytest.mark.parametrize("language", ["de", "en"])
def test_receipt_renders_in_the_rows_language(send, language):
    downloaded = "2030-03-05T13:07:00+00:00"
    message = send(
        "sender@example.org",
        "download_receipt",
        {
            "recipient_email": "rita@example.org",
            "subject": "Quarterly figures",
            "file_names": ["report.pdf", "data.csv"],
            "file_count": 2,
            "downloaded_at": downloaded,
            "delivery_url": "https://secushare.example/sent/0b3c/",
        },
        language=language,
    )

    html = html_of(message)
    assert message.extra_headers["Content-Language"] == language
    assert f'<html lang="{language}">' in html
    assert "rita@example.org" in message.subject and "Quarterly figures" in message.subject
    for part in (message.body, html):
        assert "rita@example.org" in part
        assert "report.pdf" in part and "data.csv" in part
        assert "https://secushare.example/sent/0b3c/" in part
        # The time in the row's language and the site's time zone.
        assert local_date(downloaded, language) in part
    assert local_date(downloaded, "de") != local_date(downloaded, "en")


@pytest.mark.parametrize("language", ["de", "en"])
def test_revoked_mail_renders_in_the_rows_language(send, language):
    message = send(
        "rita@example.org",
        "delivery_revoked",
        {"sender_name": "Sam Sender", "sender_email": "sam@example.org", "subject": "Contract"},
        language=language,
    )

    html = html_of(message)
    assert message.extra_headers["Content-Language"] == language
    assert f'<html lang="{language}">' in html
    assert "Contract" in message.subject
    for part in (message.body, html):
        assert "Sam Sender (sam@example.org)" in part and "Contract" in part


def test_line_breaks_in_a_subject_cannot_add_headers(make_delivery, send):
    made = make_delivery(files={"a.txt": b"a"}, subject="Hi\r\nBcc: evil@example.org\r\n\r\nGotcha")
    context = mail_context(made.delivery, list(made.delivery.files.all()), secret_link=LINK)

    message = send("rita@example.org", "delivery_new", context)

    assert "\r" not in message.subject and "\n" not in message.subject
    assert "Hi Bcc: evil@example.org Gotcha" in message.subject
    headers = message.message().as_bytes().split(b"\n\n", 1)[0].lower()
    assert b"\nbcc:" not in headers and b"gotcha" in headers
    assert message.recipients() == ["rita@example.org"]


def test_text_parts_are_not_html_escaped(make_delivery, send):
    made = make_delivery(
        files={"Q&A <v2>.txt": b"a"}, subject='Q&A "final" <v2>', message="Tom's notes & more"
    )
    context = mail_context(made.delivery, list(made.delivery.files.all()), secret_link=LINK)

    message = send("rita@example.org", "delivery_new", context)

    assert 'Q&A "final" <v2>' in message.subject
    assert "Q&A <v2>.txt" in message.body and "Tom's notes & more" in message.body
    html = html_of(message)
    assert "Q&amp;A &lt;v2&gt;.txt" in html and "<v2>" not in html


@pytest.fixture
def expiring(make_delivery):
    """A delivery sent ten days ago that expires in twelve hours, one of two downloaded."""
    now = timezone.now()
    made = make_delivery(
        files={"a.txt": b"a"},
        recipients=["done@example.org", "late@example.org"],
        expires_at=now + timedelta(hours=12),
    )
    Delivery.objects.filter(pk=made.delivery.pk).update(sent_at=now - timedelta(days=10))
    Recipient.objects.filter(email="done@example.org").update(downloaded_at=now)
    return made.delivery


def test_expiry_reminder_is_sent_once(expiring, sender, eager, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        remind_expiring.delay()
    with django_capture_on_commit_callbacks(execute=True):
        remind_expiring.delay()

    assert len(mail.outbox) == 1
    [message] = mail.outbox
    assert message.to == [sender.email]
    assert "Quarterly figures" in message.subject
    assert "late@example.org" in message.body and "done@example.org" not in message.body
    assert f"/sent/{expiring.pk}/" in message.body
    expiring.refresh_from_db()
    assert expiring.reminded_at is not None


def test_extended_delivery_is_reminded_again_before_its_new_expiry(
    expiring, eager, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        assert send_reminders() == 1
    expiring.extend(5)
    expiring.refresh_from_db()

    with django_capture_on_commit_callbacks(execute=True):
        assert send_reminders() == 0
        assert send_reminders(now=expiring.expires_at - timedelta(hours=6)) == 1

    assert len(mail.outbox) == 2


def test_no_reminder_when_all_downloaded_or_not_yet_due(expiring, make_delivery):
    Recipient.objects.filter(delivery=expiring).update(downloaded_at=timezone.now())
    later = make_delivery(files={"a.txt": b"a"}, expires_at=timezone.now() + timedelta(days=3))
    Delivery.objects.filter(pk=later.delivery.pk).update(sent_at=timezone.now() - timedelta(days=5))
    just_sent = make_delivery(
        files={"a.txt": b"a"}, expires_at=timezone.now() + timedelta(hours=20)
    )

    assert send_reminders() == 0
    assert not Delivery.objects.filter(
        pk__in=[later.delivery.pk, just_sent.delivery.pk], reminded_at__isnull=False
    ).exists()
    assert not OutgoingMail.objects.filter(template="expiry_reminder").exists()
