"""Sending at levels 3 and 4: what the server accepts from a client, what it refuses, and
that it keeps nothing it could read (no level 4 message, no names, no plaintext)."""

import hashlib
import re
import uuid

import pytest
from django.core import mail
from django.db import connection
from django.urls import reverse

from accounts.models import User
from deliveries.models import Delivery, DeliveryFile, KeyEntry
from outbox.models import OutgoingMail
from secupass import keys, sxf
from secupass.models import UserKey
from tests.deliveries.e2e_support import (
    DELIVERIES,
    Api,
    add_file,
    create_draft,
    guest,
    log_in,
    make_key,
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
def rita():
    return make_key(guest("rita@example.org"))


def entry_refs(delivery):
    return set(
        KeyEntry.objects.filter(delivery=delivery, kind=KeyEntry.Kind.P256).values_list(
            "key_ref", flat=True
        )
    )


# -- sending ----------------------------------------------------------------------------------


def test_level_3_stores_entries_manifest_and_signature_and_mails_everyone(
    api, sender_client, sender_key, rita, django_capture_on_commit_callbacks
):
    draft = create_draft(api, recipients=["rita@example.org", "bob@example.org"])
    add_file(api, draft, "figures.csv", b"quarter,revenue\nQ3,1200\n" * 500)
    body = send_body(draft, sender_key, [rita])

    with django_capture_on_commit_callbacks(execute=True):
        response = send(api, draft, body)

    assert response.status_code == 200, response.content
    assert response.json()["status"] == "sent"
    delivery = Delivery.objects.get(pk=draft.id)
    assert entry_refs(delivery) == {sender_key.key_id, rita.key_id}
    assert bytes(delivery.manifest) == sxf.b64u_decode(body["manifest"])
    assert bytes(delivery.signature) == sxf.b64u_decode(body["signature"])
    assert delivery.message_sha256 == hashlib.sha256(b"Here are the figures.").hexdigest()
    assert sorted(m.to[0] for m in mail.outbox) == ["bob@example.org", "rita@example.org"]

    # What Rita's client does: unwrap her entry, check the signature, open the manifest.
    entry = KeyEntry.objects.get(delivery=delivery, key_ref=rita.key_id).data
    delivery_key = sxf.unwrap_p256(rita.private.ecdh, entry, draft.id)
    assert delivery_key == draft.key
    assert keys.verify_delivery(
        sender_key.private.ecdsa_public,
        bytes(delivery.signature),
        draft.id,
        3,
        delivery_key,
        bytes(delivery.manifest),
    )
    sizes = {f.id: f.size for f in delivery.files.all()}
    manifest = keys.open_manifest(bytes(delivery.manifest), delivery_key, draft.id, 3, sizes)
    assert manifest["files"][0]["name"] == "figures.csv"

    # Bob has no key yet: the sent page says he waits; Rita can open it.
    page = sender_client.get(reverse("sender:detail", kwargs={"pk": delivery.pk}))
    html = page.content.decode()
    assert html.count("data-waiting=") == 1
    assert 'data-waiting="no_key"' in html and 'data-waiting="approval"' not in html


def test_the_sent_page_tells_which_recipient_waits_for_approval(
    api, sender_client, sender_key, rita
):
    carl = make_key(User.objects.create_user("carl@example.org", "x" * 20))
    draft = create_draft(api, recipients=["rita@example.org", "carl@example.org"])
    add_file(api, draft, "a.txt", b"a" * 10)
    assert send(api, draft, send_body(draft, sender_key, [rita])).status_code == 200

    html = sender_client.get(reverse("sender:detail", kwargs={"pk": draft.id})).content.decode()

    row = html[html.index('data-recipient="carl@example.org"') :]
    row = row[: row.index("</tr>")]
    assert 'data-waiting="approval"' in row and "approve their key" in row
    assert reverse("sender:approvals") in html
    assert carl.key_id not in entry_refs(draft.delivery)


def test_levels_3_and_4_need_the_senders_key_first(api):
    for level in (3, 4):
        response = api.post(DELIVERIES, {"level": level, "subject": "S", "recipients": ["a@b.org"]})
        assert response.status_code == 400
        message = response.json()["errors"]["level"][0]
        assert "/keys/create/?next=/send/" in message
    assert not Delivery.objects.exists()


def test_a_level_4_draft_takes_no_message(api, sender_key):
    response = api.post(
        DELIVERIES,
        {"level": 4, "subject": "S", "message": "secret", "recipients": ["a@example.org"]},
    )
    assert response.status_code == 400
    assert "end-to-end encrypted" in response.json()["errors"]["message"][0]
    assert not Delivery.objects.exists()


def _foreign_entry(draft, sender_key, rita):
    stranger = make_key(guest("stranger@example.org"))
    return [
        sxf.wrap_p256(k.private.ecdh_public, k.key_id, draft.id, draft.key)
        for k in (sender_key, stranger)
    ]


def _malformed(draft, sender_key, rita):
    entry = sxf.wrap_p256(sender_key.private.ecdh_public, sender_key.key_id, draft.id, draft.key)
    return [{**entry, "ct": entry["ct"][:-4]}]


def _server_entry(draft, sender_key, rita):
    return [sxf.wrap_kek(bytes(32), "k1", draft.id, draft.key)]


def _no_sender_entry(draft, sender_key, rita):
    return [sxf.wrap_p256(rita.private.ecdh_public, rita.key_id, draft.id, draft.key)]


def _twice(draft, sender_key, rita):
    entry = sxf.wrap_p256(sender_key.private.ecdh_public, sender_key.key_id, draft.id, draft.key)
    return [entry, entry]


@pytest.mark.parametrize(
    ("entries", "expected"),
    [
        (_malformed, "Key entry 1 is malformed"),
        (_server_entry, "server entry"),
        (_foreign_entry, "neither yours nor the active key of a recipient"),
        (_no_sender_entry, "no key entry for your own key"),
        (_twice, "repeats a key"),
    ],
)
def test_bad_entries_are_refused_and_change_nothing(api, sender_key, rita, entries, expected):
    draft = create_draft(api)
    add_file(api, draft, "a.txt", b"a" * 100)

    response = send(
        api, draft, send_body(draft, sender_key, entries=entries(draft, sender_key, rita))
    )

    assert response.status_code == 400
    assert expected in response.json()["error"]
    draft.delivery.refresh_from_db()
    assert draft.delivery.status == Delivery.Status.DRAFT
    assert not KeyEntry.objects.exists() and draft.delivery.manifest is None
    assert not OutgoingMail.objects.exists()


def test_an_entry_for_a_revoked_recipients_key_is_refused(api, sender_key, rita):
    draft = create_draft(api)
    add_file(api, draft, "a.txt", b"a")
    draft.delivery.recipients.update(revoked_at=draft.delivery.created_at)

    response = send(api, draft, send_body(draft, sender_key, [rita]))

    assert response.status_code == 400
    assert "neither yours nor the active key" in response.json()["error"]


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"signature": sxf.b64u_encode(b"x" * 63)}, "64 bytes"),
        ({"manifest": "not base64!"}, "unpadded base64url"),
        ({"manifest": sxf.b64u_encode(b"short")}, "too short"),
        ({"message_sha256": "0" * 64}, "does not match the message"),
        ({"message_sha256": "ABC"}, "64 hex digits"),
        ({"delivery_key": "AAAA"}, "Unknown fields: delivery_key"),
        ({"entries": []}, "one at least"),
    ],
)
def test_malformed_send_bodies_are_refused(api, sender_key, rita, changes, expected):
    draft = create_draft(api)
    add_file(api, draft, "a.txt", b"a" * 100)

    response = send(api, draft, send_body(draft, sender_key, [rita], **changes))

    assert response.status_code == 400
    assert expected in response.json()["error"]
    assert not KeyEntry.objects.exists()


