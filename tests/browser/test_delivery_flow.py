"""Issue 3's acceptance test, in Chromium: a sender composes a delivery, the browser encrypts
and uploads it with tus, the recipient opens the mailed link, proves who they are and
downloads; what comes back is byte for byte what went in."""

import hashlib
import os
import re
import zipfile

import pytest
from django.core import mail

from deliveries.models import Delivery, DeliveryFile, KeyEntry
from deliveries.storage import blob_store
from secupass import masterkeys, sxf

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

BIG = 50 * 1000 * 1000
UUID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
GUEST_PASSWORD = "lantern quarry velvet 42"


@pytest.fixture(autouse=True)
def _site(settings, live_server, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "blobs"
    settings.SITE_URL = live_server.url
    settings.CELERY_TASK_ALWAYS_EAGER = True


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """name -> (path, SHA-256): 50 MB of random bytes and a small text with a hostile-ish name."""
    folder = tmp_path_factory.mktemp("upload")
    big = folder / "measurements.bin"
    digest = hashlib.sha256()
    with big.open("wb") as out:
        left = BIG
        while left:
            block = os.urandom(min(1 << 20, left))
            digest.update(block)
            out.write(block)
            left -= len(block)
    small = folder / "Überblick Q3 (Entwurf).txt"
    small.write_text("Die Zahlen für das dritte Quartal.\n" * 40, encoding="utf-8")
    return {
        big.name: (big, digest.hexdigest()),
        small.name: (small, hashlib.sha256(small.read_bytes()).hexdigest()),
    }


@pytest.fixture
def page_errors(page):
    errors = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    return errors


@pytest.fixture
def recipient_page(browser, live_server):
    """The recipient's own browser: a context that shares nothing with the sender's."""
    context = browser.new_context(base_url=live_server.url, locale="en-US", accept_downloads=True)
    page = context.new_page()
    page.set_default_timeout(30_000)
    yield page
    context.close()


def sha256_file(path):
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def log_in(page, email, password):
    page.get_by_label("E-mail address").fill(email)
    page.get_by_label("Password", exact=True).fill(password)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(lambda url: "/accounts/login/" not in url)


def compose_and_send(page, *, to, subject, level, paths, send=None):
    page.goto("/send/")
    page.wait_for_selector("form#compose[data-ready=true]")
    page.get_by_label("Recipients").fill(to)
    page.get_by_label("Subject").fill(subject)
    page.get_by_role("textbox", name="Message").fill("Please have a look at the figures.")
    page.check(f"#id_level_{level}")
    page.set_input_files("#id_files", [str(p) for p in paths])
    for path in paths:
        assert page.locator(".file-item", has_text=path.name).is_visible()
    if send:
        send(page)
    else:
        page.get_by_role("button", name="Encrypt and send").click()
    page.wait_for_url(re.compile(rf"/sent/{UUID}/$"), timeout=90_000)
    return Delivery.objects.get(pk=re.search(UUID, page.url).group(0))


def mailed_text(address, subject_part=""):
    found = [m for m in mail.outbox if address in m.to and subject_part in m.subject]
    assert found, f"no mail to {address}"
    return found[-1].body


def delivery_link(live_server, address):
    return re.search(rf"{re.escape(live_server.url)}/d/\S+", mailed_text(address)).group(0)


def confirm_address(page, link, address):
    page.goto(link)
    page.get_by_label("The e-mail address this message was sent to").fill(address.upper())
    page.get_by_role("button", name="Continue").click()


def download(page, link):
    with page.expect_download() as info:
        link.click()
    result = info.value
    assert result.failure() is None
    return result


def download_everything(page, files):
    """Each file on its own and all as one ZIP; SHA-256 of each must equal the original."""
    for name, (_path, digest) in files.items():
        row = page.locator("tr", has_text=name)
        got = download(page, row.get_by_role("link", name="Download"))
        assert got.suggested_filename == name
        assert sha256_file(got.path()) == digest
    got = download(page, page.get_by_role("link", name="Download all as ZIP"))
    assert got.suggested_filename.endswith(".zip")
    with zipfile.ZipFile(got.path()) as archive:
        assert sorted(archive.namelist()) == sorted(files)
        for name, (_path, digest) in files.items():
            digest_in_zip = hashlib.sha256()
            with archive.open(name) as member:
                while block := member.read(1 << 20):
                    digest_in_zip.update(block)
            assert digest_in_zip.hexdigest() == digest


def stored_plaintext_digests(delivery):
    """SHA-256 of each file as the server decrypts it from the stored blob."""
    entry = KeyEntry.objects.get(delivery=delivery, kind=KeyEntry.Kind.KEK)
    key = masterkeys.unwrap(delivery.id, entry.data)
    out = {}
    for f in delivery.files.all():
        digest = hashlib.sha256()
        with blob_store().open(f.storage_name) as blob:
            for part in sxf.decrypt_stream(
                key, blob, delivery_id=delivery.id, file_id=f.id, blob_length=f.blob_size
            ):
                digest.update(part)
        out[f.name] = digest.hexdigest()
    return out


def test_level_1_two_files_arrive_byte_identical(
    page, page_errors, recipient_page, live_server, sender, password, files
):
    page.goto("/accounts/login/")
    log_in(page, sender.email, password)
    workers = []
    page.on("worker", lambda worker: workers.append(worker.url))
    delivery = compose_and_send(
        page,
        to="Rita Recipient <rita@example.org>",
        subject="Q3 figures",
        level=1,
        paths=[path for path, _digest in files.values()],
    )
    assert delivery.status == Delivery.Status.SENT and delivery.level == 1
    assert sorted(f.name for f in delivery.files.all()) == sorted(files)
    assert page_errors == []
    # Each file was encrypted off the page's thread, by a worker of its own.
    assert len([url for url in workers if "/js/seal_worker" in url]) == len(files)

    link = delivery_link(live_server, "rita@example.org")
    confirm_address(recipient_page, link, "rita@example.org")
    assert recipient_page.get_by_role("heading", name="Q3 figures").is_visible()
    download_everything(recipient_page, files)


@pytest.mark.parametrize(
    "worker",
    [
        # Blocked, or a browser without module workers: the worker does not start.
        {"status": 404},
        # Loads but never answers: no file may stay at "encrypting" for ever (10 s, then
        # the page takes over).
        {"status": 200, "content_type": "text/javascript", "body": "onmessage = () => {};"},
    ],
    ids=["missing", "silent"],
)
def test_without_a_working_encryption_worker_the_page_encrypts_itself(
    page, page_errors, sender, password, tmp_path, worker
):
    page.route(re.compile(r"/js/seal_worker"), lambda route: route.fulfill(**worker))
    source = tmp_path / "notes.txt"
    source.write_bytes(os.urandom(300_000))
    page.goto("/accounts/login/")
    log_in(page, sender.email, password)
    delivery = compose_and_send(
        page, to="rita@example.org", subject="Without a worker", level=1, paths=[source]
    )
    assert delivery.status == Delivery.Status.SENT
    digest = hashlib.sha256(source.read_bytes()).hexdigest()
    assert stored_plaintext_digests(delivery) == {"notes.txt": digest}
    assert page_errors == []


def test_level_2_recipient_registers_verifies_logs_in_and_downloads(
    page, page_errors, recipient_page, live_server, sender, password, files
):
    page.goto("/accounts/login/")
    log_in(page, sender.email, password)
    compose_and_send(
        page,
        to="gus@example.net",
        subject="Contract draft",
        level=2,
        paths=[path for path, _digest in files.values()],
    )
    assert page_errors == []
    link = delivery_link(live_server, "gus@example.net")

    r = recipient_page
    confirm_address(r, link, "gus@example.net")
    r.get_by_label("Your name").fill("Gus Guest")
    r.get_by_label("Password", exact=True).fill(GUEST_PASSWORD)
    r.get_by_label("Password again").fill(GUEST_PASSWORD)
    r.get_by_role("button", name="Create account").click()
    code = re.search(r"^\s+(\d{6})$", mailed_text("gus@example.net"), re.M).group(1)
    r.get_by_label("Code from the mail").fill(code)
    r.get_by_role("button", name="Confirm").click()
    assert r.get_by_role("heading", name="Contract draft").is_visible()

    # A fresh session: the address again, then the log-in with the new guest account.
    r.get_by_role("button", name="Log out").click()
    confirm_address(r, link, "gus@example.net")
    r.wait_for_url(re.compile(r"/accounts/login/"))
    log_in(r, "gus@example.net", GUEST_PASSWORD)
    assert r.get_by_role("heading", name="Contract draft").is_visible()
    download_everything(r, files)


def test_upload_interrupted_mid_batch_still_arrives_intact(
    page, page_errors, sender, password, files
):
    """The first PATCH delivers only half its bytes, the next one loses its connection: the
    page asks the server for its offset and resends the rest from the ciphertext it kept."""
    page.goto("/accounts/login/")
    log_in(page, sender.email, password)
    name = next(n for n in files if n.endswith(".bin"))
    path, digest = files[name]
    patches = []

    def interrupt(route):
        request = route.request
        if request.method != "PATCH":
            route.continue_()
            return
        patches.append(int(request.headers["upload-offset"]))
        if len(patches) == 1:
            body = request.post_data_buffer
            route.continue_(post_data=body[: len(body) // 2])
        else:
            route.abort("connectionreset")
            page.unroute("**/api/v1/uploads/*")

    delivery = compose_and_send(
        page,
        to="rita@example.org",
        subject="Interrupted",
        level=1,
        paths=[path],
        send=lambda page: (
            page.route("**/api/v1/uploads/*", interrupt),
            page.get_by_role("button", name="Encrypt and send").click(),
        ),
    )
    assert len(patches) == 2 and patches[0] == 0 and patches[1] > 0
    assert delivery.status == Delivery.Status.SENT
    assert stored_plaintext_digests(delivery) == {name: digest}
    assert page_errors == []


def test_reload_during_upload_resumes_with_the_same_files(
    page, page_errors, sender, password, files
):
    page.goto("/accounts/login/")
    log_in(page, sender.email, password)
    (big, big_digest), (small, small_digest) = sorted(
        files.values(), key=lambda f: -f[0].stat().st_size
    )
    page.goto("/send/")
    page.wait_for_selector("form#compose[data-ready=true]")
    page.get_by_label("Recipients").fill("rita@example.org")
    page.get_by_label("Subject").fill("Reloaded")
    page.set_input_files("#id_files", [str(small), str(big)])

    def stall_big_file(route):
        # The small file (one short PATCH) goes through; every PATCH of the big one fails.
        if route.request.method == "PATCH" and len(route.request.post_data_buffer) > 4096:
            route.abort("connectionreset")
        else:
            route.continue_()

    page.route("**/api/v1/uploads/*", stall_big_file)
    page.get_by_role("button", name="Encrypt and send").click()
    big_row = page.locator(".file-item", has_text=big.name)
    big_row.get_by_text("trying again").wait_for()
    assert page.locator(".file-item", has_text=small.name).get_by_text("uploaded").is_visible()

    saved = page.evaluate("JSON.parse(sessionStorage.getItem('secushare.compose')).files")
    [unfinished] = [f["fileId"] for f in saved if f["name"] == big.name]
    page.unroute("**/api/v1/uploads/*")
    page.on("dialog", lambda dialog: dialog.accept())  # "files are still being uploaded"
    page.reload()
    page.wait_for_selector("form#compose[data-ready=true]")
    assert page.get_by_role("heading", name=re.compile("Reloaded")).is_visible()
    assert page.locator(".file-item", has_text=small.name).get_by_text("uploaded").is_visible()
    assert big_row.get_by_text("select this file again").is_visible()
    page.set_input_files("#id_files", [str(big)])
    page.get_by_role("button", name="Continue and send").click()
    page.wait_for_url(re.compile(rf"/sent/{UUID}/$"), timeout=90_000)

    delivery = Delivery.objects.get(pk=re.search(UUID, page.url).group(0))
    # The unfinished upload was replaced by a new one (fresh salt): two files, not three.
    assert delivery.files.count() == 2
    assert not DeliveryFile.objects.filter(pk=unfinished).exists()
    assert stored_plaintext_digests(delivery) == {small.name: small_digest, big.name: big_digest}
    assert page.evaluate("sessionStorage.length") == 0
    assert page_errors == []


def test_refusals_are_explained_and_nothing_is_sent_until_fixed(
    page, page_errors, sender, password, files, settings, tmp_path
):
    settings.MAX_FILE_SIZE = 50_000
    settings.USER_QUOTA = 10_000
    huge = tmp_path / "huge.bin"
    huge.write_bytes(os.urandom(60_000))
    over_quota = tmp_path / "over-quota.bin"
    over_quota.write_bytes(os.urandom(20_000))
    small, small_digest = next(f for f in files.values() if f[0].suffix == ".txt")
    page.goto("/accounts/login/")
    log_in(page, sender.email, password)
    page.goto("/send/")
    page.wait_for_selector("form#compose[data-ready=true]")
    page.get_by_label("Recipients").fill("rita@example.org; not-an-address")
    assert page.locator("#recipients_preview").get_by_text("not an e-mail address").is_visible()
    page.get_by_label("Subject").fill("Limits")

    # Larger than the per-file limit: refused in the browser, not added.
    page.set_input_files("#id_files", [str(huge)])
    assert page.locator("#files_errors").get_by_text("huge.bin").is_visible()
    assert page.locator(".file-item").count() == 0

    # The server refuses the address: shown at the field, no delivery is created.
    page.set_input_files("#id_files", [str(small), str(over_quota)])
    page.get_by_role("button", name="Encrypt and send").click()
    page.locator("#recipients_errors").get_by_text("not-an-address").wait_for()
    assert not Delivery.objects.exists()

    # The server refuses a file over the quota: said next to it; nothing is sent.
    page.get_by_label("Recipients").fill("rita@example.org")
    page.get_by_role("button", name="Encrypt and send").click()
    failed_row = page.locator(".file-item", has_text="over-quota.bin")
    failed_row.get_by_text("quota").wait_for()
    page.get_by_role("button", name="Try again").wait_for()
    assert Delivery.objects.get().status == Delivery.Status.DRAFT
    assert mail.outbox == []

    # Without that file the delivery goes out.
    failed_row.get_by_role("button", name="Remove").click()
    page.get_by_role("button", name="Try again").click()
    page.wait_for_url(re.compile(rf"/sent/{UUID}/$"))
    delivery = Delivery.objects.get()
    assert delivery.status == Delivery.Status.SENT
    assert stored_plaintext_digests(delivery) == {small.name: small_digest}
    assert page_errors == []


def test_cancelled_file_is_removed_and_the_rest_goes_out(
    page, page_errors, sender, password, files
):
    page.goto("/accounts/login/")
    log_in(page, sender.email, password)
    (big, _big_digest), (small, small_digest) = sorted(
        files.values(), key=lambda f: -f[0].stat().st_size
    )
    page.goto("/send/")
    page.wait_for_selector("form#compose[data-ready=true]")
    page.get_by_label("Recipients").fill("rita@example.org")
    page.get_by_label("Subject").fill("One file less")
    page.set_input_files("#id_files", [str(big), str(small)])
    # The big file's bytes do not get through, so it is still uploading when cancelled.
    page.route(
        "**/api/v1/uploads/*",
        lambda route: route.abort() if route.request.method == "PATCH" else route.continue_(),
    )
    page.get_by_role("button", name="Encrypt and send").click()
    big_row = page.locator(".file-item", has_text=big.name)
    big_row.get_by_text("trying again").wait_for()
    [cancelled] = DeliveryFile.objects.filter(name=big.name)
    big_row.get_by_role("button", name="Cancel upload").click()
    big_row.wait_for(state="detached")
    page.unroute("**/api/v1/uploads/*")
    page.wait_for_url(re.compile(rf"/sent/{UUID}/$"))

    delivery = Delivery.objects.get()
    assert not DeliveryFile.objects.filter(pk=cancelled.pk).exists()
    assert stored_plaintext_digests(delivery) == {small.name: small_digest}
    assert page_errors == []
