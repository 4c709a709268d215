"""The SecuPass pages as the server renders them (the browser part is in
test_key_pages_browser.py): who gets which page, and that nothing secret can be posted."""

import json
import os
import re

import pytest
from django.urls import reverse
from django.utils import timezone

from accounts.models import User
from secupass import keys, sxf
from secupass.models import UserKey

pytestmark = pytest.mark.django_db


def make_key(user) -> UserKey:
    key, _pepper = UserKey.issue(user)
    user_keys = keys.generate_user_keys()
    key.register(
        ecdh_public=user_keys.ecdh_public,
        ecdsa_public=user_keys.ecdsa_public,
        kdf=keys.KDF_NAME,
        iterations=keys.DEFAULT_ITERATIONS,
        salt=os.urandom(16),
        private_record=keys.seal_private_record(user_keys, os.urandom(32), key.id),
        keyring=keys.seal_keyring({}, 1, os.urandom(32), key.id),
        keyring_version=1,
    )
    return key


def config_of(response) -> dict:
    match = re.search(
        r'<script id="keys-config" type="application/json">(.*?)</script>',
        response.content.decode(),
    )
    return json.loads(match.group(1))


def test_pages_need_a_login(client, sender):
    for name in ("profile", "create", "change", "reset"):
        response = client.get(reverse(f"keys:{name}"))
        assert response.status_code == 302
        assert response["Location"].startswith(reverse("accounts:login"))


def test_profile_without_a_key_leads_to_creating_one(sender_client):
    response = sender_client.get(reverse("keys:profile"))
    assert response.status_code == 200
    assert "You have no SecuPass key yet." in response.content.decode()
    assert f'href="{reverse("keys:create")}"' in response.content.decode()


def test_profile_shows_the_fingerprint_and_the_actions(sender_client, sender):
    key = make_key(sender)
    page = sender_client.get(reverse("keys:profile")).content.decode()
    expected = sxf.format_fingerprint(
        sxf.fingerprint(sender.email, key.ecdh_public_bytes, key.ecdsa_public_bytes)
    )
    assert re.fullmatch(r"([0-9a-f]{4} ){7}[0-9a-f]{4}", expected)
    assert expected in page
    assert f'href="{reverse("keys:change")}"' in page
    assert f'href="{reverse("keys:reset")}"' in page
    assert "SecuPass key" in sender_client.get("/").content.decode()  # the navigation link


def test_create_page_explains_and_has_nothing_to_submit(client):
    guest = User.objects.create_guest("g@example.org", "pw", email_verified_at=timezone.now())
    client.force_login(guest)
    response = client.get(reverse("keys:create"), {"next": "/r/123/"})
    page = response.content.decode()
    assert response.status_code == 200
    assert "never leaves your browser" in page
    assert "not your login password" in page
    assert "reset your key" in page
    # The SecuPass inputs carry no name: a form submitted without the page's JavaScript
    # sends nothing; the button works only once the script has enabled it.
    inputs = re.findall(r"<input [^>]*>", page.split('id="key-form"')[1].split("</form>")[0])
    assert len(inputs) == 3 and not any("name=" in tag for tag in inputs)
    assert re.search(r'<button [^>]*id="submit" disabled', page)
    config = config_of(response)
    assert config["mode"] == "create" and config["next"] == "/r/123/"
    assert config["email"] == "g@example.org" and config["minLength"] == 12
    assert config["api"]["issue"] == reverse("keys_api:issue")
    assert client.post(reverse("keys:create")).status_code == 405


@pytest.mark.parametrize("target", ["https://evil.example/", "//evil.example/x", "javascript:x"])
def test_create_page_goes_only_to_local_addresses(sender_client, target):
    response = sender_client.get(reverse("keys:create"), {"next": target})
    assert config_of(response)["next"] == reverse("keys:profile")


def test_create_with_a_key_already_goes_on(sender_client, sender):
    make_key(sender)
    response = sender_client.get(reverse("keys:create"), {"next": "/sent/"}, follow=True)
    assert response.redirect_chain[-1][0] == "/sent/"
    assert "You already have a SecuPass key." in response.content.decode()


def test_change_and_reset_need_a_key(sender_client, sender):
    for name in ("change", "reset"):
        response = sender_client.get(reverse(f"keys:{name}"))
        assert response.status_code == 302 and response["Location"] == reverse("keys:create")
    make_key(sender)
    reset = sender_client.get(reverse("keys:reset"))
    assert reset.status_code == 200
    assert "has to approve your new key" in reset.content.decode()
    assert 'id="confirm-reset"' in reset.content.decode()
    assert config_of(reset)["mode"] == "reset"
    change = sender_client.get(reverse("keys:change"))
    assert change.status_code == 200 and 'id="old-secupass"' in change.content.decode()
