import time

import pytest
from django.test import Client
from django.urls import reverse

from accounts.models import User

LOGIN = reverse("accounts:login")
LOGOUT = reverse("accounts:logout")
HOME = reverse("home")
STRANGER = "203.0.113.7"
OWNER_AT_HOME = "198.51.100.20"
BAD_PASSWORD = "not the password"


def log_in(client, email, password, address="192.0.2.1", **data):
    return client.post(LOGIN, {"email": email, "password": password, **data}, REMOTE_ADDR=address)


@pytest.fixture
def owner_browser(sender, password):
    """A browser the owner has logged in with before, and logged out of again."""
    browser = Client()
    assert log_in(browser, sender.email, password, OWNER_AT_HOME).status_code == 302
    browser.post(LOGOUT)
    return browser


def test_login_leads_home(client, sender, password):
    response = log_in(client, "Sender@Example.org", password)

    assert response.status_code == 302
    assert response["Location"] == HOME
    assert "Hello, Sam Sender" in client.get(HOME).text


def test_wrong_password_is_refused_and_the_address_stays(client, sender):
    response = log_in(client, sender.email, BAD_PASSWORD)

    assert response.status_code == 400
    assert "That e-mail address and password do not match an account." in response.text
    assert f'value="{sender.email}"' in response.text
    assert BAD_PASSWORD not in response.text
    assert "_auth_user_id" not in client.session


def test_unknown_address_gets_the_same_answer(client, sender):
    response = log_in(client, "nobody@example.org", BAD_PASSWORD)

    assert response.status_code == 400
    assert "That e-mail address and password do not match an account." in response.text


def test_logged_in_user_visiting_login_goes_home(sender_client):
    response = sender_client.get(LOGIN)

    assert response.status_code == 302
    assert response["Location"] == HOME


@pytest.mark.parametrize(
    ("target", "landing"),
    [
        ("/accounts/password/", "/accounts/password/"),
        ("/admin/?q=1", "/admin/?q=1"),
        ("https://evil.example/", HOME),
        ("//evil.example/path", HOME),
        ("http://testserver.evil.example/", HOME),
        ("javascript:alert(1)", HOME),
    ],
)
def test_next_is_followed_only_within_the_site(client, sender, password, target, landing):
    page = client.get(LOGIN, {"next": target})
    response = log_in(client, sender.email, password, next=target)

    assert response["Location"] == landing
    assert (f'name="next" value="{target}"' in page.text) is (landing != HOME)


def test_inactive_account_is_told_only_to_who_knows_its_password(client, sender, password):
    sender.is_active = False
    sender.save()

    right = log_in(client, sender.email, password)
    wrong = log_in(client, sender.email, BAD_PASSWORD)

    assert right.status_code == 400
    assert "This account is disabled. Please ask your administrator." in right.text
    assert "disabled" not in wrong.text
    assert "do not match an account" in wrong.text
    assert "_auth_user_id" not in client.session


def test_a_stranger_guessing_cannot_lock_out_the_owners_browser(
    settings, sender, password, owner_browser
):
    settings.LOGIN_FAILURES_PER_ACCOUNT = settings.LOGIN_FAILURES_PER_ADDRESS = 3
    stranger = Client()
    for _ in range(3):
        assert log_in(stranger, sender.email, BAD_PASSWORD, STRANGER).status_code == 400

    # The account is closed to browsers it has not seen, even with the right password.
    guessed = log_in(stranger, sender.email, password, STRANGER)
    new_laptop = log_in(Client(), sender.email, password, "192.0.2.99")
    # The owner's usual browser carries the device cookie, even from the stranger's address.
    owner = log_in(owner_browser, sender.email, password, STRANGER)

    assert guessed.status_code == 429
    assert new_laptop.status_code == 429
    assert "Too many failed attempts. Please wait 15 minutes" in new_laptop.text
    assert f'value="{sender.email}"' in new_laptop.text
    assert owner.status_code == 302
    assert owner["Location"] == HOME


def test_the_owners_browser_has_a_budget_of_its_own(settings, sender, password, owner_browser):
    settings.LOGIN_FAILURES_PER_ACCOUNT = 2
    for _ in range(2):
        assert log_in(owner_browser, sender.email, BAD_PASSWORD).status_code == 400

    assert log_in(owner_browser, sender.email, password).status_code == 429
    assert log_in(Client(), sender.email, password).status_code == 302


def test_one_address_guessing_at_many_accounts_is_stopped(settings, sender, password):
    settings.LOGIN_FAILURES_PER_ADDRESS = 4
    for n in range(4):
        assert log_in(Client(), f"user{n}@example.org", BAD_PASSWORD, STRANGER).status_code == 400

    assert log_in(Client(), sender.email, password, STRANGER).status_code == 429
    assert log_in(Client(), sender.email, password, "192.0.2.50").status_code == 302


def test_logging_in_to_an_own_account_does_not_reset_the_address_budget(settings, db, password):
    settings.LOGIN_FAILURES_PER_ADDRESS = 4
    User.objects.create_user("mallory@example.org", password)
    mallory = Client()
    for n in range(3):
        assert log_in(mallory, f"victim{n}@example.org", BAD_PASSWORD, STRANGER).status_code == 400
    assert log_in(mallory, "mallory@example.org", password, STRANGER).status_code == 302
    mallory.post(LOGOUT)

    assert log_in(mallory, "victim9@example.org", BAD_PASSWORD, STRANGER).status_code == 400
    assert log_in(mallory, "victim10@example.org", BAD_PASSWORD, STRANGER).status_code == 429


def test_the_block_ends_after_the_throttle_time(settings, sender, password):
    settings.LOGIN_FAILURES_PER_ACCOUNT = 2
    settings.LOGIN_THROTTLE_SECONDS = 1
    for _ in range(2):
        log_in(Client(), sender.email, BAD_PASSWORD, STRANGER)
    assert log_in(Client(), sender.email, password).status_code == 429

    time.sleep(1.2)

    assert log_in(Client(), sender.email, password).status_code == 302


def test_logout_is_post_only(sender_client):
    refused = sender_client.get(LOGOUT)
    assert refused.status_code == 405
    assert sender_client.get(HOME).status_code == 200

    response = sender_client.post(LOGOUT, follow=True)

    assert response.redirect_chain == [(LOGIN, 302)]
    assert "You have been logged out." in response.text
    assert sender_client.get(HOME)["Location"] == f"{LOGIN}?next=/"
