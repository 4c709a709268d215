"""Issue 4's acceptance test, in Chromium: a sender with a SecuPass key sends at level 3 (and
4) to an address that has never used SecuShare; the recipient registers a guest account and
creates a key; the sender sees the same fingerprint the recipient sees and approves it; the
recipient unlocks and downloads, and what arrives is byte for byte what was sent.

Every request both browsers send is recorded: none carries a SecuPass or an unencrypted
private key. Afterwards every text and binary column of every table and every stored blob is
searched for the level 4 message, the file names and the files' plaintext: none is there."""

import base64
import hashlib
import json
import os
import re
import time

import pytest
from django.apps import apps
from django.conf import settings as django_settings
from django.core import mail

from deliveries.models import Delivery, KeyEntry

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

UUID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
FPR = re.compile(r"(?:[0-9a-f]{4} ){7}[0-9a-f]{4}")
SENDER_SECUPASS = "Sam sendet sicher über SecuShare 7"
RECIPIENT_SECUPASS = "Nina öffnet nur mit diesem Satz 4"
GUEST_PASSWORD = "lantern quarry velvet 42"
NINA = "nina@example.net"
NO_PICKER = "delete window.showSaveFilePicker;"  # save through the service worker
NAME_MARKER = "NAMEMARK-4c1d9e"
CONTENT_MARKER = b"PLAINTEXT-MARKER-93be7a0f"
MESSAGE_MARKER = "MESSAGEMARK-e2b67d"


