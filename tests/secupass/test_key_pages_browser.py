"""The SecuPass pages in Chromium: the browser makes the key, the server sees only public keys
and sealed records. Every request the page sends is recorded and searched for the SecuPass
and for an unencrypted private key."""

import base64
import json
import re

import pytest
from playwright.sync_api import expect

from accounts.models import User
from deliveries.models import AuditEvent
from secupass import keys, sxf
from secupass.models import UserKey

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

GUEST_PASSWORD = "lantern quarry velvet 42"
SECUPASS = "Möwe über Kiel: 7 Segel"  # NFC-sensitive and JSON-escaped characters on purpose
NEW_SECUPASS = "Zweiter Satz, ganz anders 9"


@pytest.fixture
def guest(db):
    return User.objects.create_guest("Rita.Recipient@example.org", GUEST_PASSWORD)


@pytest.fixture
def sent(page):
    """Every request the page sends: (method, url, body bytes)."""
    requests = []
    page.on("request", lambda r: requests.append((r.method, r.url, r.post_data_buffer or b"")))
    return requests


@pytest.fixture
def problems(page):
    """Script errors and Content-Security-Policy reports the page produced."""
    found = []
    page.on("pageerror", lambda e: found.append(str(e)))
    page.on("console", lambda m: "Content Security Policy" in m.text and found.append(m.text))
    return found


def log_in(page, email, password):
    page.goto("/accounts/login/")
    page.get_by_label("E-mail address").fill(email)
    page.get_by_label("Password", exact=True).fill(password)
    page.get_by_role("button", name="Log in").click()
    expect(page).to_have_url("/")


def forms_of(secret: str) -> list[bytes]:
    """The ways a secret could appear in a request body or URL."""
    raw = secret.encode()
    return [
        raw,
        json.dumps(secret).encode(),
        json.dumps(secret, ensure_ascii=False).encode(),
        base64.b64encode(raw),
        base64.urlsafe_b64encode(raw).rstrip(b"="),
        raw.hex().encode(),
    ]


def assert_never_sent(requests, *secrets):
    # The recording works: the key's registration went out with its sealed record.
    registered = [body for method, url, body in requests if url.endswith("/register")]
    assert registered and all(b'"private_record":' in body for body in registered)
    for method, url, body in requests:
        for secret in secrets:
            for form in forms_of(secret):
                assert form not in body, f"{method} {url} sent a secret"
                assert form.decode("latin-1") not in url
        assert b'"d":' not in body, f"{method} {url} sent an unencrypted private key"


def shown_fingerprint(page, locator):
    text = page.locator(locator).inner_text().strip()
    assert re.fullmatch(r"([0-9a-f]{4} ){7}[0-9a-f]{4}", text)
    return text


def test_a_guest_creates_a_key_in_the_browser(page, live_server, guest, sent, problems):
    log_in(page, "rita.recipient@example.org", GUEST_PASSWORD)
    page.goto("/keys/create/?next=/keys/")
    expect(page.get_by_role("heading", level=1)).to_have_text("Create your SecuPass key")
    expect(page.get_by_text("never leaves your browser", exact=False)).to_be_visible()
    submit = page.get_by_role("button", name="Create SecuPass key")
    expect(submit).to_be_enabled()

    # 11 characters: refused in the browser, nothing reaches the server.
    page.get_by_label("SecuPass", exact=True).fill("elf Zeichen")
    page.get_by_label("SecuPass again").fill("elf Zeichen")
    page.get_by_label("Your login password").fill(GUEST_PASSWORD)
    submit.click()
    expect(page.get_by_role("alert")).to_contain_text("at least 12 characters")
    expect(page.get_by_role("alert")).to_contain_text("this one has 11")
    # The login password as SecuPass: refused too, before anything is sent.
    page.get_by_label("SecuPass", exact=True).fill(GUEST_PASSWORD)
    page.get_by_label("SecuPass again").fill(GUEST_PASSWORD)
    submit.click()
    expect(page.get_by_role("alert")).to_contain_text("must differ from your login password")
    assert [r for r in sent if "/api/" in r[1]] == []
    # A wrong login password is caught by the server check.
    page.get_by_label("SecuPass", exact=True).fill(SECUPASS)
    page.get_by_label("SecuPass again").fill(SECUPASS)
    page.get_by_label("Your login password").fill("not my password")
    submit.click()
    expect(page.get_by_role("alert")).to_contain_text("This is not your login password.")
    assert not UserKey.objects.exists()

    page.get_by_label("Your login password").fill(GUEST_PASSWORD)
    submit.click()
    expect(page.get_by_role("heading", name="Your SecuPass key is ready")).to_be_visible()
    created = shown_fingerprint(page, "#new-fingerprint")

    key = UserKey.objects.get(user=guest)
    assert key.status == UserKey.Status.ACTIVE and key.iterations == 600_000
    expected = sxf.format_fingerprint(
        sxf.fingerprint(guest.email, key.ecdh_public_bytes, key.ecdsa_public_bytes)
    )
    assert created == expected
    assert AuditEvent.objects.filter(kind="key_created", actor=guest).count() == 1

    page.get_by_role("link", name="Continue").click()
    expect(page).to_have_url("/keys/")
    expect(page.locator("#fingerprint")).to_have_text(expected)
    expect(page.locator("#fingerprint-error")).to_be_hidden()

    # What the browser stored opens in Python with the same SecuPass (same format).
    info = key.owner_json()
    opened = keys.unlock(SECUPASS, info, key.pepper_bytes())
    assert opened.keys.ecdh_public == key.ecdh_public_bytes
    assert keys.open_keyring(bytes(key.keyring), opened.derived.keyring_key, key.id) == (1, {})

    assert_never_sent(sent, SECUPASS)
    assert problems == []


