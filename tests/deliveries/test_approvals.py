"""Approving recipients' keys: the pending list, storing the re-wrapped entries, the mails
both ways, and a reset followed by a new approval that opens a delivery sent before it."""

from datetime import timedelta

import pytest
from django.core import mail
from django.urls import reverse
from django.utils import timezone

from accounts.models import User
from deliveries.models import AuditEvent, Delivery, KeyEntry
from secupass import sxf
from tests.deliveries.e2e_support import (
    APPROVALS,
    Api,
    add_file,
    create_draft,
    guest,
    log_in,
    make_key,
    open_keyring,
    send,
    send_body,
    use_live_site,
)

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _blobs(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "blobs"
    settings.CELERY_TASK_ALWAYS_EAGER = True


@pytest.fixture
def api(sender):
    return Api(sender)


@pytest.fixture
def sender_key(sender):
    return make_key(sender)


@pytest.fixture
def rita_user():
    return guest("rita@example.org")


def sent(api, sender_key, *, level=3, to=("rita@example.org",), readers=(), subject="Figures"):
    draft = create_draft(api, level=level, recipients=to, subject=subject)
    add_file(api, draft, "figures.csv", b"q3,1200\n" * 100)
    response = send(api, draft, send_body(draft, sender_key, readers))
    assert response.status_code == 200, response.content
    return draft


def rewrap(pending_key: dict, sender_key) -> list:
    """What the sender's browser does: unwrap from its own entry, wrap for the new key."""
    items = []
    for d in pending_key["deliveries"]:
        delivery_key = sxf.unwrap_p256(sender_key.private.ecdh, d["sender_entry"], d["delivery_id"])
        reader = sxf.b64u_decode(pending_key["ecdh_public"])
        entry = sxf.wrap_p256(reader, pending_key["key_id"], d["delivery_id"], delivery_key)
        items.append({"delivery_id": d["delivery_id"], "entry": entry})
    return items


def approve(api, pending_key, sender_key):
    return api.post(
        APPROVALS, {"key_id": pending_key["key_id"], "entries": rewrap(pending_key, sender_key)}
    )


def pending(api):
    response = api.get(APPROVALS)
    assert response.status_code == 200
    return response.json()["pending"]


# -- the pending list -------------------------------------------------------------------------


def test_a_new_recipient_key_is_pending_for_the_deliveries_it_cannot_open(
    api, sender, sender_key, rita_user, django_capture_on_commit_callbacks
):
    first = sent(api, sender_key, to=["rita@example.org", "bob@example.org"], subject="First")
    second = sent(api, sender_key, level=4, subject="Second")
    expired = sent(api, sender_key, subject="Old")
    Delivery.objects.filter(pk=expired.id).update(expires_at=timezone.now() - timedelta(hours=1))
    revoked = sent(api, sender_key, subject="Withdrawn")
    revoked.delivery.recipients.update(revoked_at=timezone.now())
    mail.outbox.clear()

    with django_capture_on_commit_callbacks(execute=True):
        rita = make_key(rita_user)

    (item,) = pending(api)
    assert item["email"] == "rita@example.org"
    assert item["key_id"] == rita.key_id
    assert sxf.b64u_decode(item["ecdh_public"]) == rita.private.ecdh_public
    assert item["fingerprint"] == sxf.format_fingerprint(
        sxf.fingerprint("rita@example.org", rita.private.ecdh_public, rita.private.ecdsa_public)
    )
    assert item["replaces_key"] is False
    assert [d["delivery_id"] for d in item["deliveries"]] == [first.id, second.id]
    own = KeyEntry.objects.get(delivery_id=first.id, key_ref=sender_key.key_id).data
    assert item["deliveries"][0]["sender_entry"] == own

    # One mail to the sender for the key, naming both deliveries that wait.
    (needed,) = mail.outbox
    assert needed.to == [sender.email]
    assert "rita@example.org" in needed.subject
    assert "First" in needed.body and "Second" in needed.body and "Old" not in needed.body
    assert reverse("sender:approvals") in needed.body
    assert "by phone or in person" in needed.body


def test_keys_that_can_open_are_not_pending(api, sender_key, rita_user):
    rita = make_key(rita_user)
    sent(api, sender_key, readers=[rita])
    level2 = api.post(
        "/api/v1/deliveries", {"level": 2, "subject": "L2", "recipients": ["carl@example.org"]}
    )
    assert level2.status_code == 201
    make_key(User.objects.create_user("carl@example.org", "x" * 20))
    make_key(guest("unverified@example.org"))
    User.objects.filter(email="unverified@example.org").update(email_verified_at=None)
    sent(api, sender_key, to=["unverified@example.org"])

    assert pending(api) == []


def test_senders_only_see_and_approve_their_own(api, sender_key, rita_user):
    sent(api, sender_key)
    make_key(rita_user)
    (item,) = pending(api)
    olga = User.objects.create_user("olga@example.org", "x" * 20)
    olga_key = make_key(olga)
    olga_api = Api(olga)

    assert pending(olga_api) == []
    forged = [
        {
            "delivery_id": d["delivery_id"],
            "entry": sxf.wrap_p256(
                sxf.b64u_decode(item["ecdh_public"]), item["key_id"], d["delivery_id"], bytes(32)
            ),
        }
        for d in item["deliveries"]
    ]
    response = olga_api.post(APPROVALS, {"key_id": item["key_id"], "entries": forged})
    assert response.status_code == 404
    assert olga_key.key_id
    guest_api = Api(rita_user)
    assert guest_api.get(APPROVALS).status_code == 403
    assert KeyEntry.objects.filter(key_ref=item["key_id"]).count() == 0


# -- approving --------------------------------------------------------------------------------


def test_approving_stores_entries_audits_and_mails_the_recipient(
    api, sender, sender_key, rita_user, django_capture_on_commit_callbacks
):
    first = sent(api, sender_key, subject="First")
    second = sent(api, sender_key, level=4, subject="Second")
    rita = make_key(rita_user)
    (item,) = pending(api)
    mail.outbox.clear()

    with django_capture_on_commit_callbacks(execute=True):
        response = approve(api, item, sender_key)

    assert response.status_code == 200, response.content
    assert sorted(response.json()["approved"]) == sorted([first.id, second.id])
    assert pending(api) == []
    for draft in (first, second):
        entry = KeyEntry.objects.get(delivery_id=draft.id, key_ref=rita.key_id).data
        assert sxf.unwrap_p256(rita.private.ecdh, entry, draft.id) == draft.key
    events = AuditEvent.objects.filter(kind=AuditEvent.Kind.KEY_APPROVED)
    assert events.count() == 2
    assert {e.detail["key_id"] for e in events} == {rita.key_id}
    assert all(e.actor == sender and e.recipient.email == "rita@example.org" for e in events)
    (ready,) = mail.outbox
    assert ready.to == ["rita@example.org"]
    assert "Sam Sender" in ready.subject
    assert "First" in ready.body and "Second" in ready.body

    # Nothing changes when the same approval arrives again.
    again = approve(api, item, sender_key)
    assert again.status_code == 404
    assert KeyEntry.objects.filter(key_ref=rita.key_id).count() == 2


@pytest.mark.parametrize(
    ("mangle", "status", "expected"),
    [
        (lambda body, item: {**body, "entries": []}, 400, "one at least"),
        (
            lambda body, item: {
                **body,
                "entries": [{**body["entries"][0], "entry": {"kind": "p256"}}],
            },
            400,
            "is malformed",
        ),
        (
            lambda body, item: {
                **body,
                "entries": [
                    {
                        **body["entries"][0],
                        "entry": {**body["entries"][0]["entry"], "key_id": "other"},
                    }
                ],
            },
            400,
            "not a public-key entry for key",
        ),
        (
            lambda body, item: {
                **body,
                "entries": [{**body["entries"][0], "delivery_id": "not-one-of-them"}],
            },
            400,
            "is not waiting for this key",
        ),
        (lambda body, item: {**body, "key_id": "12345"}, 404, "No key with this id"),
        (lambda body, item: {**body, "entries": body["entries"] * 2}, 400, "listed twice"),
    ],
)
def test_bad_approvals_are_refused_and_change_nothing(
    api, sender_key, rita_user, mangle, status, expected
):
    sent(api, sender_key)
    make_key(rita_user)
    (item,) = pending(api)
    body = {"key_id": item["key_id"], "entries": rewrap(item, sender_key)}

    response = api.post(APPROVALS, mangle(body, item))

    assert response.status_code == status
    assert expected in response.json()["error"]
    assert KeyEntry.objects.filter(key_ref=item["key_id"]).count() == 0
    assert not AuditEvent.objects.filter(kind=AuditEvent.Kind.KEY_APPROVED).exists()


def test_after_a_reset_the_new_key_is_pending_again_and_opens_old_deliveries(
    api, sender, sender_key, rita_user, django_capture_on_commit_callbacks
):
    rita = make_key(rita_user)
    before = sent(api, sender_key, readers=[rita], subject="Before the reset")
    gone = sent(api, sender_key, readers=[rita], subject="Expired meanwhile")
    Delivery.objects.filter(pk=gone.id).update(expires_at=timezone.now() - timedelta(days=1))
    assert pending(api) == []
    mail.outbox.clear()

    with django_capture_on_commit_callbacks(execute=True):
        reset = make_key(rita_user)

    (needed,) = mail.outbox
    assert needed.to == [sender.email] and "reset" in needed.body
    (item,) = pending(api)
    assert item["key_id"] == reset.key_id and item["replaces_key"] is True
    assert [d["delivery_id"] for d in item["deliveries"]] == [before.id]
    mail.outbox.clear()

    with django_capture_on_commit_callbacks(execute=True):
        assert approve(api, item, sender_key).status_code == 200

    entry = KeyEntry.objects.get(delivery_id=before.id, key_ref=reset.key_id).data
    assert sxf.unwrap_p256(reset.private.ecdh, entry, before.id) == before.key
    # Nothing was sent again: the only mail is "your files are ready".
    assert [m.to for m in mail.outbox] == [["rita@example.org"]]
    assert Delivery.objects.filter(sender=sender).count() == 2


def test_a_delivery_sent_with_the_senders_previous_key_cannot_be_approved(
    api, sender, sender_key, rita_user
):
    draft = sent(api, sender_key)
    make_key(sender)  # the sender resets their own key
    make_key(rita_user)

    (item,) = pending(api)
    assert item["deliveries"][0]["delivery_id"] == draft.id
    assert item["deliveries"][0]["sender_entry"] is None


# -- the page ---------------------------------------------------------------------------------


def test_the_approvals_page_lists_keys_with_instructions(api, sender_client, sender_key, rita_user):
    sent(api, sender_key, subject="Figures for Rita")
    rita = make_key(rita_user)

    response = sender_client.get(reverse("sender:approvals"))

    html = response.content.decode()
    assert response.status_code == 200
    assert f'data-key-id="{rita.key_id}"' in html
    assert "rita@example.org" in html and "Figures for Rita" in html
    assert "by phone or in person" in html
    assert 'type="password" id="secupass"' in html and 'name="secupass"' not in html
    assert "js/approvals.js" in html


def test_the_approvals_page_is_for_senders(client, rita_user):
    assert client.get(reverse("sender:approvals")).status_code == 302
    client.force_login(rita_user)
    assert client.get(reverse("sender:approvals")).status_code == 404


def test_nothing_pending_says_so(sender_client, sender_key):
    html = sender_client.get(reverse("sender:approvals")).content.decode()
    assert "No keys are waiting for your approval." in html
    assert "js/approvals.js" not in html


# -- in the browser ---------------------------------------------------------------------------

SECUPASS = "Leuchtturm am Nordkap 1887"


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_approving_in_the_browser_rewraps_and_pins(
    page, live_server, settings, tmp_path, sender, password, rita_user
):
    use_live_site(settings, live_server, tmp_path)
    sender_key = make_key(sender, secupass=SECUPASS)
    api = Api(sender)
    draft = sent(api, sender_key, subject="Plans for Rita")
    rita = make_key(rita_user)
    expected = sxf.format_fingerprint(
        sxf.fingerprint("rita@example.org", rita.private.ecdh_public, rita.private.ecdsa_public)
    )
    errors = []
    page.on("pageerror", lambda error: errors.append(str(error)))

    log_in(page, sender.email, password)
    page.goto("/approvals/")
    page.wait_for_selector("body[data-approvals-ready=true]")
    card = page.locator(f'[data-key-id="{rita.key_id}"]')
    assert card.locator("[data-role=fingerprint]").inner_text() == expected
    assert "Plans for Rita" in card.inner_text()

    card.get_by_role("button", name="Approve this key").click()
    assert "First compare the fingerprint" in card.locator("[data-role=status]").inner_text()
    card.get_by_role("checkbox").check()
    card.get_by_role("button", name="Approve this key").click()
    page.get_by_label("Your SecuPass").fill("not my SecuPass at all")
    page.get_by_role("button", name="Unlock and approve").click()
    page.wait_for_selector("#unlock-error:not([hidden])")
    assert "Wrong SecuPass" in page.locator("#unlock-error").inner_text()
    page.get_by_label("Your SecuPass").fill(SECUPASS)
    page.get_by_role("button", name="Unlock and approve").click()
    page.wait_for_selector(f'[data-key-id="{rita.key_id}"][data-approved=true]')
    assert "has been told by mail" in card.locator("[data-role=status]").inner_text()

    entry = KeyEntry.objects.get(delivery_id=draft.id, key_ref=rita.key_id).data
    assert sxf.unwrap_p256(rita.private.ecdh, entry, draft.id) == draft.key
    version, pins = open_keyring(sender, SECUPASS)
    assert version == 2
    assert pins == {
        "rita@example.org": sxf.fingerprint(
            "rita@example.org", rita.private.ecdh_public, rita.private.ecdsa_public
        ).hex()
    }
    assert page.evaluate("localStorage.getItem('secushare.keyring-versions')") == (
        f'{{"{sender_key.key_id}":2}}'
    )

    # Rita resets her key: the page warns that another key was approved before.
    reset = make_key(rita_user)
    page.reload()
    page.wait_for_selector("body[data-approvals-ready=true]")
    card = page.locator(f'[data-key-id="{reset.key_id}"]')
    card.get_by_role("checkbox").check()
    card.get_by_role("button", name="Approve this key").click()
    page.get_by_label("Your SecuPass").fill(SECUPASS)
    page.get_by_role("button", name="Unlock and approve").click()
    warning = card.locator("[data-role=warning]")
    warning.wait_for()
    assert "you approved a different key for rita@example.org before" in warning.inner_text()
    assert not KeyEntry.objects.filter(key_ref=reset.key_id).exists()
    card.get_by_role("button", name="Approve the new key anyway").click()
    page.wait_for_selector(f'[data-key-id="{reset.key_id}"][data-approved=true]')

    entry = KeyEntry.objects.get(delivery_id=draft.id, key_ref=reset.key_id).data
    assert sxf.unwrap_p256(reset.private.ecdh, entry, draft.id) == draft.key
    assert open_keyring(sender, SECUPASS)[0] == 3
    assert errors == []
