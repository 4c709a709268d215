from urllib.parse import urlsplit

import pytest
from django.core import mail
from django.test import Client
from django.urls import reverse

from accounts import throttle
from accounts.models import User
from outbox.models import OutgoingMail

RESET = reverse("accounts:password_reset")
DONE = reverse("accounts:password_reset_done")
NEW_PASSWORD = "a brand new passphrase 42"


@pytest.fixture(autouse=True)
def _eager_celery(settings):
    settings.CELERY_TASK_ALWAYS_EAGER = True


def ask_for_reset(client, email, address="192.0.2.1"):
    return client.post(RESET, {"email": email}, REMOTE_ADDR=address)


def link_in(message) -> str:
    """The path of the reset link in a mail's text, as a person would click it."""
    return urlsplit(next(w for w in message.body.split() if "/password/reset/" in w)).path


def deliver(callbacks):
    """Run what the outbox queued after commit: the Celery task sends the mail."""
    for callback in callbacks:
        callback()


@pytest.mark.parametrize("language", ["de", "en"])
def test_reset_link_is_mailed_through_the_outbox_in_the_users_language(
    client, sender, language, settings, django_capture_on_commit_callbacks
):
    sender.language = language
    sender.save()

    with django_capture_on_commit_callbacks() as callbacks:
        response = ask_for_reset(client, "Sender@Example.org")

    assert response.status_code == 302
    assert response["Location"] == DONE
    row = OutgoingMail.objects.get()
    assert (row.to, row.template, row.language) == (sender.email, "password_reset", language)
    link = row.context["secret_link"]
    assert link.startswith(f"{settings.SITE_URL}/accounts/password/reset/")
    assert mail.outbox == []

    deliver(callbacks)

    [message] = mail.outbox
    assert message.to == [sender.email]
    assert "SecuShare" in message.subject
    assert link in message.body
    assert f'href="{link}"' in message.alternatives[0].content
    assert f'<html lang="{language}">' in message.alternatives[0].content
    assert message.extra_headers["Content-Language"] == language
    row.refresh_from_db()
    assert row.status == OutgoingMail.Status.SENT
    assert "secret_link" not in row.context


def test_following_the_link_sets_the_password_and_logs_in(
    client, sender, password, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        ask_for_reset(client, sender.email)
    path = link_in(mail.outbox[0])
    browser = Client()

    form = browser.get(path, follow=True)
    assert form.status_code == 200
    assert "Choose a new password" in form.text
    response = browser.post(
        form.redirect_chain[-1][0],
        {"new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD},
        follow=True,
    )

    assert response.redirect_chain[-1] == (reverse("home"), 302)
    assert "Your new password is set and you are logged in." in response.text
    assert response.context["user"] == sender
    sender.refresh_from_db()
    assert sender.check_password(NEW_PASSWORD)
    assert not sender.check_password(password)
    again = Client().get(path, follow=True)
    assert "This link no longer works" in again.text


def test_a_reset_by_mail_unlocks_an_account_strangers_have_blocked(
    settings, sender, password, django_capture_on_commit_callbacks
):
    settings.LOGIN_FAILURES_PER_ACCOUNT = 2
    for _ in range(2):
        Client().post(reverse("accounts:login"), {"email": sender.email, "password": "guess"})
    new_device = Client()
    assert (
        new_device.post(
            reverse("accounts:login"), {"email": sender.email, "password": password}
        ).status_code
        == 429
    )

    with django_capture_on_commit_callbacks(execute=True):
        ask_for_reset(new_device, sender.email)
    form = new_device.get(link_in(mail.outbox[0]), follow=True)
    new_device.post(
        form.redirect_chain[-1][0], {"new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD}
    )
    another_device = Client().post(
        reverse("accounts:login"), {"email": sender.email, "password": NEW_PASSWORD}
    )

    assert another_device.status_code == 302


@pytest.mark.parametrize("email", ["nobody@example.org", "inactive@example.org"])
def test_unknown_or_disabled_address_gets_the_same_page_and_no_mail(
    client, sender, password, email, django_capture_on_commit_callbacks
):
    User.objects.create_user("inactive@example.org", password, is_active=False)

    with django_capture_on_commit_callbacks(execute=True):
        response = ask_for_reset(client, email)

    assert response.status_code == 302
    assert response["Location"] == DONE
    assert "Check your mail" in client.get(DONE).text
    assert not OutgoingMail.objects.exists()
    assert mail.outbox == []


def test_bad_address_is_shown_as_an_error(client, sender):
    response = client.post(RESET, {"email": "not an address"})

    assert response.status_code == 200
    assert "Enter a valid email address." in response.text
    assert not OutgoingMail.objects.exists()


def test_reset_mails_per_address_are_limited(client, sender):
    for _ in range(throttle.RESETS_PER_ACCOUNT + 2):
        response = ask_for_reset(Client(), sender.email, address="192.0.2.77")
        assert response["Location"] == DONE

    assert OutgoingMail.objects.count() == throttle.RESETS_PER_ACCOUNT


def test_reset_requests_per_client_are_limited(client, sender):
    for n in range(throttle.RESETS_PER_CLIENT):
        ask_for_reset(client, f"someone{n}@example.org", address="203.0.113.7")

    refused = ask_for_reset(client, sender.email, address="203.0.113.7")
    elsewhere = ask_for_reset(Client(), sender.email, address="192.0.2.8")

    assert refused["Location"] == DONE
    assert elsewhere["Location"] == DONE
    assert OutgoingMail.objects.count() == 1