def test_a_sender_changes_the_secupass_and_then_resets_the_key(
    page, live_server, sender, password, sent, problems
):
    log_in(page, sender.email, password)
    page.goto("/keys/create/")
    page.get_by_label("SecuPass", exact=True).fill(SECUPASS)
    page.get_by_label("SecuPass again").fill(SECUPASS)
    page.get_by_label("Your login password").fill(password)
    page.get_by_role("button", name="Create SecuPass key").click()
    expect(page.get_by_role("heading", name="Your SecuPass key is ready")).to_be_visible()
    first = UserKey.objects.get(user=sender)

    page.goto("/keys/")
    page.get_by_role("link", name="Change SecuPass").click()
    expect(page).to_have_url("/keys/change/")
    page.get_by_label("Current SecuPass").fill(SECUPASS + "x")
    page.get_by_label("New SecuPass", exact=True).fill(NEW_SECUPASS)
    page.get_by_label("New SecuPass again").fill(NEW_SECUPASS)
    page.get_by_label("Your login password").fill(password)
    page.get_by_role("button", name="Change SecuPass").click()
    expect(page.get_by_role("alert")).to_contain_text("Wrong SecuPass")
    page.get_by_label("Current SecuPass").fill(SECUPASS)
    page.get_by_role("button", name="Change SecuPass").click()
    expect(page.get_by_role("heading", name="Your SecuPass has been changed")).to_be_visible()

    changed = UserKey.objects.get(pk=first.pk)
    assert changed.status == UserKey.Status.ACTIVE and changed.keyring_version == 2
    assert changed.fingerprint == first.fingerprint and changed.changed_at
    # The browser remembers the keyring version, so it can refuse an older one later.
    seen = json.loads(page.evaluate("localStorage.getItem('secushare.keyring-versions')"))
    assert seen == {str(first.pk): 2}
    opened = keys.unlock(NEW_SECUPASS, changed.owner_json(), changed.pepper_bytes())
    assert keys.open_keyring(bytes(changed.keyring), opened.derived.keyring_key, changed.id)[0] == 2

    page.goto("/keys/")
    page.get_by_role("link", name="Reset key…").click()
    expect(page.get_by_role("note")).to_contain_text("has to approve your new key")
    page.get_by_label("New SecuPass").fill(SECUPASS)
    page.get_by_label("SecuPass again").fill(SECUPASS)
    page.get_by_label("Your login password").fill(password)
    page.get_by_role("button", name="Reset and make a new key").click()
    expect(page.get_by_role("alert")).to_contain_text("Confirm that you have read the warning")
    page.get_by_label("I understand").check()
    page.get_by_role("button", name="Reset and make a new key").click()
    expect(page.get_by_role("heading", name="Your SecuPass key is ready")).to_be_visible()
    new_fingerprint = shown_fingerprint(page, "#new-fingerprint")

    new = UserKey.objects.active().get(user=sender)
    assert new.pk != first.pk and new_fingerprint == new.shown_fingerprint
    assert new_fingerprint != first.shown_fingerprint
    assert UserKey.objects.get(pk=first.pk).status == UserKey.Status.RETIRED
    reset = AuditEvent.objects.get(kind="key_reset")
    assert reset.detail["old_key_id"] == str(first.pk)

    assert_never_sent(sent, SECUPASS, NEW_SECUPASS)
    assert problems == []
