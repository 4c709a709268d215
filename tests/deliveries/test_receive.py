"""The recipient's pages: landing, the address step and its throttle, gone links, the level 2
account step (guest registration and verification, login), the list of received deliveries
and the command-line client's endpoint."""

import re
import time
from datetime import timedelta
from urllib.parse import urlencode, urlsplit

import pytest
from django.core import mail
from django.urls import reverse
from django.utils import timezone

from accounts.models import User
from deliveries import receive_access
from deliveries.models import AuditEvent, Delivery, Recipient
from tests.deliveries.receive_support import (
    PASSWORD,
    address_url,
    body,
    events,
    file_url,
    landing,
    open_and_confirm,
    page,
    sha256,
    six_digit_code,
)

API = "/api/v1/receive"


def test_landing_names_sender_subject_expiry_level_and_what_to_do(client, make_delivery):
    made = make_delivery(level=1, subject="Contract draft")

    response = client.get(landing(made))

    assert response.status_code == 200
    text = response.text
    assert "Sam Sender" in text and "sender@example.org" in text
    assert "Contract draft" in text
    assert made.delivery.get_level_display() in text
    assert made.delivery.expires_at.isoformat()[:10] in text  # in the <time datetime=...>
    assert "Type the e-mail address this message was sent to" in text
    assert "guest account" not in text
    # The message and the files are not shown before the address is confirmed.
    assert "Here are the figures." not in text
    assert "report.pdf" not in text


def test_level_2_landing_says_an_account_is_needed(client, make_delivery):
    made = make_delivery(level=2)

    assert "free guest account" in client.get(landing(made)).text


def test_first_open_sets_opened_at_and_is_recorded_once(client, make_delivery):
    made = make_delivery()

    client.get(landing(made))
    client.get(landing(made))

    recipient = Recipient.objects.get(pk=made.recipients["rita@example.org"].pk)
    assert recipient.opened_at is not None
    opened = events(AuditEvent.Kind.OPENED)
    assert len(opened) == 1 and opened[0].recipient == recipient


@pytest.mark.parametrize("token", ["x" * 32, "", "a" * 200])
def test_unknown_link_is_404(client, make_delivery, token):
    make_delivery()

    response = client.get(f"/d/{token}")

    assert response.status_code == 404
    assert not events(AuditEvent.Kind.OPENED)


def _expire(made):
    Delivery.objects.filter(pk=made.delivery.pk).update(expires_at=timezone.now())


def _revoke(made):
    Delivery.objects.filter(pk=made.delivery.pk).update(status=Delivery.Status.REVOKED)


def _revoke_recipient(made):
    Recipient.objects.filter(email="rita@example.org").update(revoked_at=timezone.now())


@pytest.mark.parametrize(
    ("end", "words"),
    [(_expire, "expired"), (_revoke, "withdrawn"), (_revoke_recipient, "withdrawn")],
)
def test_expired_or_revoked_link_is_410_with_a_clear_page(client, make_delivery, end, words):
    made = make_delivery()
    open_and_confirm(client, made)
    end(made)

    for url in (landing(made), page(made), file_url(made, "report.pdf")):
        response = client.get(url)
        assert response.status_code == 410
        assert words in response.text
        assert not response.streaming
        assert "%PDF" not in response.text


def test_the_right_address_in_any_case_opens_the_delivery(client, make_delivery):
    made = make_delivery(message="Please sign page 3.")
    token = made.tokens["rita@example.org"]

    response = open_and_confirm(client, made, typed="  RITA@Example.ORG ")

    assert response["Location"] == page(made)
    shown = client.get(page(made))
    assert shown.status_code == 200
    assert "Please sign page 3." in shown.text and "report.pdf" in shown.text
    assert token not in shown.text
    assert Recipient.objects.get(email="rita@example.org").confirmed_at is not None
    assert len(events(AuditEvent.Kind.ADDRESS_CONFIRMED)) == 1
    data = body(client.get(file_url(made, "report.pdf")))
    assert sha256(data) == sha256(made.plaintexts["report.pdf"])


