"""The recipient at levels 3 and 4, seen from the server: the delivery page's three states,
the JSON a client decrypts with, the ciphertext with Range and limits, and the audit event
and receipt when the browser reports a verified file."""

import io
import json
from datetime import timedelta

import pytest
from django.core import mail
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from accounts.models import User
from deliveries.models import AuditEvent, Delivery, Download, KeyEntry, Recipient
from secupass import keys, sxf
from tests.deliveries.e2e_receive_support import add_entry, make_e2e_delivery
from tests.deliveries.e2e_support import PASSWORD, guest, make_key

pytestmark = pytest.mark.django_db

RITA = "rita@example.org"


@pytest.fixture(autouse=True)
def _blobs(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "blobs"
    settings.CELERY_TASK_ALWAYS_EAGER = True


@pytest.fixture
def sender_key(sender):
    return make_key(sender)


@pytest.fixture
def rita():
    return make_key(guest(RITA))


def urls(made, email=RITA):
    rid = made.recipients[email].pk
    return {
        "landing": reverse("receive:landing", kwargs={"token": made.tokens[email]}),
        "page": reverse("receive:delivery", kwargs={"rid": rid}),
        "e2e": reverse("receive:e2e", kwargs={"rid": rid}),
        "downloaded": reverse("receive:downloaded", kwargs={"rid": rid}),
    }


def blob_url(made, name, email=RITA):
    rid = made.recipients[email].pk
    return reverse("receive:blob", kwargs={"rid": rid, "file_id": made.files[name].pk})


def signed_in(user, made, email=RITA, client=None):
    """A browser logged in as ``user`` that opened ``email``'s link."""
    client = client or Client()
    client.force_login(user)
    client.get(urls(made, email)["landing"])
    return client


def body(response) -> bytes:
    return b"".join(response.streaming_content) if response.streaming else response.content


def stored(settings, f) -> bytes:
    return (settings.MEDIA_ROOT / f.storage_name).read_bytes()


# -- what a client decrypts with --------------------------------------------------------------


def test_the_recipients_client_can_open_everything_from_the_json_and_the_blob(
    sender_key, rita, sender
):
    made = make_e2e_delivery(sender_key, readers=[rita])
    (name,) = made.files
    client = signed_in(rita.user, made)

    response = client.get(urls(made)["e2e"])

    assert response.status_code == 200
    assert response["Cache-Control"].startswith("max-age=0")
    data = response.json()
    assert data["level"] == 3 and data["delivery_id"] == str(made.delivery.id)
    assert data["reader"] == {"key_id": rita.key_id}
    assert data["entry"] == KeyEntry.objects.get(key_ref=rita.key_id).data
    assert data["message"] == "Die Zahlen, wie besprochen."
    assert data["message_sha256"] == made.delivery.message_sha256
    assert data["sender_key"]["key_id"] == sender_key.key_id
    assert data["sender_key"]["email"] == sender.email
    (item,) = data["files"]
    f = made.files[name]
    assert item == {
        "id": str(f.id),
        "name": name,
        "size": f.size,
        "blob_size": f.blob_size,
        "left": None,
        "url": blob_url(made, name),
    }

    # Rita's client: unwrap, check the signature with the sender's key, open the manifest,
    # then decrypt the ciphertext and check its digest.
    delivery_key = sxf.unwrap_p256(rita.private.ecdh, data["entry"], data["delivery_id"])
    manifest_blob = sxf.b64u_decode(data["manifest"])
    assert keys.verify_delivery(
        sxf.b64u_decode(data["sender_key"]["ecdsa_public"]),
        sxf.b64u_decode(data["signature"]),
        data["delivery_id"],
        3,
        delivery_key,
        manifest_blob,
    )
    manifest = keys.open_manifest(
        manifest_blob, delivery_key, data["delivery_id"], 3, {item["id"]: item["size"]}
    )
    ciphertext = body(client.get(item["url"]))
    plain = b"".join(
        sxf.decrypt_stream(
            delivery_key,
            io.BytesIO(ciphertext),
            delivery_id=data["delivery_id"],
            file_id=item["id"],
            blob_length=item["blob_size"],
        )
    )
    assert plain == made.plaintexts[name]
    assert manifest["files"][0]["digest"] == made.manifest["files"][0]["digest"]


def test_at_level_4_the_server_has_no_message_and_no_names_to_give(sender_key, rita):
    made = make_e2e_delivery(
        sender_key,
        level=4,
        readers=[rita],
        message="Geheimer Termin: Freitag",
        files={"Geheimplan.txt": b"plan " * 100},
    )
    client = signed_in(rita.user, made)

    data = client.get(urls(made)["e2e"]).json()
    page = client.get(urls(made)["page"]).content.decode()

    assert data["level"] == 4
    assert "message" not in data and "message_sha256" not in data
    assert set(data["files"][0]) == {"id", "size", "blob_size", "left", "url"}
    for text in (json.dumps(data), page):
        assert "Geheim" not in text and "Freitag" not in text
    assert "the name appears when you unlock" in page
    assert 'id="e2e-message"' in page


# -- who gets anything at all -----------------------------------------------------------------


def test_only_the_logged_in_recipient_gets_the_json_and_the_ciphertext(
    sender_key, rita, sender, make_delivery
):
    made = make_e2e_delivery(sender_key, recipients=[RITA, "bob@example.org"], readers=[rita])
    (name,) = made.files
    e2e, blob = urls(made)["e2e"], blob_url(made, name)

    anonymous = Client()
    assert anonymous.get(e2e).status_code == 404
    assert anonymous.get(blob).status_code == 404
    # Opened Rita's link, but logged in as someone else: the level-2 gate is not passed.
    other = signed_in(guest("mallory@example.org"), made)
    assert other.get(e2e).status_code == 404
    assert other.get(blob).status_code == 404
    # The sender is not a recipient.
    sender_browser = Client()
    sender_browser.force_login(sender)
    assert sender_browser.get(e2e).status_code == 404
    # Rita's session does not open Bob's recipient.
    client = signed_in(rita.user, made)
    assert client.get(urls(made, "bob@example.org")["e2e"]).status_code == 404
    assert client.get(blob_url(made, name, "bob@example.org")).status_code == 404
    # Level 2 files are decrypted by the server; there is no ciphertext or e2e JSON for them.
    level2 = make_delivery(level=2, recipients=[RITA])
    signed_in(rita.user, level2, client=client)
    rid = level2.recipients[RITA].pk
    assert client.get(reverse("receive:e2e", kwargs={"rid": rid})).status_code == 404
    f = next(iter(level2.files.values()))
    assert (
        client.get(reverse("receive:blob", kwargs={"rid": rid, "file_id": f.pk})).status_code == 404
    )
    assert not Download.objects.exists()


# -- the ciphertext ---------------------------------------------------------------------------


def test_the_blob_is_the_stored_ciphertext_as_an_inert_attachment_with_ranges(
    settings, sender_key, rita
):
    made = make_e2e_delivery(sender_key, readers=[rita], files={"data.bin": b"\x01" * 200_000})
    f = made.files["data.bin"]
    ciphertext = stored(settings, f)
    client = signed_in(rita.user, made)
    url = blob_url(made, "data.bin")

    whole = client.get(url)
    assert whole.status_code == 200
    assert body(whole) == ciphertext and len(ciphertext) == f.blob_size
    assert whole["Content-Type"] == "application/octet-stream"
    assert whole["Content-Length"] == str(f.blob_size)
    assert whole["Content-Disposition"].startswith(f'attachment; filename="{f.id}.sxf"')
    assert whole["X-Content-Type-Options"] == "nosniff"
    assert whole["Content-Security-Policy"] == "sandbox; default-src 'none'"
    assert whole["Cache-Control"] == "no-store"
    assert whole["Accept-Ranges"] == "bytes"

    part = client.get(url, headers={"Range": "bytes=100-199"})
    assert part.status_code == 206
    assert body(part) == ciphertext[100:200]
    assert part["Content-Range"] == f"bytes 100-199/{f.blob_size}"
    assert part["Content-Length"] == "100"

    start = sxf.chunk_offset(sxf.Header.parse(ciphertext), 2)
    rest = client.get(url, headers={"Range": f"bytes={start}-", "If-Range": whole["ETag"]})
    assert rest.status_code == 206 and body(rest) == ciphertext[start:]

    beyond = client.get(url, headers={"Range": f"bytes={f.blob_size}-"})
    assert beyond.status_code == 416
    assert beyond["Content-Range"] == f"bytes */{f.blob_size}"

    head = client.head(url)
    assert head.status_code == 200 and head["Content-Length"] == str(f.blob_size)
    assert Download.objects.get(file=f).count == 1  # the continuing range did not count


def test_the_limit_expiry_and_withdrawal_end_the_ciphertext_with_410(sender_key, rita):
    made = make_e2e_delivery(sender_key, readers=[rita], download_limit=1)
    (name,) = made.files
    client = signed_in(rita.user, made)
    url = blob_url(made, name)

    assert client.get(url).status_code == 200
    resumed = client.get(url, headers={"Range": "bytes=1000-"})
    assert resumed.status_code == 206
    again = client.get(url)
    assert again.status_code == 410
    assert "as often as the sender allowed" in again.content.decode()
    assert client.get(url, headers={"Range": "bytes=0-"}).status_code == 410
    assert Download.objects.get().count == 1
    assert client.get(urls(made)["e2e"]).json()["files"][0]["left"] == 0

    for change in (
        lambda: Recipient.objects.update(revoked_at=timezone.now()),
        lambda: Delivery.objects.update(status=Delivery.Status.REVOKED),
        lambda: Delivery.objects.update(expires_at=timezone.now() - timedelta(minutes=1)),
    ):
        fresh = make_e2e_delivery(sender_key, readers=[rita])
        (fresh_name,) = fresh.files
        fresh_client = signed_in(rita.user, fresh)
        change()
        answer = fresh_client.get(blob_url(fresh, fresh_name))
        assert answer.status_code == 410
        assert fresh_client.get(urls(fresh)["e2e"]).status_code == 410
        assert fresh_client.get(urls(fresh)["page"]).status_code == 410


# -- the page's three states ------------------------------------------------------------------


def test_without_a_key_the_page_leads_to_key_creation_and_back(sender_key):
    made = make_e2e_delivery(sender_key)
    client = signed_in(guest(RITA), made)

    response = client.get(urls(made)["page"])

    html = response.content.decode()
    assert response.status_code == 200
    assert f'href="/keys/create/?next=%2Fr%2F{made.recipients[RITA].pk}%2F"' in html
    assert "Create your SecuPass key" in html
    assert 'id="unlock-form"' not in html
    data = client.get(urls(made)["e2e"]).json()
    assert data["reader"] is None and data["entry"] is None


def test_a_key_without_an_entry_waits_for_approval_and_shows_its_fingerprint(sender_key, rita):
    made = make_e2e_delivery(sender_key, readers=[rita])
    client = signed_in(rita.user, made)
    reset = make_key(rita.user)  # the old key's entry no longer helps

    response = client.get(urls(made)["page"])

    html = response.content.decode()
    assert "Waiting for the sender's approval" in html
    assert reset.key.shown_fingerprint in html
    assert 'id="unlock-form"' not in html and "js/receive_e2e.js" in html
    data = client.get(urls(made)["e2e"]).json()
    assert data["reader"] == {"key_id": reset.key_id} and data["entry"] is None
    (name,) = made.files
    assert client.get(blob_url(made, name)).status_code == 404

    add_entry(made, reset)  # the sender approves the new key
    html = client.get(urls(made)["page"]).content.decode()
    assert 'id="unlock-form"' in html


def test_with_an_entry_the_page_offers_the_unlock_form(sender_key, rita):
    made = make_e2e_delivery(sender_key, readers=[rita])
    client = signed_in(rita.user, made)

    response = client.get(urls(made)["page"])

    html = response.content.decode()
    assert response.status_code == 200
    assert 'type="password" id="secupass"' in html and 'name="secupass"' not in html
    assert "Die Zahlen, wie besprochen." in html
    assert "js/receive_e2e.js" in html
    assert "frame-src 'self'" in response["Content-Security-Policy"]
    config = json.loads(html.split('id="e2e-config" type="application/json">')[1].split("<")[0])
    assert config["state"] == "ready"
    assert config["urls"]["e2e"] == urls(made)["e2e"]
    assert config["urls"]["serviceWorker"] == "/r/sw.js"


# -- reporting a verified download ------------------------------------------------------------


def test_a_verified_download_is_recorded_and_receipted_once(
    sender_key, rita, sender, django_capture_on_commit_callbacks
):
    made = make_e2e_delivery(sender_key, readers=[rita], notify_on_download=True)
    (name,) = made.files
    f = made.files[name]
    client = signed_in(rita.user, made)
    report = urls(made)["downloaded"]

    early = client.post(report, {"file_id": str(f.id)}, content_type="application/json")
    assert early.status_code == 409
    assert not AuditEvent.objects.filter(kind=AuditEvent.Kind.DOWNLOADED).exists()

    body(client.get(blob_url(made, name)))
    with django_capture_on_commit_callbacks(execute=True):
        first = client.post(report, {"file_id": str(f.id)}, content_type="application/json")
    with django_capture_on_commit_callbacks(execute=True):
        second = client.post(report, {"file_id": str(f.id)}, content_type="application/json")

    assert first.json() == {"recorded": True, "first": True}
    assert second.json() == {"recorded": True, "first": False}
    events = AuditEvent.objects.filter(kind=AuditEvent.Kind.DOWNLOADED)
    assert events.count() == 2
    assert events.first().detail == {"file": str(f.id), "size": f.size, "e2e": True}
    assert events.first().actor == rita.user
    made.recipients[RITA].refresh_from_db()
    assert made.recipients[RITA].downloaded_at is not None
    (receipt,) = mail.outbox
    assert receipt.to == [sender.email]
    assert RITA in receipt.body and name in receipt.body

    bad = client.post(report, {"file_id": "nope"}, content_type="application/json")
    assert bad.status_code == 400 and "file_id" in bad.json()["errors"]
    # A cross-site form cannot send JSON; anything else is refused.
    strict = signed_in(rita.user, made, client=Client(enforce_csrf_checks=True))
    refused = strict.post(report, {"file_id": str(f.id)})
    assert refused.status_code == 400
    assert strict.post(report, {"file_id": str(f.id)}, content_type="application/json").json()[
        "recorded"
    ]
    assert AuditEvent.objects.filter(kind=AuditEvent.Kind.DOWNLOADED).count() == 3
    assert len(mail.outbox) == 1


def test_the_service_worker_is_served_with_the_recipient_pages_scope(client, sender):
    response = client.get(reverse("receive:service_worker"))

    assert response.status_code == 200
    assert response["Content-Type"] == "text/javascript; charset=utf-8"
    assert response["Service-Worker-Allowed"] == "/r/"
    assert b"/r\\/_download\\/" in response.content


def test_a_level_2_delivery_page_still_offers_server_side_downloads(make_delivery):
    made = make_delivery(level=2, recipients=[RITA])
    client = signed_in(User.objects.create_guest(RITA, "x" * 20), made)

    html = client.get(urls(made)["page"]).content.decode()

    assert "Download all as ZIP" in html and "js/receive_e2e.js" not in html


def test_the_cli_endpoint_points_end_to_end_clients_at_ciphertext_not_plaintext(sender_key, rita):
    made = make_e2e_delivery(sender_key, readers=[rita])
    client = Client()
    response = client.post(
        "/api/v1/receive",
        {"token": made.tokens[RITA], "email": RITA, "password": PASSWORD},
        content_type="application/json",
    )

    assert response.status_code == 200
    data = response.json()
    assert data["zip_url"] is None  # the server cannot build a ZIP of files it cannot read
    assert data["e2e_url"].endswith(urls(made)["e2e"])
    for listed in data["files"]:
        assert "/blobs/" in listed["url"]
        blob = b"".join(client.get(listed["url"]).streaming_content)
        assert blob[:4] == sxf.MAGIC
