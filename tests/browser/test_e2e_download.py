"""The recipient at levels 3 and 4 in Chromium: unlock with the SecuPass, check the sender,
decrypt in the browser and save to disk: through the service worker, the File System Access
API or, for small files, a Blob. What arrives is byte for byte what was sent; a wrong
SecuPass, too many attempts and a tampered blob are each told plainly."""

import hashlib
import re
import time

import pytest

from deliveries.models import AuditEvent, Download
from secupass import sxf
from secupass.models import UserKey
from tests.deliveries.e2e_receive_support import add_entry, make_e2e_delivery
from tests.deliveries.e2e_support import (
    PASSWORD,
    guest,
    log_in,
    make_key,
    open_keyring,
    use_live_site,
)

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

RITA = "rita@example.org"
SECUPASS = "Leuchtturm am Nordkap 1887"
NO_PICKER = "delete window.showSaveFilePicker;"
NO_WORKER = "delete Navigator.prototype.serviceWorker;"
# A File System Access picker that saves into the origin-private file system, so a test can
# read back what the page wrote (a real picker needs a person).
OPFS_PICKER = """
window.showSaveFilePicker = async ({ suggestedName }) => {
  const root = await navigator.storage.getDirectory();
  window.__picked = suggestedName;
  return root.getFileHandle(suggestedName, { create: true });
};
"""
OPFS_SHA256 = """async (name) => {
  const root = await navigator.storage.getDirectory();
  try {
    const file = await (await root.getFileHandle(name)).getFile();
    const hash = await crypto.subtle.digest("SHA-256", await file.arrayBuffer());
    return Array.from(new Uint8Array(hash), (b) => b.toString(16).padStart(2, "0")).join("");
  } catch (error) {
    return error.name;
  }
}"""


@pytest.fixture(autouse=True)
def _site(settings, live_server, tmp_path):
    use_live_site(settings, live_server, tmp_path)


@pytest.fixture
def requests_sent(page):
    """Every request the page sends, with its body."""
    sent = []
    page.on("request", lambda r: sent.append((r.method, r.url, r.post_data_buffer or b"")))
    return sent


@pytest.fixture
def page_errors(page):
    errors = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    return errors


@pytest.fixture
def sender_key(sender):
    return make_key(sender)


@pytest.fixture
def rita():
    return make_key(guest(RITA), secupass=SECUPASS)


def open_delivery(page, made, live_server):
    log_in(page, RITA, PASSWORD)
    page.goto(f"{live_server.url}/d/{made.tokens[RITA]}")
    page.wait_for_selector("#unlock:not([disabled])")


def unlock(page, secupass=SECUPASS):
    page.get_by_label("Your SecuPass").fill(secupass)
    page.get_by_role("button", name="Unlock").click()


def row(page, made, name):
    return page.locator(f'tr[data-file-id="{made.files[name].id}"]')


def save(page, made, name):
    """Click Save and return the finished download."""
    with page.expect_download() as info:
        row(page, made, name).get_by_role("button", name="Save").click()
    download = info.value
    download.failure()  # waits until the file is complete or cancelled
    # The page has finished with it: recorded by the server, or stopped with an error.
    row(page, made, name).locator(".e2e-status.ok, .e2e-status.failed").wait_for()
    return download