def test_a_wrong_address_is_refused_with_a_clear_message(client, make_delivery):
    made = make_delivery()
    client.get(landing(made))

    response = client.post(address_url(made), {"email": "someone@example.org"})

    assert response.status_code == 400
    assert "This is not the address the message was sent to" in response.text
    assert Recipient.objects.get(email="rita@example.org").confirmed_at is None
    refused = events(AuditEvent.Kind.ADDRESS_REFUSED)
    assert len(refused) == 1 and refused[0].address == "127.0.0.1"
    assert client.get(file_url(made, "report.pdf")).status_code == 404
    # The landing form is shown again, so the person can correct it.
    assert client.get(page(made)).status_code == 200


def test_not_an_address_at_all_is_explained_and_not_counted(client, make_delivery):
    made = make_delivery()
    client.get(landing(made))

    response = client.post(address_url(made), {"email": "rita"})

    assert response.status_code == 400
    assert "valid email address" in response.text
    assert not events(AuditEvent.Kind.ADDRESS_REFUSED)


def test_wrong_addresses_pause_the_link_for_a_while_not_forever(client, make_delivery, monkeypatch):
    monkeypatch.setattr(receive_access, "WINDOW", 1)  # the 15 minutes, shortened
    made = make_delivery()
    client.get(landing(made))
    for _ in range(receive_access.ADDRESS_FAILURES_PER_RECIPIENT):
        assert client.post(address_url(made), {"email": "x@example.org"}).status_code == 400

    blocked = client.post(address_url(made), {"email": "rita@example.org"})

    assert blocked.status_code == 429
    assert "wait 15 minutes" in blocked.text
    # Refused attempts are not counted: the pause ends on time even if guessing goes on.
    client.post(address_url(made), {"email": "x@example.org"})
    time.sleep(1.1)
    assert client.post(address_url(made), {"email": "rita@example.org"}).status_code == 302


def test_wrong_addresses_from_one_client_are_limited_across_links(client, make_delivery):
    emails = [f"r{i}@example.org" for i in range(5)]
    made = make_delivery(recipients=emails)
    per = receive_access.ADDRESS_FAILURES_PER_RECIPIENT
    for email in emails[:4]:  # 4 links x 5 wrong tries = the client's 20
        client.get(landing(made, email))
        for _ in range(per):
            client.post(address_url(made, email), {"email": "guess@example.org"})
    client.get(landing(made, emails[4]))

    response = client.post(address_url(made, emails[4]), {"email": emails[4]})

    assert response.status_code == 429
    other_client_ok = open_and_confirm(type(client)(), made, emails[4], REMOTE_ADDR="198.51.100.7")
    assert other_client_ok["Location"] == page(made, emails[4])


def test_the_token_appears_in_no_later_url_or_page(client, make_delivery):
    made = make_delivery(files={"a.txt": b"a", "b.txt": b"b"})
    token = made.tokens["rita@example.org"]

    first = open_and_confirm(client, made)
    shown = client.get(page(made))

    assert token not in first["Location"]
    assert token not in shown.text
    assert str(made.recipients["rita@example.org"].pk) in shown.text
    assert token not in str(dict(client.session))


def test_opening_the_link_again_after_confirming_goes_straight_to_the_delivery(
    client, make_delivery
):
    made = make_delivery()
    open_and_confirm(client, made)

    response = client.get(landing(made))

    assert response.status_code == 302 and response["Location"] == page(made)


def test_confirmed_in_one_browser_is_not_confirmed_in_another(client, make_delivery):
    made = make_delivery()
    open_and_confirm(client, made)
    other = type(client)()
    other.get(landing(made))

    shown = other.get(page(made))

    assert shown.status_code == 200 and "report.pdf" not in shown.text
    assert other.get(file_url(made, "report.pdf")).status_code == 404