def _other_file_id(data: bytes) -> bytes:
    return data[:24] + uuid.uuid4().bytes + data[40:]


def _truncated(data: bytes) -> bytes:
    return data[:-1]


@pytest.mark.parametrize(
    ("damage", "expected"),
    [(_other_file_id, "stored under another file's record"), (_truncated, "truncated")],
)
def test_a_blob_damaged_in_storage_is_refused(api, sender_key, settings, damage, expected):
    # The tus server checks the header as it arrives; this is the check before sending.
    draft = create_draft(api)
    add_file(api, draft, "a.txt", b"a" * 1000)
    (stored,) = [p for p in settings.MEDIA_ROOT.rglob("*") if p.is_file()]
    stored.write_bytes(damage(stored.read_bytes()))

    response = send(api, draft, send_body(draft, sender_key))

    assert response.status_code == 400
    assert "“a.txt” arrived damaged" in response.json()["error"]
    assert expected in response.json()["error"]
    assert Delivery.objects.get(pk=draft.id).status == Delivery.Status.DRAFT


def test_an_unfinished_upload_is_refused(api, sender_key):
    draft = create_draft(api)
    add_file(api, draft, "a.txt", b"a" * 1000)
    DeliveryFile.objects.update(state=DeliveryFile.State.UPLOADING)

    response = send(api, draft, send_body(draft, sender_key))

    assert response.status_code == 400
    assert "has not finished uploading" in response.json()["error"]