def sha256_path(path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def wait_status(page, made, name, text):
    status = row(page, made, name).locator(".e2e-status")
    status.filter(has_text=text).wait_for()
    return status.inner_text()


def downloaded_events(made):
    return AuditEvent.objects.filter(
        kind=AuditEvent.Kind.DOWNLOADED, delivery=made.delivery
    ).count()


def wait_until(condition, seconds=10):
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


def fingerprint_hex(keyed):
    return sxf.fingerprint(
        keyed.user.email, keyed.private.ecdh_public, keyed.private.ecdsa_public
    ).hex()


def test_level_3_first_receipt_pins_the_sender_and_saves_through_the_service_worker(
    page, live_server, sender_key, rita, requests_sent, page_errors
):
    files = {"Messdaten Q3.bin": 3_000_000, "leer.txt": b"", "Überblick Notizen.txt": b"ok\n" * 9}
    made = make_e2e_delivery(sender_key, readers=[rita], files=files)
    page.add_init_script(NO_PICKER)

    open_delivery(page, made, live_server)
    unlock(page)
    # First delivery from this sender, in a browser that never saw Rita's keyring: ask.
    page.wait_for_selector("#pin-ask:not([hidden])")
    shown = sxf.format_fingerprint(bytes.fromhex(fingerprint_hex(sender_key)))
    assert page.locator("#sender-fingerprint").inner_text() == shown
    assert not page.get_by_role("button", name="Save").count()
    page.get_by_role("button", name="Continue and remember this key").click()
    page.get_by_role("button", name="Save").first.wait_for()

    assert "matches the sender's signature" in page.locator("#message-check").inner_text()
    for name in files:
        assert row(page, made, name).locator(".receive-name").inner_text() == name
        download = save(page, made, name)
        assert download.suggested_filename == name
        assert sha256_path(download.path()) == made.sha256[name]
        wait_status(page, made, name, "Saved and verified")

    version, pins = open_keyring(rita.user, SECUPASS)
    assert version == 2 and pins == {sender_key.user.email: fingerprint_hex(sender_key)}
    stored = page.evaluate("localStorage.getItem('secushare.keyring-versions')")
    assert stored == f'{{"{rita.key_id}":2}}'
    wait_until(lambda: downloaded_events(made) == len(files))
    assert all(d.count == 1 for d in Download.objects.all())
    secret = SECUPASS.encode()
    assert not any(secret in body or secret.decode() in url for _m, url, body in requests_sent)
    assert page_errors == []


def test_level_4_shows_message_and_names_only_after_unlocking(
    page, live_server, sender_key, page_errors
):
    # Rita confirmed this sender before: no question, and the small file goes through a Blob.
    rita = make_key(
        guest(RITA), secupass=SECUPASS, pins={sender_key.user.email: fingerprint_hex(sender_key)}
    )
    made = make_e2e_delivery(
        sender_key,
        level=4,
        readers=[rita],
        message="Treffpunkt: Nordtor, 9 Uhr.\nBitte pünktlich.",
        files={"Lageplan.txt": b"Nordtor\n" * 5000},
    )
    page.add_init_script(NO_PICKER + NO_WORKER)

    open_delivery(page, made, live_server)
    before = page.content()
    assert "Treffpunkt" not in before and "Lageplan" not in before
    assert page.locator("#e2e-message").is_hidden()
    unlock(page)
    page.get_by_role("button", name="Save").wait_for()

    assert page.locator("#e2e-message-text").inner_text() == (
        "Treffpunkt: Nordtor, 9 Uhr.\nBitte pünktlich."
    )
    assert page.locator("#sender-check").is_hidden()
    download = save(page, made, "Lageplan.txt")
    assert download.suggested_filename == "Lageplan.txt"
    assert sha256_path(download.path()) == made.sha256["Lageplan.txt"]
    wait_status(page, made, "Lageplan.txt", "Saved and verified")
    assert "in memory" in row(page, made, "Lageplan.txt").locator(".e2e-note").inner_text()
    assert page_errors == []


def test_a_wrong_secupass_is_told_and_attempts_are_throttled(page, live_server, sender_key, rita):
    made = make_e2e_delivery(sender_key, readers=[rita])
    open_delivery(page, made, live_server)

    unlock(page, "not my SecuPass at all")
    error = page.locator("#unlock-error")
    error.filter(has_text="Wrong SecuPass").wait_for()
    assert page.get_by_label("Your SecuPass").get_attribute("aria-invalid") == "true"

    for _attempt in range(12):
        unlock(page, "still the wrong one")
        error.filter(has_text=re.compile("Wrong SecuPass|Too many unlock attempts")).wait_for()
        if "Too many" in error.inner_text():
            break
        page.wait_for_selector("#unlock:not([disabled])")
    assert "Too many unlock attempts" in error.inner_text()
    assert not page.get_by_role("button", name="Save").count()


def test_a_tampered_blob_stops_with_an_error_and_leaves_no_file(
    page, live_server, sender_key, settings, page_errors
):
    rita = make_key(
        guest(RITA), secupass=SECUPASS, pins={sender_key.user.email: fingerprint_hex(sender_key)}
    )
    made = make_e2e_delivery(
        sender_key, readers=[rita], files={"a.bin": 2_000_000, "b.bin": 1_500_000}
    )
    for name in ("a.bin", "b.bin"):
        path = settings.MEDIA_ROOT / made.files[name].storage_name
        data = bytearray(path.read_bytes())
        data[sxf.chunk_offset(sxf.Header.parse(bytes(data)), 20) + 7] ^= 1
        path.write_bytes(bytes(data))
    page.add_init_script(OPFS_PICKER)

    open_delivery(page, made, live_server)
    unlock(page)
    page.get_by_role("button", name="Save").first.wait_for()

    # File System Access: the writable is aborted, the picked file taken away again.
    row(page, made, "a.bin").get_by_role("button", name="Save").click()
    text = wait_status(page, made, "a.bin", "changed or damaged")
    assert "chunk 20 failed authentication" in text
    assert page.evaluate(OPFS_SHA256, "a.bin") == "NotFoundError"

    # The service worker: the browser's download fails; no completed file.
    page.evaluate(NO_PICKER)
    download = save(page, made, "b.bin")
    assert download.failure() is not None
    wait_status(page, made, "b.bin", "changed or damaged")
    assert downloaded_events(made) == 0
    assert page_errors == []


def break_off_the_first_fetch(page, cut: int) -> list:
    """The first fetch of a blob ends after ``cut`` bytes; later ones pass. Returns the Range
    header of every fetch (None for a whole one), as they come."""
    fetched = []

    def route_blob(route):
        fetched.append(route.request.headers.get("range"))
        if len(fetched) > 1:
            route.continue_()
            return
        response = route.fetch()
        route.fulfill(response=response, body=response.body()[:cut])

    page.route(re.compile(r"/blobs/"), route_blob)
    return fetched


def test_the_file_system_access_path_writes_the_file_and_a_broken_fetch_resumes(
    page, live_server, sender_key, page_errors
):
    rita = make_key(
        guest(RITA), secupass=SECUPASS, pins={sender_key.user.email: fingerprint_hex(sender_key)}
    )
    made = make_e2e_delivery(sender_key, readers=[rita], files={"gross.bin": 4_000_000})
    page.add_init_script(OPFS_PICKER)
    cut = 2_500_000
    fetched = break_off_the_first_fetch(page, cut)
    open_delivery(page, made, live_server)
    unlock(page)
    row(page, made, "gross.bin").get_by_role("button", name="Save").click()
    wait_status(page, made, "gross.bin", "Saved and verified")

    assert page.evaluate(OPFS_SHA256, "gross.bin") == made.sha256["gross.bin"]
    assert page.evaluate("window.__picked") == "gross.bin"
    # The second fetch continued from a whole chunk that the first did not deliver completely.
    assert len(fetched) == 2 and fetched[0] is None
    offset = int(re.fullmatch(r"bytes=(\d+)-", fetched[1]).group(1))
    stored_chunk = (1 << 16) + sxf.TAG_LEN
    assert 0 < offset <= cut and (offset - sxf.HEADER_LEN) % stored_chunk == 0
    assert Download.objects.get().count == 1  # the continuation was not counted again
    assert page_errors == []


# Fetch bodies read as pieces, as in browsers without byte streams ("bring your own buffer").
NO_BYOB = """
const getReader = ReadableStream.prototype.getReader;
ReadableStream.prototype.getReader = function (options) {
  if (options?.mode === "byob") throw new TypeError("no byte streams here");
  return getReader.call(this, options);
};
"""
# Counts the writes the page makes into a file picked with the File System Access API.
COUNT_WRITES = """
window.__writes = 0;
const write = FileSystemWritableFileStream.prototype.write;
FileSystemWritableFileStream.prototype.write = function (...args) {
  window.__writes += 1;
  return write.apply(this, args);
};
"""
LARGE = 20_000_000  # plaintext written in several writes, not one


@pytest.mark.parametrize(
    "way", ["file system access", "file system access without byte streams", "service worker"]
)
def test_a_large_file_arrives_whole_in_order_after_a_broken_fetch(
    page, live_server, sender_key, page_errors, way
):
    rita = make_key(
        guest(RITA), secupass=SECUPASS, pins={sender_key.user.email: fingerprint_hex(sender_key)}
    )
    made = make_e2e_delivery(sender_key, readers=[rita], files={"gross.bin": LARGE})
    page.add_init_script(NO_PICKER if way == "service worker" else OPFS_PICKER + COUNT_WRITES)
    if "without byte streams" in way:
        page.add_init_script(NO_BYOB)
    fetched = break_off_the_first_fetch(page, 13_000_000)
    open_delivery(page, made, live_server)
    unlock(page)
    if way == "service worker":
        download = save(page, made, "gross.bin")
        assert sha256_path(download.path()) == made.sha256["gross.bin"]
    else:
        row(page, made, "gross.bin").get_by_role("button", name="Save").click()
        wait_status(page, made, "gross.bin", "Saved and verified")
        assert page.evaluate(OPFS_SHA256, "gross.bin") == made.sha256["gross.bin"]
        assert page.evaluate("window.__writes") >= 2
    wait_status(page, made, "gross.bin", "Saved and verified")
    # The second fetch went on from where the first stopped, not from the start.
    assert len(fetched) == 2 and fetched[0] is None
    offset = int(re.fullmatch(r"bytes=(\d+)-", fetched[1]).group(1))
    assert 8_000_000 < offset <= 13_000_000
    assert Download.objects.get().count == 1
    assert page_errors == []


def test_a_chunk_tampered_after_several_writes_still_leaves_no_file(
    page, live_server, sender_key, settings, page_errors
):
    rita = make_key(
        guest(RITA), secupass=SECUPASS, pins={sender_key.user.email: fingerprint_hex(sender_key)}
    )
    made = make_e2e_delivery(sender_key, readers=[rita], files={"gross.bin": LARGE})
    path = settings.MEDIA_ROOT / made.files["gross.bin"].storage_name
    data = bytearray(path.read_bytes())
    data[sxf.chunk_offset(sxf.Header.parse(bytes(data)), 290) + 7] ^= 1
    path.write_bytes(bytes(data))
    page.add_init_script(OPFS_PICKER + COUNT_WRITES)

    open_delivery(page, made, live_server)
    unlock(page)
    row(page, made, "gross.bin").get_by_role("button", name="Save").click()
    text = wait_status(page, made, "gross.bin", "changed or damaged")
    assert "chunk 290 failed authentication" in text
    assert page.evaluate("window.__writes") >= 2  # verified chunks before it were written
    assert page.evaluate(OPFS_SHA256, "gross.bin") == "NotFoundError"
    assert downloaded_events(made) == 0
    assert page_errors == []


def _pin_another_key(made, sender_key):
    other = make_key(guest("someone@example.org"))
    return {sender_key.user.email: fingerprint_hex(other)}, None


def _older_keyring(made, sender_key):
    return {sender_key.user.email: fingerprint_hex(sender_key)}, 5


def _signature_swapped(made, sender_key):
    signature = bytearray(made.delivery.signature)
    signature[10] ^= 1
    made.delivery.signature = bytes(signature)
    made.delivery.save(update_fields=["signature"])
    return {sender_key.user.email: fingerprint_hex(sender_key)}, None


def _message_changed(made, sender_key):
    made.delivery.message = "Bitte überweisen Sie an IBAN DE00 0000."
    made.delivery.save(update_fields=["message"])
    return {sender_key.user.email: fingerprint_hex(sender_key)}, None


@pytest.mark.parametrize(
    ("tamper", "expected"),
    [
        (_pin_another_key, "not signed with the key you confirmed for sender@example.org"),
        (_older_keyring, "older version of your keyring"),
        (_signature_swapped, "signature does not match this delivery"),
        (_message_changed, "message shown on this page is not the one the sender signed"),
    ],
)
def test_what_the_server_could_change_stops_the_page_loudly(
    page, live_server, sender_key, tamper, expected, page_errors
):
    made = make_e2e_delivery(sender_key)
    pins, seen_version = tamper(made, sender_key)
    rita = make_key(guest(RITA), secupass=SECUPASS, pins=pins)
    add_entry(made, rita)
    if seen_version:
        page.add_init_script(
            "localStorage.setItem('secushare.keyring-versions', "
            f"JSON.stringify({{'{rita.key_id}': {seen_version}}}))"
        )

    open_delivery(page, made, live_server)
    unlock(page)

    page.wait_for_selector("#alarm:not([hidden])")
    assert expected in page.locator("#alarm-text").inner_text()
    assert page.locator("#unlock-card").is_hidden()
    assert not page.get_by_role("button", name="Save").count()
    assert open_keyring(rita.user, SECUPASS)[0] == 1  # nothing was pinned
    assert page_errors == []


def test_waiting_for_approval_shows_the_fingerprint_the_browser_computed(
    page, live_server, sender_key, page_errors
):
    made = make_e2e_delivery(sender_key)
    rita = make_key(guest(RITA))  # no entry for her key yet
    expected = sxf.format_fingerprint(bytes.fromhex(fingerprint_hex(rita)))

    log_in(page, RITA, PASSWORD)
    page.goto(f"{live_server.url}/d/{made.tokens[RITA]}")
    assert page.get_by_role("heading", name="Waiting for the sender's approval").is_visible()
    assert page.locator("#own-fingerprint").inner_text() == expected
    assert page.locator("#own-fingerprint-error").is_hidden()

    # A server that shows another fingerprint than the keys' is contradicted by the browser.
    UserKey.objects.filter(pk=rita.key.pk).update(fingerprint="0" * 64)
    page.reload()
    page.locator("#own-fingerprint-error").wait_for()
    assert page.locator("#own-fingerprint").inner_text() == expected
    assert page_errors == []


def test_after_the_senders_reset_the_recipient_can_confirm_the_new_key_explicitly(
    page, live_server, sender_key, page_errors
):
    old = make_key(guest("old-sender-key@example.org"))
    made = make_e2e_delivery(sender_key, files={"a.txt": b"alpha\n" * 100})
    rita = make_key(
        guest(RITA), secupass=SECUPASS, pins={sender_key.user.email: fingerprint_hex(old)}
    )
    add_entry(made, rita)
    page.add_init_script(NO_PICKER)

    open_delivery(page, made, live_server)
    unlock(page)
    page.wait_for_selector("#alarm:not([hidden])")
    assert "not signed with the key you confirmed" in page.locator("#alarm-text").inner_text()
    page.get_by_role("button", name="The sender confirmed this new key: use it").click()

    download = save(page, made, "a.txt")
    assert sha256_path(download.path()) == made.sha256["a.txt"]
    assert page.locator("#alarm").is_hidden()
    assert "now remembered instead" in page.locator("#sender-check-text").inner_text()
    version, pins = open_keyring(rita.user, SECUPASS)
    assert version == 2 and pins == {sender_key.user.email: fingerprint_hex(sender_key)}
    assert page_errors == []