def test_expiry_is_checked_on_every_request_not_only_at_confirmation(client, make_delivery):
    made = make_delivery()
    open_and_confirm(client, made)
    assert client.get(page(made)).status_code == 200
    Delivery.objects.filter(pk=made.delivery.pk).update(
        expires_at=timezone.now() - timedelta(seconds=1)
    )

    assert client.get(page(made)).status_code == 410


# -- Level 2: an account with exactly the recipient's address ------------------------------


@pytest.fixture
def eager_mail(settings):
    settings.CELERY_TASK_ALWAYS_EAGER = True
    settings.CELERY_TASK_EAGER_PROPAGATES = True


def _register(client, made, callbacks_fixture, password=PASSWORD, name="Rita Recipient"):
    url = reverse("receive:register", kwargs={"rid": made.recipients["rita@example.org"].pk})
    with callbacks_fixture(execute=True):
        response = client.post(url, {"name": name, "password1": password, "password2": password})
    return response


def test_level_2_guest_registers_verifies_by_code_and_downloads(
    client, make_delivery, eager_mail, django_capture_on_commit_callbacks
):
    made = make_delivery(level=2, files={"plan.pdf": b"%PDF plan " * 9000})
    rid = made.recipients["rita@example.org"].pk
    register_url = reverse("receive:register", kwargs={"rid": rid})
    verify_url = reverse("receive:verify", kwargs={"rid": rid})

    # The address step leads to registration, since there is no account for the address.
    confirmed = open_and_confirm(client, made)
    assert client.get(confirmed["Location"])["Location"] == register_url
    form = client.get(register_url)
    assert form.status_code == 200
    assert 'value="rita@example.org" readonly' in form.text
    assert client.get(file_url(made, "plan.pdf")).status_code == 404

    registered = _register(client, made, django_capture_on_commit_callbacks)

    assert registered["Location"] == verify_url
    guest = User.objects.get(email="rita@example.org")
    assert guest.kind == User.Kind.GUEST and not guest.is_active
    assert not type(client)().login(email="rita@example.org", password=PASSWORD)
    assert len(mail.outbox) == 1 and mail.outbox[0].to == ["rita@example.org"]
    code = six_digit_code(mail.outbox[0])
    assert f"/r/{rid}/verify/" in mail.outbox[0].body

    verified = client.post(verify_url, {"code": code}, follow=True)

    assert verified.redirect_chain[-1][0] == page(made)
    assert verified.status_code == 200 and "plan.pdf" in verified.text
    guest.refresh_from_db()
    assert guest.is_active and guest.email_verified_at is not None
    assert verified.context["user"] == guest
    assert Recipient.objects.get(pk=rid).user == guest
    assert len(events(AuditEvent.Kind.LOGGED_IN, recipient_id=rid)) == 1
    data = body(client.get(file_url(made, "plan.pdf")))
    assert sha256(data) == sha256(made.plaintexts["plan.pdf"])
    # The code is used up, and the guest can log in with the password from now on.
    assert type(client)().login(email="rita@example.org", password=PASSWORD)


def test_a_wrong_code_says_how_many_tries_are_left_and_the_fifth_ends_it(
    client, make_delivery, eager_mail, django_capture_on_commit_callbacks
):
    made = make_delivery(level=2)
    open_and_confirm(client, made)
    _register(client, made, django_capture_on_commit_callbacks)
    code = six_digit_code(mail.outbox[0])
    wrong = f"{(int(code) + 1) % 10**6:06d}"
    verify_url = reverse("receive:verify", kwargs={"rid": made.recipients["rita@example.org"].pk})

    first = client.post(verify_url, {"code": wrong})
    assert first.status_code == 400 and "4 more times" in first.text
    for _ in range(4):
        last = client.post(verify_url, {"code": wrong})
    assert "Ask for a new code" in last.text

    assert client.post(verify_url, {"code": code}).status_code == 400
    assert not User.objects.get(email="rita@example.org").is_active
    with django_capture_on_commit_callbacks(execute=True):
        client.post(verify_url, {"resend": "1"})
    assert client.post(verify_url, {"code": six_digit_code(mail.outbox[-1])}).status_code == 302
    assert User.objects.get(email="rita@example.org").is_active


