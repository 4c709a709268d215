"""Personal API tokens: the page, the management command, and using them."""

import io

import pytest
from django.core.management import CommandError, call_command
from django.test import Client
from playwright.sync_api import expect

from accounts.apiauth import TOKEN_PREFIX, hash_api_token
from accounts.models import ApiToken, User
from accounts.tokens import issue_token


def bearer(token):
    return {"Authorization": f"Bearer {token}"}


def create_on_page(client, name="backup script"):
    response = client.post("/tokens/", {"name": name})
    assert response.status_code == 200
    row = ApiToken.objects.filter(name=name).latest("created_at")
    html = response.content.decode()
    start = html.index(row.prefix)
    token = html[start : html.index('"', start)]
    return response, row, token


def test_a_new_token_is_shown_once_and_works(sender_client, sender):
    response, row, token = create_on_page(sender_client)

    assert token.startswith(TOKEN_PREFIX)
    assert len(token) >= len(TOKEN_PREFIX) + 43  # 32 random bytes
    assert "shown only this once" in response.content.decode()
    assert "no-store" in response["Cache-Control"]
    assert row.user == sender
    assert row.token_hash == hash_api_token(token)
    assert token not in row.prefix + row.token_hash

    listing = sender_client.get("/tokens/")
    page = listing.content.decode()
    assert "backup script" in page
    assert row.prefix in page
    assert token not in page

    api = Client()
    assert api.get("/api/v1/deliveries", headers=bearer(token)).status_code == 200
    row.refresh_from_db()
    assert row.last_used_at is not None


def test_revoking_a_token_stops_it(sender_client):
    _response, row, token = create_on_page(sender_client)

    response = sender_client.post(f"/tokens/{row.pk}/revoke/", follow=True)

    assert response.status_code == 200
    assert "has been revoked" in response.content.decode()
    assert row.prefix not in response.content.decode()
    row.refresh_from_db()
    assert row.revoked_at is not None
    refused = Client().get("/api/v1/deliveries", headers=bearer(token))
    assert refused.status_code == 401
    assert sender_client.post(f"/tokens/{row.pk}/revoke/").status_code == 404


def test_other_users_tokens_are_not_found(client, sender):
    other = User.objects.create_user("other@example.org", "x" * 20)
    row, token = issue_token(sender, "mine")
    client.force_login(other)

    assert client.post(f"/tokens/{row.pk}/revoke/").status_code == 404
    assert "mine" not in client.get("/tokens/").content.decode()
    row.refresh_from_db()
    assert row.revoked_at is None
    assert Client().get("/api/v1/deliveries", headers=bearer(token)).status_code == 200


def test_guests_and_anonymous_visitors_have_no_token_page(client, sender):
    guest = User.objects.create_guest("guest@example.org", "x" * 20)
    assert client.get("/tokens/").status_code == 302  # to the login page
    client.force_login(guest)
    assert client.get("/tokens/").status_code == 404
    assert client.post("/tokens/", {"name": "sneaky"}).status_code == 404
    assert not ApiToken.objects.exists()


def test_a_token_needs_a_name(sender_client):
    response = sender_client.post("/tokens/", {"name": "  "})
    assert response.status_code == 400
    assert "Give the token a name." in response.content.decode()
    assert not ApiToken.objects.exists()


def test_the_nav_links_to_the_token_page(sender_client):
    assert 'href="/tokens/"' in sender_client.get("/tokens/").content.decode()


def test_create_api_token_prints_the_token_as_its_last_word(sender):
    out = io.StringIO()
    call_command("create_api_token", "Sender@Example.org", "--name", "ci", stdout=out)

    token = out.getvalue().split()[-1]
    row = ApiToken.objects.get()
    assert row.name == "ci"
    assert row.user == sender
    response = Client().get("/api/v1/deliveries", headers=bearer(token))
    assert response.status_code == 200
    assert response.json()["count"] == 0


@pytest.mark.parametrize(
    ("email", "message"),
    [("nobody@example.org", "no account"), ("guest@example.org", "not an active sender")],
)
def test_create_api_token_refuses_non_senders(db, email, message):
    User.objects.create_guest("guest@example.org", "x" * 20)
    with pytest.raises(CommandError, match=message):
        call_command("create_api_token", email, stdout=io.StringIO())
    assert not ApiToken.objects.exists()


@pytest.mark.browser
def test_a_sender_makes_and_revokes_a_token_in_the_browser(page, live_server, sender, password):
    page.goto("/accounts/login/?next=/tokens/")
    page.get_by_label("E-mail address").fill(sender.email)
    page.get_by_label("Password", exact=True).fill(password)
    page.get_by_role("button", name="Log in").click()
    expect(page).to_have_url("/tokens/")
    expect(page.get_by_role("heading", name="API tokens")).to_be_visible()

    page.get_by_label("Name").fill("build server")
    page.get_by_role("button", name="Create token").click()

    token = page.get_by_label("Token").input_value()
    assert token.startswith(TOKEN_PREFIX)
    expect(page.get_by_text("shown only this once")).to_be_visible()
    answer = page.request.get(f"{live_server.url}/api/v1/deliveries", headers=bearer(token))
    assert answer.status == 200

    page.goto("/tokens/")
    assert token not in page.content()
    page.get_by_role("button", name="Revoke “build server”").click()
    expect(page.get_by_text("has been revoked")).to_be_visible()
    refused = page.request.get(f"{live_server.url}/api/v1/deliveries", headers=bearer(token))
    assert refused.status == 401