@pytest.fixture(autouse=True)
def _site(settings, live_server, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "blobs"
    settings.SITE_URL = live_server.url
    settings.CELERY_TASK_ALWAYS_EAGER = True


class Recorder:
    """Every request a browser context sends, and every script error of its pages."""

    def __init__(self, context):
        self.requests = []
        self.errors = []
        context.on("request", self._request)
        context.on("page", lambda page: page.on("pageerror", lambda e: self.errors.append(e)))

    def _request(self, request):
        headers = request.headers
        self.requests.append(
            (request.method, request.url, headers.get("content-type", ""), request.post_data_buffer)
        )


@pytest.fixture
def sam(browser, live_server):
    context = browser.new_context(base_url=live_server.url, locale="en-US")
    recorder = Recorder(context)
    page = context.new_page()
    page.set_default_timeout(30_000)
    page.recorder = recorder
    yield page
    context.close()


@pytest.fixture
def nina(browser, live_server):
    context = browser.new_context(base_url=live_server.url, locale="en-US", accept_downloads=True)
    context.add_init_script(NO_PICKER)
    recorder = Recorder(context)
    page = context.new_page()
    page.set_default_timeout(30_000)
    page.recorder = recorder
    yield page
    context.close()


def make_files(folder, level):
    """name -> (path, SHA-256): one file over several chunks and a small text; every file
    carries the plaintext marker, at level 4 the names carry the name marker."""
    folder.mkdir()
    prefix = f"{NAME_MARKER} " if level == 4 else ""
    big = folder / f"{prefix}Messreihe.bin"
    big.write_bytes(os.urandom(400_000) + CONTENT_MARKER + os.urandom(1_100_000))
    small = folder / f"{prefix}Überblick, Notizen.txt"
    small.write_bytes(b"Die Zahlen f\xc3\xbcr Q3.\n" * 50 + CONTENT_MARKER + b"\n")
    return {p.name: (p, hashlib.sha256(p.read_bytes()).hexdigest()) for p in (big, small)}


def log_in(page, email, password):
    page.goto("/accounts/login/")
    page.get_by_label("E-mail address").fill(email)
    page.get_by_label("Password", exact=True).fill(password)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(lambda url: "/accounts/login/" not in url)


def create_key(page, secupass, login_password, *, url=None):
    """Fill in the key page (at ``url``, or the current page); returns the fingerprint shown."""
    if url:
        page.goto(url)
    page.get_by_label("SecuPass", exact=True).fill(secupass)
    page.get_by_label("SecuPass again").fill(secupass)
    page.get_by_label("Your login password").fill(login_password)
    page.get_by_role("button", name="Create SecuPass key").click()
    shown = page.locator("#new-fingerprint").filter(has_text=FPR)
    shown.wait_for()
    return shown.inner_text().strip()


def mailed(address, subject_part=""):
    found = [m for m in mail.outbox if address in m.to and subject_part in m.subject]
    assert found, f"no mail to {address} about {subject_part!r}"
    return found[-1]


def compose(page, *, level, subject, message, paths):
    page.goto("/send/")
    page.wait_for_selector("form#compose[data-ready=true]")
    page.get_by_label("Recipients").fill(NINA)
    page.get_by_label("Subject").fill(subject)
    page.get_by_role("textbox", name="Message").fill(message)
    page.check(f"#id_level_{level}")
    page.locator("#id_secupass").fill(SENDER_SECUPASS)
    page.set_input_files("#id_files", [str(p) for p in paths])
    page.get_by_role("button", name="Encrypt and send").click()
    page.wait_for_url(re.compile(rf"/sent/{UUID}/$"), timeout=90_000)
    return Delivery.objects.get(pk=re.search(UUID, page.url).group(0))


def register_and_create_key(page, link, subject):
    """The recipient's first visit: the address, a guest account, the mailed code, a key."""
    page.goto(link)
    page.get_by_label("The e-mail address this message was sent to").fill(NINA)
    page.get_by_role("button", name="Continue").click()
    page.get_by_label("Your name").fill("Nina Neu")
    page.get_by_label("Password", exact=True).fill(GUEST_PASSWORD)
    page.get_by_label("Password again").fill(GUEST_PASSWORD)
    page.get_by_role("button", name="Create account").click()
    code = re.search(r"^\s+(\d{6})$", mailed(NINA).body, re.M).group(1)
    page.get_by_label("Code from the mail").fill(code)
    page.get_by_role("button", name="Confirm").click()
    page.get_by_role("heading", name=subject).wait_for()
    page.get_by_role("link", name="Create your SecuPass key").click()
    fingerprint = create_key(page, RECIPIENT_SECUPASS, GUEST_PASSWORD)
    page.get_by_role("link", name="Continue").click()
    waiting = page.locator("#own-fingerprint")
    waiting.wait_for()
    assert waiting.inner_text().strip() == fingerprint
    return fingerprint


def approve(page, fingerprint):
    """The approvals page: the fingerprint shown must be the recipient's; approve it."""
    page.goto("/approvals/")
    card = page.locator(f'article.pending-key[data-email="{NINA}"]')
    shown = card.locator("[data-role=fingerprint]").filter(has_text=FPR)
    shown.wait_for()
    assert shown.inner_text().strip() == fingerprint
    card.locator("[data-role=confirm]").check()
    card.locator("[data-role=approve]").click()
    page.locator("#secupass").fill(SENDER_SECUPASS)
    page.get_by_role("button", name="Unlock and approve").click()
    page.locator(f'article.pending-key[data-email="{NINA}"][data-approved=true]').wait_for()


def unlock_and_save(page, files):
    page.get_by_label("Your SecuPass").fill(RECIPIENT_SECUPASS)
    page.get_by_role("button", name="Unlock").click()
    save = page.get_by_role("button", name="Save")
    save.or_(page.locator("#pin-ask:not([hidden])")).first.wait_for()
    if page.locator("#pin-ask").is_visible():  # the sender's key, shown with its fingerprint
        page.get_by_role("button", name="Continue and remember this key").click()
    save.first.wait_for()
    for name, (_path, digest) in files.items():
        row = page.locator("tr", has_text=name)
        with page.expect_download() as info:
            row.get_by_role("button", name="Save").click()
        download = info.value
        assert download.suggested_filename == name
        assert sha256_path(download.path()) == digest
        row.get_by_text("Saved and verified").wait_for()


def sha256_path(path):
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


# -- what must never leave a browser, or be stored ------------------------------------------


def encodings(secret: bytes) -> list[bytes]:
    """The secret as it could travel: raw, JSON-escaped, hex, and the middle of its base64 in
    every alignment (so it is found inside a longer encoded value too)."""
    text = secret.decode()
    found = {secret, json.dumps(text).encode()[1:-1], secret.hex().encode()}
    for shift in range(3):
        for encode in (base64.b64encode, base64.urlsafe_b64encode):
            found.add(encode(b"\0" * shift + secret + b"\0\0\0")[4:-8])
    return sorted(found)


def assert_no_secrets_sent(*pages):
    secrets = [s.encode() for s in (SENDER_SECUPASS, RECIPIENT_SECUPASS)]
    sent = [r for page in pages for r in page.recorder.requests]
    assert any(url.endswith("/register") for _m, url, _t, _b in sent)  # the recording works
    for method, url, content_type, body in sent:
        body = body or b""
        for secret in secrets:
            for form in encodings(secret):
                assert form not in body, f"{method} {url} sent a SecuPass"
                assert form.decode("latin-1") not in url
        if "offset+octet-stream" not in content_type:  # ciphertext chunks are random bytes
            assert b'"d":' not in body, f"{method} {url} sent an unencrypted private key"


def stored_values():
    """(table, column, bytes) of every value in every table."""
    for model in apps.get_models():
        fields = [f for f in model._meta.concrete_fields]
        for row in model._base_manager.values_list(*(f.attname for f in fields)):
            for field, value in zip(fields, row, strict=True):
                if value is None:
                    continue
                if isinstance(value, memoryview | bytes | bytearray):
                    data = bytes(value)
                elif isinstance(value, dict | list):
                    data = json.dumps(value, ensure_ascii=False).encode()
                else:
                    data = str(value).encode()
                yield model._meta.db_table, field.attname, data


def assert_nowhere_stored(*markers: bytes):
    forms = [(m, form) for m in markers for form in encodings(m)]
    checked = 0
    for table, column, data in stored_values():
        checked += 1
        for marker, form in forms:
            assert form not in data, f"{marker!r} is stored in {table}.{column}"
    assert checked
    blobs = [p for p in django_settings.MEDIA_ROOT.rglob("*") if p.is_file()]
    assert blobs
    for path in blobs:
        data = path.read_bytes()
        for marker, form in forms:
            assert form not in data, f"{marker!r} is in the stored blob {path.name}"
        for marker in markers:
            assert marker.decode() not in path.name


# -- the flows --------------------------------------------------------------------------------


@pytest.mark.parametrize("level", [3, 4])
def test_first_time_recipient(level, sam, nina, live_server, sender, password, tmp_path):
    files = make_files(tmp_path / "upload", level)
    subject = f"Messreihe level {level}"
    message = f"{MESSAGE_MARKER}: die Werte von heute." if level == 4 else "Die Werte."
    log_in(sam, sender.email, password)
    create_key(sam, SENDER_SECUPASS, password, url="/keys/create/?next=/send/")

    started = time.monotonic()
    delivery = compose(
        sam, level=level, subject=subject, message=message, paths=[p for p, _d in files.values()]
    )
    assert (delivery.level, delivery.status) == (level, Delivery.Status.SENT)
    assert KeyEntry.objects.filter(delivery=delivery).count() == 1  # only the sender's own
    sam.locator("[data-waiting]").first.wait_for()  # "waiting for key" on the sent page
    new_delivery_mail = mailed(NINA, subject)
    link = re.search(rf"{re.escape(live_server.url)}/d/\S+", new_delivery_mail.body).group(0)
    if level == 4:
        assert delivery.message == ""
        assert set(delivery.files.values_list("name", flat=True)) == {""}
        assert MESSAGE_MARKER not in new_delivery_mail.body + new_delivery_mail.subject
        assert NAME_MARKER not in new_delivery_mail.body

    fingerprint = register_and_create_key(nina, link, subject)
    assert mailed(sender.email, "Key approval needed")
    approve(sam, fingerprint)
    assert KeyEntry.objects.filter(delivery=delivery).count() == 2

    nina.goto(link)
    nina.get_by_role("heading", name=subject).wait_for()
    if level == 4:
        content = nina.content()
        assert MESSAGE_MARKER not in content and NAME_MARKER not in content
        assert nina.locator("#e2e-message").is_hidden()
    unlock_and_save(nina, files)
    elapsed = time.monotonic() - started
    if level == 4:
        assert nina.locator("#e2e-message-text").inner_text() == message
    print(f"\nfirst-time flow at level {level}: {elapsed:.1f} s from compose to verified download")

    assert sam.recorder.errors == [] and nina.recorder.errors == []
    assert_no_secrets_sent(sam, nina)
    with pytest.raises(AssertionError, match="is stored in"):
        assert_nowhere_stored(subject.encode())  # the search finds what is stored
    markers = [CONTENT_MARKER]
    if level == 4:
        markers += [MESSAGE_MARKER.encode(), NAME_MARKER.encode()]
    assert_nowhere_stored(*markers)