def test_the_link_in_the_mail_works_in_another_browser(
    client, make_delivery, eager_mail, django_capture_on_commit_callbacks
):
    made = make_delivery(level=2)
    open_and_confirm(client, made)
    _register(client, made, django_capture_on_commit_callbacks)
    link = re.search(r"https?://\S+/verify/\S+", mail.outbox[0].body).group(0)
    path = urlsplit(link).path
    mail_app = type(client)()

    shown = mail_app.get(path)
    assert shown.status_code == 200 and "Confirm and continue" in shown.text
    assert not User.objects.get(email="rita@example.org").is_active  # GET changes nothing

    done = mail_app.post(path, follow=True)

    assert done.redirect_chain[-1][0] == page(made)
    assert "report.pdf" in done.text
    used = mail_app.get(path)
    assert used.status_code == 404 and "log in" in used.text


def test_an_unverified_registration_can_be_replaced_by_the_owner(
    client, make_delivery, eager_mail, django_capture_on_commit_callbacks
):
    made = make_delivery(level=2)
    stranger = type(client)()
    open_and_confirm(stranger, made)
    _register(stranger, made, django_capture_on_commit_callbacks, password="strangers pass 1")
    open_and_confirm(client, made)

    _register(client, made, django_capture_on_commit_callbacks)
    verify_url = reverse("receive:verify", kwargs={"rid": made.recipients["rita@example.org"].pk})
    client.post(verify_url, {"code": six_digit_code(mail.outbox[-1])})

    assert User.objects.filter(email="rita@example.org").count() == 1
    assert type(client)().login(email="rita@example.org", password=PASSWORD)
    assert not type(client)().login(email="rita@example.org", password="strangers pass 1")


def test_an_existing_account_logs_in_and_lands_on_the_delivery(client, make_delivery):
    guest = User.objects.create_guest(
        "rita@example.org", PASSWORD, email_verified_at=timezone.now()
    )
    made = make_delivery(level=2)
    rid = made.recipients["rita@example.org"].pk

    open_and_confirm(client, made)
    step = client.get(page(made))
    login_url = reverse("accounts:login") + "?" + urlencode({"next": page(made)})
    assert step["Location"] == login_url
    assert client.get(file_url(made, "report.pdf")).status_code == 404

    logged_in = client.post(
        login_url, {"email": "rita@example.org", "password": PASSWORD}, follow=True
    )

    assert logged_in.redirect_chain[-1][0] == page(made)
    assert "report.pdf" in logged_in.text
    assert Recipient.objects.get(pk=rid).user == guest
    assert len(events(AuditEvent.Kind.LOGGED_IN, recipient_id=rid)) == 1
    assert client.get(file_url(made, "report.pdf")).status_code == 200


def test_logged_in_as_another_account_offers_to_switch(client, make_delivery, sender):
    User.objects.create_guest("rita@example.org", PASSWORD, email_verified_at=timezone.now())
    made = make_delivery(level=2)
    client.force_login(sender)
    client.get(landing(made))
    client.post(address_url(made), {"email": "rita@example.org"})

    step = client.get(page(made))

    assert step.status_code == 200 and "you are logged in as sender@example.org" in step.text
    assert client.get(file_url(made, "report.pdf")).status_code == 404
    switched = client.post(
        reverse("receive:switch_account", kwargs={"rid": made.recipients["rita@example.org"].pk})
    )
    assert switched["Location"] == page(made)
    assert client.get(page(made))["Location"].startswith(reverse("accounts:login"))


