"""The ``secushare`` client at levels 3 and 4, run as a real program against a live server:
keys made with the CLI, sending, approving, fetching, resetting, refusing substituted keys."""

import hashlib
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from django.core import mail
from django.utils import timezone

from accounts.models import User
from accounts.tokens import issue_token
from deliveries.models import Delivery, KeyEntry
from secupass import keys, sxf
from secupass.models import UserKey

PASSWORD = "a guest password that is long enough"
SAM_SECUPASS = "sam's own secupass, not the login"
RITA_SECUPASS = "rita kennt ihren SecuPass gut"
RITA_NEW_SECUPASS = "a brand new secupass for rita"
CLI = [sys.executable, "-m", "secushare_cli"]
ROOT = Path(__file__).resolve().parents[2]
FPR = re.compile(r"(?:[0-9a-f]{4} ){7}[0-9a-f]{4}")
MARKER = "L4-MESSAGE-MARKER-6d1f"


def secushare(*args, env=None, stdin=""):
    return subprocess.run(
        [*CLI, *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=180,
        cwd=ROOT,
        env={**os.environ, **(env or {})},
        check=False,
    )


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def fingerprint_in(text: str) -> str:
    found = FPR.findall(text)
    assert found, text
    return found[-1]


@pytest.fixture
def server(live_server, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "blobs"
    settings.SITE_URL = live_server.url
    settings.CELERY_TASK_ALWAYS_EAGER = True
    return live_server


@pytest.fixture
def secrets_dir(tmp_path):
    folder = tmp_path / "secrets"
    folder.mkdir()
    for name, value in (
        ("sam", SAM_SECUPASS),
        ("rita", RITA_SECUPASS),
        ("rita-new", RITA_NEW_SECUPASS),
    ):
        (folder / name).write_text(value + "\n", encoding="utf-8")
    return folder


@pytest.fixture
def sam(server, sender, tmp_path):
    """The sender's environment: token, server, their own configuration folder."""
    return {
        "SECUSHARE_URL": server.url,
        "SECUSHARE_TOKEN": issue_token(sender, "cli e2e")[1],
        "XDG_CONFIG_HOME": str(tmp_path / "sam-config"),
    }


@pytest.fixture
def rita(server, tmp_path):
    User.objects.create_guest("rita@example.org", PASSWORD, email_verified_at=timezone.now())
    return {"XDG_CONFIG_HOME": str(tmp_path / "rita-config")}


@pytest.fixture
def files(tmp_path):
    folder = tmp_path / "outgoing"
    folder.mkdir()
    big = folder / "Baupläne Halle 7.bin"
    big.write_bytes(os.urandom(700 * 1024 + 321))
    note = folder / "notiz.txt"
    note.write_text("Die Maße sind vorläufig.\n", encoding="utf-8")
    return [big, note]


def link_for(server, to, subject):
    found = [m for m in mail.outbox if m.to == [to] and subject in m.subject]
    assert found, [(m.to, m.subject) for m in mail.outbox]
    return re.search(rf"{re.escape(server.url)}/d/\S+", found[-1].body).group(0)


def fetch(link, env, out, secupass_file, *extra):
    return secushare(
        "fetch",
        link,
        "--email",
        "rita@example.org",
        "--password",
        "-",
        "--secupass-file",
        str(secupass_file),
        "-o",
        str(out),
        *extra,
        env=env,
        stdin=PASSWORD + "\n",
    )


def rita_keys(action, link, env, secupass_file, *extra):
    return secushare(
        "keys",
        action,
        "--link",
        link,
        "--email",
        "rita@example.org",
        "--password",
        "-",
        "--secupass-file",
        str(secupass_file),
        *extra,
        env=env,
        stdin=PASSWORD + "\n",
    )


def test_first_time_recipient_approval_fetch_level_4_and_reset(
    server, sender, sam, rita, secrets_dir, files, tmp_path
):
    made = secushare("keys", "create", "--secupass-file", str(secrets_dir / "sam"), env=sam)
    assert made.returncode == 0, made.stderr
    sam_key = UserKey.objects.active().get(user=sender)
    assert fingerprint_in(made.stdout) == sam_key.shown_fingerprint

    sent = secushare(
        "send",
        "--level",
        "3",
        "--to",
        "rita@example.org",
        "--subject",
        "Hall 7",
        "--message",
        "The plans, as promised.",
        "--secupass-file",
        str(secrets_dir / "sam"),
        *map(str, files),
        env=sam,
    )
    assert sent.returncode == 0, sent.stderr
    assert "rita@example.org: mail sent; waiting for a SecuPass key" in sent.stdout
    first = Delivery.objects.get(pk=sent.stdout.splitlines()[0])
    assert (first.level, first.status) == (3, Delivery.Status.SENT)
    assert list(KeyEntry.objects.filter(delivery=first).values_list("key_ref", flat=True)) == [
        str(sam_key.id)
    ]
    link = link_for(server, "rita@example.org", "Hall 7")

    too_early = fetch(link, rita, tmp_path / "early", secrets_dir / "rita")
    assert too_early.returncode == 6
    assert "no SecuPass key yet" in too_early.stderr
    assert not (tmp_path / "early").exists()

    created = rita_keys("create", link, rita, secrets_dir / "rita")
    assert created.returncode == 0, created.stderr
    rita_fpr = fingerprint_in(created.stdout)
    assert any(sender.email in m.to for m in mail.outbox if "approv" in m.subject.lower())

    waiting = fetch(link, rita, tmp_path / "early", secrets_dir / "rita")
    assert waiting.returncode == 6
    assert rita_fpr in waiting.stderr  # to read out to the sender

    listed = secushare("approvals", "list", env=sam)
    assert listed.returncode == 0, listed.stderr
    assert "rita@example.org" in listed.stdout and rita_fpr in listed.stdout
    assert "Hall 7" in listed.stdout
    as_json = secushare("approvals", "list", "--json", env=sam)
    [pending] = json.loads(as_json.stdout)
    assert (pending["email"], pending["fingerprint"]) == ("rita@example.org", rita_fpr)
    assert [d["subject"] for d in pending["deliveries"]] == ["Hall 7"]

    wrong = "0" * 32
    refused = secushare(
        "approvals",
        "approve",
        "rita@example.org",
        "--fingerprint",
        wrong,
        "--secupass-file",
        str(secrets_dir / "sam"),
        env=sam,
    )
    assert refused.returncode == 5
    assert rita_fpr in refused.stderr
    assert KeyEntry.objects.filter(delivery=first).count() == 1

    approved = secushare(
        "approvals",
        "approve",
        "Rita@Example.org",
        "--fingerprint",
        rita_fpr.upper().replace(" ", ""),
        "--secupass-file",
        str(secrets_dir / "sam"),
        env=sam,
    )
    assert approved.returncode == 0, approved.stderr
    assert KeyEntry.objects.filter(delivery=first).count() == 2
    assert [m for m in mail.outbox if m.to == ["rita@example.org"] and "Hall 7" in m.body]

    out = tmp_path / "incoming"
    fetched = fetch(link, rita, out, secrets_dir / "rita")
    assert fetched.returncode == 0, fetched.stderr
    assert "The plans, as promised." in fetched.stdout
    for original in files:
        assert sha256(out / original.name) == sha256(original)
    assert not [p for p in out.iterdir() if p.name.startswith(".")]
    assert "sender@example.org" in fetched.stderr  # the sender's key was shown and pinned

    # Level 4: rita's key is approved now, so she can open it at once; the message and the
    # names exist only inside the manifest.
    secret = tmp_path / "Geheimer Plan.txt"
    secret.write_text("nur für Rita\n", encoding="utf-8")
    sent4 = secushare(
        "send",
        "--level=4",
        "--to",
        "rita@example.org",
        "--subject",
        "Level four",
        "--message",
        f"{MARKER}: only for you",
        "--secupass-file",
        str(secrets_dir / "sam"),
        str(secret),
        env=sam,
    )
    assert sent4.returncode == 0, sent4.stderr
    assert "waiting" not in sent4.stdout
    fourth = Delivery.objects.get(pk=sent4.stdout.splitlines()[0])
    assert fourth.message == "" and [f.name for f in fourth.files.all()] == [""]
    assert KeyEntry.objects.filter(delivery=fourth).count() == 2
    mailed = [m for m in mail.outbox if m.to == ["rita@example.org"] and "Level four" in m.subject]
    assert MARKER not in mailed[0].body and "Geheimer" not in mailed[0].body
    out4 = tmp_path / "incoming4"
    fetched4 = fetch(
        link_for(server, "rita@example.org", "Level four"), rita, out4, secrets_dir / "rita"
    )
    assert fetched4.returncode == 0, fetched4.stderr
    assert f"{MARKER}: only for you" in fetched4.stdout
    assert (out4 / "Geheimer Plan.txt").read_text(encoding="utf-8") == "nur für Rita\n"

    # Rita forgets her SecuPass: after a reset the delivery sent before opens once Sam
    # approves the new key; nothing is sent again.
    reset = rita_keys("reset", link, rita, secrets_dir / "rita-new", "--yes")
    assert reset.returncode == 0, reset.stderr
    new_fpr = fingerprint_in(reset.stdout)
    assert new_fpr != rita_fpr
    stuck = fetch(link, rita, tmp_path / "after-reset", secrets_dir / "rita-new")
    assert stuck.returncode == 6
    listed = secushare("approvals", "list", env=sam)
    assert new_fpr in listed.stdout and "reset" in listed.stdout
    again = secushare(
        "approvals",
        "approve",
        "rita@example.org",
        "--fingerprint",
        new_fpr,
        "--secupass-file",
        str(secrets_dir / "sam"),
        env=sam,
    )
    assert again.returncode == 0, again.stderr
    assert "2 deliveries" in again.stdout
    out_again = tmp_path / "after-reset"
    reopened = fetch(link, rita, out_again, secrets_dir / "rita-new")
    assert reopened.returncode == 0, reopened.stderr
    for original in files:
        assert sha256(out_again / original.name) == sha256(original)
    assert Delivery.objects.filter(status=Delivery.Status.SENT).count() == 2


def register_key(user, secupass=None, pins=None):
    """A key made in Python, as another client (or a substituting server) would register
    it; a reset if the user has one. Returns the full fingerprint."""
    key, pepper = UserKey.issue(user)
    if secupass is None:
        private = keys.generate_user_keys()
        salt, keyring_key = os.urandom(16), os.urandom(32)
        record = keys.seal_private_record(private, os.urandom(32), key.id)
    else:
        unlocked, body = keys.create_key(secupass, key.id, pepper)
        private, keyring_key = unlocked.keys, unlocked.derived.keyring_key
        salt, record = sxf.b64u_decode(body["salt"]), sxf.b64u_decode(body["private_record"])
    version = 2 if pins else 1
    key.register(
        ecdh_public=private.ecdh_public,
        ecdsa_public=private.ecdsa_public,
        kdf=keys.KDF_NAME,
        iterations=keys.DEFAULT_ITERATIONS,
        salt=salt,
        private_record=record,
        keyring=keys.seal_keyring(pins or {}, version, keyring_key, key.id),
        keyring_version=version,
    )
    return keys.full_fingerprint_hex(user.email, private.ecdh_public, private.ecdsa_public)


def shown(full_hex):
    return sxf.format_fingerprint(bytes.fromhex(full_hex))


def send_level_3(env, secrets_dir, path, *extra, subject="Plans"):
    return secushare(
        "send",
        "--level",
        "3",
        "--to",
        "rita@example.org",
        "--subject",
        subject,
        "--secupass-file",
        str(secrets_dir / "sam"),
        *extra,
        str(path),
        env=env,
    )


def test_a_key_that_differs_from_the_approved_one_is_never_encrypted_to(
    server, sender, sam, rita, secrets_dir, tmp_path
):
    rita_user = User.objects.get(email="rita@example.org")
    approved = register_key(rita_user)
    register_key(sender, SAM_SECUPASS, pins={"rita@example.org": approved})
    substituted = register_key(rita_user)  # what a reset, or a malicious server, offers
    note = tmp_path / "note.txt"
    note.write_text("for rita only")

    refused = send_level_3(sam, secrets_dir, note)

    assert refused.returncode == 5
    assert shown(substituted) in refused.stderr and shown(approved) in refused.stderr
    assert "Nothing was sent" in refused.stderr
    assert not Delivery.objects.exists()  # the draft was removed again
    assert mail.outbox == []

    skipped = send_level_3(sam, secrets_dir, note, "--skip-mismatched")
    assert skipped.returncode == 0, skipped.stderr
    assert "rita@example.org: mail sent; NOT encrypted to" in skipped.stdout
    delivery = Delivery.objects.get(status=Delivery.Status.SENT)
    sam_key = UserKey.objects.active().get(user=sender)
    assert list(KeyEntry.objects.filter(delivery=delivery).values_list("key_ref", flat=True)) == [
        str(sam_key.id)
    ]

    wrong = send_level_3(
        sam, secrets_dir, note, "--approve-fingerprint", f"rita@example.org={'ab' * 16}"
    )
    assert wrong.returncode == 5
    assert Delivery.objects.filter(status=Delivery.Status.SENT).count() == 1

    accepted = send_level_3(
        sam,
        secrets_dir,
        note,
        "--approve-fingerprint",
        f"rita@example.org={shown(substituted)}",
        subject="Second try",
    )
    assert accepted.returncode == 0, accepted.stderr
    second = Delivery.objects.get(subject="Second try")
    rita_key = UserKey.objects.active().get(user=rita_user)
    assert set(KeyEntry.objects.filter(delivery=second).values_list("key_ref", flat=True)) == {
        str(sam_key.id),
        str(rita_key.id),
    }


def test_a_new_device_pins_no_sender_key_silently_and_old_keyrings_are_refused(
    server, sender, sam, rita, secrets_dir, tmp_path
):
    rita_user = User.objects.get(email="rita@example.org")
    rita_full = register_key(rita_user, RITA_SECUPASS)
    sam_full = register_key(sender, SAM_SECUPASS, pins={"rita@example.org": rita_full})
    note = tmp_path / "note.txt"
    note.write_text("signed by sam")
    assert send_level_3(sam, secrets_dir, note).returncode == 0
    link = link_for(server, "rita@example.org", "Plans")
    out = tmp_path / "in"

    asked = fetch(link, rita, out, secrets_dir / "rita")  # rita's config has never seen her key
    assert asked.returncode == 5
    assert shown(sam_full) in asked.stderr and "--approve-fingerprint" in asked.stderr
    assert not out.exists() or not list(out.iterdir())

    mistaken = fetch(
        link,
        rita,
        out,
        secrets_dir / "rita",
        "--approve-fingerprint",
        f"sender@example.org={'1' * 32}",
    )
    assert mistaken.returncode == 5

    key = UserKey.objects.active().get(user=rita_user)
    old_keyring, old_version = bytes(key.keyring), key.keyring_version
    confirmed = fetch(
        link,
        rita,
        out,
        secrets_dir / "rita",
        "--approve-fingerprint",
        f"SENDER@example.org={shown(sam_full).upper()}",
    )
    assert confirmed.returncode == 0, confirmed.stderr
    assert (out / "note.txt").read_text() == "signed by sam"
    versions = Path(rita["XDG_CONFIG_HOME"], "secushare", "keyring-versions.json")
    assert versions.exists()
    shown_pins = secushare(
        "keys",
        "show",
        "--pins",
        "--link",
        link,
        "--email",
        "rita@example.org",
        "--password",
        "-",
        "--secupass-file",
        str(secrets_dir / "rita"),
        env=rita,
        stdin=PASSWORD + "\n",
    )
    assert shown_pins.returncode == 0, shown_pins.stderr
    assert f"sender@example.org: {shown(sam_full)}" in shown_pins.stdout
    assert f"fingerprint: {shown(rita_full)}" in shown_pins.stdout

    # The server hands out the keyring from before the pin: this computer saw a newer one.
    UserKey.objects.filter(pk=key.pk).update(keyring=old_keyring, keyring_version=old_version)
    rolled_back = fetch(link, rita, tmp_path / "again", secrets_dir / "rita")
    assert rolled_back.returncode == 5
    assert "older keyring" in rolled_back.stderr or "was seen before" in rolled_back.stderr


def option_strings(*command):
    from secushare_cli.parser import build_parser

    parser = build_parser()
    for name in command:
        sub = next(a for a in parser._actions if getattr(a, "choices", None))
        parser = sub.choices[name]
    return [s for a in parser._actions for s in (a.option_strings or [a.metavar])]


@pytest.mark.parametrize(
    "command",
    [
        ("keys", "create"),
        ("keys", "show"),
        ("keys", "reset"),
        ("approvals", "list"),
        ("approvals", "approve"),
        ("send",),
        ("fetch",),
    ],
)
def test_help_documents_every_option_of_the_level_3_and_4_commands(command):
    result = secushare(*command, "--help")
    assert result.returncode == 0
    for option in option_strings(*command):
        assert option in result.stdout, f"{option} is not in `secushare {' '.join(command)} --help`"
    assert "exit status" in result.stdout and "SecuPass" in result.stdout


NO_PICKER = "delete window.showSaveFilePicker;"  # save through the service worker instead


def browser_log_in(page, email, password):
    page.goto("/accounts/login/")
    page.get_by_label("E-mail address").fill(email)
    page.get_by_label("Password", exact=True).fill(password)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(lambda url: "/accounts/login/" not in url)


def browser_create_key(page, secupass, login_password):
    """The key page: returns the fingerprint it shows."""
    page.goto("/keys/create/?next=/")
    page.get_by_label("SecuPass", exact=True).fill(secupass)
    page.get_by_label("SecuPass again").fill(secupass)
    page.get_by_label("Your login password").fill(login_password)
    page.get_by_role("button", name="Create SecuPass key").click()
    page.locator("#new-fingerprint").filter(has_text=FPR).wait_for(timeout=30_000)
    return page.locator("#new-fingerprint").inner_text().strip()


@pytest.mark.browser
def test_the_cli_sends_level_4_and_a_browser_opens_it(
    server, page, sam, rita, secrets_dir, tmp_path
):
    page.add_init_script(NO_PICKER)
    errors = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    made = secushare("keys", "create", "--secupass-file", str(secrets_dir / "sam"), env=sam)
    assert made.returncode == 0, made.stderr
    browser_log_in(page, "rita@example.org", PASSWORD)
    rita_fpr = browser_create_key(page, RITA_SECUPASS, PASSWORD)

    plan = tmp_path / "Lageplan Nordtor.bin"
    plan.write_bytes(os.urandom(300_000))
    sent = secushare(
        "send",
        "--level",
        "4",
        "--to",
        "rita@example.org",
        "--subject",
        "From the terminal",
        "--message",
        "Treffpunkt: Nordtor, 9 Uhr.",
        "--secupass-file",
        str(secrets_dir / "sam"),
        str(plan),
        env=sam,
    )
    assert sent.returncode == 0, sent.stderr
    assert f"waiting for your approval of the key {rita_fpr}" in sent.stdout
    approved = secushare(
        "approvals",
        "approve",
        "rita@example.org",
        "--fingerprint",
        rita_fpr,
        "--secupass-file",
        str(secrets_dir / "sam"),
        env=sam,
    )
    assert approved.returncode == 0, approved.stderr

    page.goto(link_for(server, "rita@example.org", "From the terminal"))
    assert "Nordtor" not in page.content()
    page.get_by_label("Your SecuPass").fill(RITA_SECUPASS)
    page.get_by_role("button", name="Unlock").click()
    save = page.get_by_role("button", name="Save")
    save.or_(page.locator("#pin-ask:not([hidden])")).first.wait_for(timeout=30_000)
    if page.locator("#pin-ask").is_visible():  # shown with the sender's fingerprint
        page.get_by_role("button", name="Continue and remember this key").click()
    save.wait_for()
    assert page.locator("#e2e-message-text").inner_text() == "Treffpunkt: Nordtor, 9 Uhr."
    with page.expect_download() as info:
        save.click()
    download = info.value
    assert download.suggested_filename == plan.name
    assert sha256(Path(download.path())) == sha256(plan)
    page.get_by_text("Saved and verified").wait_for()  # the server recorded the download
    assert errors == []


@pytest.mark.browser
def test_a_browser_composes_and_approves_level_4_and_the_cli_fetches_it(
    server, page, sender, password, sam, rita, secrets_dir, files, tmp_path
):
    errors = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    made = secushare("keys", "create", "--secupass-file", str(secrets_dir / "sam"), env=sam)
    assert made.returncode == 0, made.stderr
    browser_log_in(page, sender.email, password)
    page.goto("/send/")
    page.wait_for_selector("form#compose[data-ready=true]")
    page.get_by_label("Recipients").fill("rita@example.org")
    page.get_by_label("Subject").fill("From the browser")
    page.get_by_role("textbox", name="Message").fill(f"{MARKER} from the browser")
    page.check("#id_level_4")
    page.locator("#id_secupass").fill(SAM_SECUPASS)
    page.set_input_files("#id_files", [str(p) for p in files])
    page.get_by_role("button", name="Encrypt and send").click()
    page.wait_for_url(re.compile(r"/sent/[0-9a-f-]{36}/$"), timeout=60_000)
    delivery = Delivery.objects.get(subject="From the browser")
    assert delivery.message == "" and delivery.status == Delivery.Status.SENT

    link = link_for(server, "rita@example.org", "From the browser")
    created = rita_keys("create", link, rita, secrets_dir / "rita")
    assert created.returncode == 0, created.stderr
    rita_fpr = fingerprint_in(created.stdout)
    page.goto("/approvals/")
    card = page.locator('article.pending-key[data-email="rita@example.org"]')
    assert card.locator("[data-role=fingerprint]").filter(has_text=FPR).inner_text() == rita_fpr
    card.locator("[data-role=confirm]").check()
    card.locator("[data-role=approve]").click()
    page.locator("#secupass").fill(SAM_SECUPASS)
    page.get_by_role("button", name="Unlock and approve").click()
    page.locator("article.pending-key[data-approved=true]").wait_for()

    out = tmp_path / "from-browser"
    fetched = fetch(link, rita, out, secrets_dir / "rita")
    assert fetched.returncode == 0, fetched.stderr
    assert f"{MARKER} from the browser" in fetched.stdout
    for original in files:
        assert sha256(out / original.name) == sha256(original)
    assert errors == []


def test_the_level_3_and_4_client_imports_no_django():
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys; from secushare_cli import approvals, fetch_e2e, keycmd, login, main, "
            "ownkey, parser, prompts, send_e2e; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] == 'django'))",
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"},
        check=True,
    )
    assert result.stdout.strip() == "[]"


def test_a_broken_connection_resumes_and_a_tampered_blob_is_never_saved(
    server, sender, sam, rita, secrets_dir, tmp_path
):
    from deliveries.storage import blob_store
    from tests.cli.test_cli import CuttingProxy, port_of

    rita_user = User.objects.get(email="rita@example.org")
    rita_full = register_key(rita_user, RITA_SECUPASS)
    sam_full = register_key(sender, SAM_SECUPASS, pins={"rita@example.org": rita_full})
    original = tmp_path / "big.bin"
    original.write_bytes(os.urandom(3 * 1024 * 1024 + 777))
    assert send_level_3(sam, secrets_dir, original).returncode == 0
    link = link_for(server, "rita@example.org", "Plans")
    approve = ("--approve-fingerprint", f"sender@example.org={shown(sam_full)}")

    proxy = CuttingProxy(port_of(server), cut_after=2 * 1024 * 1024, direction="down")
    out = tmp_path / "in"
    try:
        resumed = fetch(
            link.replace(server.url, proxy.url), rita, out, secrets_dir / "rita", *approve
        )
    finally:
        proxy.close()
    assert resumed.returncode == 0, resumed.stderr
    assert proxy.cuts == 1
    assert sha256(out / "big.bin") == sha256(original)

    stored = Delivery.objects.get().files.get()
    path = blob_store().path(stored.storage_name)  # the embedded default: a local folder
    data = bytearray(path.read_bytes())
    data[-100] ^= 1  # one bit in the last chunk: everything before it decrypts fine
    path.write_bytes(bytes(data))
    tampered_out = tmp_path / "tampered"
    tampered = fetch(link, rita, tampered_out, secrets_dir / "rita")
    assert tampered.returncode == 5
    assert "does not verify" in tampered.stderr
    assert list(tampered_out.iterdir()) == []  # not even a partial temporary file