def test_level_4_refuses_a_draft_that_carries_a_message_or_names(api, sender_key):
    draft = create_draft(api, level=4, message="Launch on Friday")
    add_file(api, draft, "plan.txt", b"plan")
    body = send_body(draft, sender_key)

    Delivery.objects.filter(pk=draft.id).update(message="Launch on Friday")
    response = send(api, draft, body)
    assert response.status_code == 400
    assert "message belongs in the encrypted manifest" in response.json()["error"]

    Delivery.objects.filter(pk=draft.id).update(message="")
    DeliveryFile.objects.filter(delivery_id=draft.id).update(name="plan.txt")
    response = send(api, draft, body)
    assert response.status_code == 400
    assert "file names belong in the encrypted manifest" in response.json()["error"]

    response = send(api, draft, {**body, "message_sha256": "0" * 64})
    assert response.status_code == 400
    assert "Level 4 has no “message_sha256”" in response.json()["error"]
    assert not KeyEntry.objects.exists()


def test_level_2_still_needs_the_delivery_key(api, sender_key):
    response = api.post(
        DELIVERIES, {"level": 2, "subject": "S", "recipients": ["rita@example.org"]}
    )
    draft_id = response.json()["id"]
    answer = api.post(f"{DELIVERIES}/{draft_id}/send", {"entries": []})
    assert answer.status_code == 400
    assert "delivery key is missing" in answer.json()["error"]


def test_another_sender_cannot_send_my_draft(api, sender_key):
    draft = create_draft(api)
    add_file(api, draft, "a.txt", b"a")
    other = Api(User.objects.create_user("olga@example.org", "x" * 20))

    response = send(other, draft, send_body(draft, sender_key))

    assert response.status_code == 404
    assert Delivery.objects.get(pk=draft.id).status == Delivery.Status.DRAFT


# -- what the server keeps at level 4 ---------------------------------------------------------

MESSAGE_MARKER = "Kassiopeia-Nachricht-4711"
NAME_MARKER = "Zimtstern-Dateiname-0815"
CONTENT_MARKER = b"Mondfinsternis-Inhalt-2342"


def stored_texts():
    """Every value of every column of every table, as bytes (text UTF-8 encoded)."""
    with connection.cursor() as cursor:
        for table in connection.introspection.table_names():
            # Table names come from the database itself.
            cursor.execute(f"SELECT * FROM {connection.ops.quote_name(table)}")  # noqa: S608
            for row in cursor.fetchall():
                for value in row:
                    if isinstance(value, str):
                        yield table, value.encode()
                    elif isinstance(value, bytes | bytearray | memoryview):
                        yield table, bytes(value)


def test_level_4_keeps_no_message_no_names_and_no_plaintext(
    api, sender_client, sender_key, rita, settings, django_capture_on_commit_callbacks
):
    draft = create_draft(api, level=4, message=f"Die Nachricht: {MESSAGE_MARKER}")
    add_file(api, draft, f"{NAME_MARKER}.txt", CONTENT_MARKER * 1000)
    add_file(api, draft, f"zweite-{NAME_MARKER}.pdf", b"%PDF " + CONTENT_MARKER)

    with django_capture_on_commit_callbacks(execute=True):
        response = send(api, draft, send_body(draft, sender_key, [rita]))
    assert response.status_code == 200, response.content
    sender_client.get(reverse("sender:detail", kwargs={"pk": draft.id}))

    markers = [MESSAGE_MARKER.encode(), NAME_MARKER.encode(), CONTENT_MARKER]
    values = list(stored_texts())
    assert any(table == "deliveries_keyentry" for table, _ in values)
    for table, value in values:
        for marker in markers:
            assert marker not in value, f"{marker!r} found in {table}"
    blobs = [p.read_bytes() for p in settings.MEDIA_ROOT.rglob("*") if p.is_file()]
    assert len(blobs) == 2
    for blob in blobs:
        for marker in markers:
            assert marker not in blob
    sent = mail.outbox[0]
    assert sent.to == ["rita@example.org"]
    for marker in (MESSAGE_MARKER, NAME_MARKER):
        assert marker not in sent.body and marker not in sent.alternatives[0][0]

    # ... and yet Rita's client gets all of it back.
    delivery = Delivery.objects.get(pk=draft.id)
    entry = KeyEntry.objects.get(delivery=delivery, key_ref=rita.key_id).data
    delivery_key = sxf.unwrap_p256(rita.private.ecdh, entry, draft.id)
    sizes = {f.id: f.size for f in delivery.files.all()}
    manifest = keys.open_manifest(bytes(delivery.manifest), delivery_key, draft.id, 4, sizes)
    assert MESSAGE_MARKER in manifest["message"]
    assert {f["name"] for f in manifest["files"]} == {
        f"{NAME_MARKER}.txt",
        f"zweite-{NAME_MARKER}.pdf",
    }