def test_a_guest_sees_the_deliveries_they_opened(client, make_delivery, sender):
    guest = User.objects.create_guest(
        "rita@example.org", PASSWORD, email_verified_at=timezone.now()
    )
    opened = make_delivery(level=2, subject="Opened one")
    make_delivery(level=2, subject="Never opened")
    client.force_login(guest)
    client.get(landing(opened))
    client.get(page(opened))

    listing = type(client)()
    listing.force_login(guest)
    shown = listing.get(reverse("receive:received"))

    assert shown.status_code == 200
    assert "Opened one" in shown.text and "Never opened" not in shown.text
    # The list links to the delivery, which opens in this new session through the account.
    assert listing.get(page(opened)).status_code == 200
    assert listing.get(file_url(opened, "report.pdf")).status_code == 200


def test_the_received_list_needs_a_login(client, sender):
    response = client.get(reverse("receive:received"))

    assert response.status_code == 302
    assert response["Location"].startswith(reverse("accounts:login"))


# -- The command-line client's endpoint ------------------------------------------------------


def _api(client, **data):
    return client.post(API, data, content_type="application/json")


def test_api_confirms_the_address_and_its_urls_download_with_the_session(client, make_delivery):
    made = make_delivery(files={"a.bin": b"\x00\x01" * 70000, "b.txt": b"hello"})

    response = _api(client, token=made.tokens["rita@example.org"], email="Rita@example.org")

    assert response.status_code == 200
    data = response.json()
    assert data["delivery"]["subject"] == "Quarterly figures"
    assert data["delivery"]["sender"] == {"name": "Sam Sender", "email": "sender@example.org"}
    assert {f["name"]: f["size"] for f in data["files"]} == {"a.bin": 140000, "b.txt": 5}
    for f in data["files"]:
        assert made.tokens["rita@example.org"] not in f["url"]
        got = body(client.get(urlsplit(f["url"]).path))
        assert got == made.plaintexts[f["name"]]
    assert client.get(urlsplit(data["zip_url"]).path).status_code == 200
    assert type(client)().get(urlsplit(data["files"][0]["url"]).path).status_code == 404


def test_api_refuses_a_wrong_address_and_throttles(client, make_delivery):
    made = make_delivery()
    token = made.tokens["rita@example.org"]

    for _ in range(receive_access.ADDRESS_FAILURES_PER_RECIPIENT):
        refused = _api(client, token=token, email="eve@example.org")
        assert refused.status_code == 403
        assert "not the address" in refused.json()["error"]
    assert _api(client, token=token, email="rita@example.org").status_code == 429
    assert len(events(AuditEvent.Kind.ADDRESS_REFUSED)) == 5


def test_api_level_2_needs_the_accounts_password(client, make_delivery):
    made = make_delivery(level=2)
    token = made.tokens["rita@example.org"]

    no_account = _api(client, token=token, email="rita@example.org", password=PASSWORD)
    assert no_account.status_code == 403 and "guest account" in no_account.json()["error"]
    User.objects.create_guest("rita@example.org", PASSWORD, email_verified_at=timezone.now())
    asked = _api(client, token=token, email="rita@example.org")
    # The CLI prompts for the password only when the server says that is what is missing.
    assert asked.status_code == 403 and asked.json()["password_required"] is True
    assert _api(client, token=token, email="rita@example.org", password="nope").status_code == 403

    ok = _api(client, token=token, email="rita@example.org", password=PASSWORD)

    assert ok.status_code == 200
    got = body(client.get(urlsplit(ok.json()["files"][0]["url"]).path))
    assert got == made.plaintexts["report.pdf"]
    assert len(events(AuditEvent.Kind.LOGGED_IN)) == 1


@pytest.mark.parametrize(
    ("payload", "content_type", "status"),
    [
        ('{"token": "nope", "email": "a@example.org"}', "application/json", 404),
        ('{"token": 1, "email": "a@example.org"}', "application/json", 400),
        ("token=x&email=a@example.org", "application/x-www-form-urlencoded", 400),
        ("{not json", "application/json", 400),
    ],
)
def test_api_explains_bad_requests(client, make_delivery, payload, content_type, status):
    make_delivery()

    response = client.post(API, payload, content_type=content_type)

    assert response.status_code == status
    assert response.json()["error"]