# -- in the browser ---------------------------------------------------------------------------

SECUPASS = "Leuchtturm am Nordkap 1887"


def shown(hex_fingerprint):
    return sxf.format_fingerprint(bytes.fromhex(hex_fingerprint))


def blob_digest(path) -> str:
    """The manifest digest of a stored blob, recomputed chunk by chunk."""
    data = path.read_bytes()
    header = sxf.Header.parse(data)
    digest = sxf.BlobDigest()
    digest.update_header(data[: sxf.HEADER_LEN])
    for i in range(header.chunk_count):
        start = sxf.chunk_offset(header, i)
        digest.update_chunk(data[start : start + sxf.stored_chunk_len(header, i)])
    return digest.hexdigest()


def fingerprint_hex(email, keyed_or_private):
    private = getattr(keyed_or_private, "private", keyed_or_private)
    return sxf.fingerprint(email, private.ecdh_public, private.ecdsa_public).hex()


def compose(page, *, to, level, message, path):
    page.goto("/send/")
    page.wait_for_selector("form#compose[data-ready=true]")
    page.get_by_label("Recipients").fill(to)
    page.get_by_label("Subject").fill("Board papers")
    page.get_by_role("textbox", name="Message").fill(message)
    page.check(f"#id_level_{level}")
    page.get_by_label("Your SecuPass").fill(SECUPASS)
    page.set_input_files("#id_files", str(path))


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_a_key_substituted_for_a_pinned_address_is_refused_by_the_browser(
    page, live_server, settings, tmp_path, sender, password
):
    use_live_site(settings, live_server, tmp_path)
    rita = make_key(guest("rita@example.org"))
    carl = make_key(guest("carl@example.org"))
    pins = {
        "rita@example.org": fingerprint_hex("rita@example.org", rita),
        "carl@example.org": fingerprint_hex("carl@example.org", carl),
    }
    sender_key = make_key(sender, secupass=SECUPASS, pins=pins)
    # The server (or whoever controls its database) swaps Rita's public keys for its own.
    evil = keys.generate_user_keys()
    UserKey.objects.filter(pk=rita.key.pk).update(
        ecdh_public=evil.ecdh_public,
        ecdsa_public=evil.ecdsa_public,
        fingerprint=fingerprint_hex("rita@example.org", evil),
    )
    path = tmp_path / "board.txt"
    path.write_text("Board papers\n" * 100)
    errors = []
    page.on("pageerror", lambda error: errors.append(str(error)))

    log_in(page, sender.email, password)
    compose(
        page, to="rita@example.org, carl@example.org", level=3, message="See attached.", path=path
    )
    page.get_by_role("button", name="Encrypt and send").click()

    refusal = page.locator("#e2e-notes .refused")
    refusal.wait_for()
    text = refusal.inner_text()
    assert "Refused" in text and "rita@example.org" in text
    assert shown(pins["rita@example.org"]) in text
    assert shown(fingerprint_hex("rita@example.org", evil)) in text
    assert not Delivery.objects.exists()

    page.get_by_role("button", name="Send anyway; they wait for your approval").click()
    page.wait_for_url(re.compile(r"/sent/[0-9a-f-]{36}/$"))

    delivery = Delivery.objects.get()
    assert delivery.status == Delivery.Status.SENT
    assert entry_refs(delivery) == {sender_key.key_id, carl.key_id}
    assert not KeyEntry.objects.filter(key_ref=rita.key_id).exists()
    row = page.locator('[data-recipient="rita@example.org"]')
    assert row.locator("[data-waiting=approval]").is_visible()
    assert not page.locator('[data-recipient="carl@example.org"] [data-waiting]').count()
    # Carl's client opens what the browser made.
    entry = KeyEntry.objects.get(delivery=delivery, key_ref=carl.key_id).data
    delivery_key = sxf.unwrap_p256(carl.private.ecdh, entry, delivery.id)
    assert keys.verify_delivery(
        sender_key.private.ecdsa_public,
        bytes(delivery.signature),
        delivery.id,
        3,
        delivery_key,
        bytes(delivery.manifest),
    )
    assert errors == []


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_level_4_from_the_browser_keeps_message_and_names_in_the_manifest(
    page, live_server, settings, tmp_path, sender, password
):
    use_live_site(settings, live_server, tmp_path)
    carl = make_key(guest("carl@example.org"))
    pins = {"carl@example.org": fingerprint_hex("carl@example.org", carl)}
    sender_key = make_key(sender, secupass=SECUPASS, pins=pins)
    path = tmp_path / f"{NAME_MARKER}.txt"
    plaintext = CONTENT_MARKER * 5000  # more than one 64 KiB chunk
    path.write_bytes(plaintext)

    log_in(page, sender.email, password)
    compose(page, to="carl@example.org", level=4, message=f"Secret: {MESSAGE_MARKER}", path=path)
    page.get_by_role("button", name="Encrypt and send").click()
    page.wait_for_url(re.compile(r"/sent/[0-9a-f-]{36}/$"))

    delivery = Delivery.objects.get()
    assert delivery.level == 4 and delivery.message == ""
    (stored,) = delivery.files.all()
    # Neither the name nor the type reached the server (the type is the neutral default).
    assert stored.name == "" and stored.content_type == "application/octet-stream"
    for table, value in stored_texts():
        for marker in (MESSAGE_MARKER.encode(), NAME_MARKER.encode(), CONTENT_MARKER):
            assert marker not in value, f"{marker!r} found in {table}"
    entry = KeyEntry.objects.get(delivery=delivery, key_ref=carl.key_id).data
    delivery_key = sxf.unwrap_p256(carl.private.ecdh, entry, delivery.id)
    manifest = keys.open_manifest(
        bytes(delivery.manifest), delivery_key, delivery.id, 4, {stored.id: stored.size}
    )
    assert manifest["message"] == f"Secret: {MESSAGE_MARKER}"
    (item,) = manifest["files"]
    assert item["name"] == path.name and item["size"] == len(plaintext)
    with open(settings.MEDIA_ROOT / stored.storage_name, "rb") as blob:
        opened = b"".join(
            sxf.decrypt_stream(
                delivery_key,
                blob,
                delivery_id=delivery.id,
                file_id=stored.id,
                blob_length=stored.blob_size,
            )
        )
    assert opened == plaintext
    assert item["digest"] == blob_digest(settings.MEDIA_ROOT / stored.storage_name)
    assert sender_key.key_id in entry_refs(delivery)


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_a_sender_without_a_key_is_led_to_make_one_and_keeps_what_they_typed(
    page, live_server, settings, tmp_path, sender, password
):
    use_live_site(settings, live_server, tmp_path)
    log_in(page, sender.email, password)
    page.goto("/send/")
    page.wait_for_selector("form#compose[data-ready=true]")
    page.get_by_label("Recipients").fill("rita@example.org")
    page.get_by_label("Subject").fill("Board papers")
    page.get_by_role("textbox", name="Message").fill("Two pages.")
    page.check("#id_level_3")

    link = page.get_by_role("link", name="Create your SecuPass key")
    link.wait_for()
    assert not page.get_by_label("Your SecuPass").is_visible()
    link.click()
    page.wait_for_url("**/keys/create/?next=/send/")

    make_key(sender)  # what the key page does (tested with the key pages)
    page.goto("/send/")
    page.wait_for_selector("form#compose[data-ready=true]")
    assert page.get_by_label("Recipients").input_value() == "rita@example.org"
    assert page.get_by_label("Subject").input_value() == "Board papers"
    assert page.get_by_role("textbox", name="Message").input_value() == "Two pages."
    assert page.is_checked("#id_level_3")
    page.get_by_label("Your SecuPass").wait_for()
    assert not page.get_by_role("link", name="Create your SecuPass key").is_visible()
