"""The browser rows: a level 3 upload through the compose page and its download through the
recipient page, in headless Chromium (bench.cdp, no test driver), each held against raw
WebCrypto AES-256-GCM on 64 KiB chunks measured in the same browser and run, with the
browser's memory watched for a small and a large file.

The sender and the recipient have SecuPass keys that know each other (pinned in their
keyrings), so the compose page wraps the delivery key for the recipient directly, and the
recipient can open what was just uploaded. The recipient's page saves through the File System
Access API into the origin-private file system (on disk in the profile), since a real file
picker needs a person. That page runs in the profile's default context: a context of its own
would be off the record, and Chromium keeps an off-the-record origin's files in memory (a
1 GiB download then grew the browser process by 1 GiB), which a person's browser does not.
"""

import json
import threading
import time
from pathlib import Path

from bench import flows
from bench.cdp import Browser, CDPError, chromium_binary
from bench.stack import PASSWORD, SENDER, Stack
from bench.table import MIB, Row, median, ratio, sizes

READER = "bench-reader@example.org"
SENDER_SECUPASS = "Bench sender keeps this SecuPass"
READER_SECUPASS = "Bench reader keeps this SecuPass"
TARGET = 0.3
FLAT = 64 * MIB
TARGET_TEXT = f">= {TARGET}; +<= {FLAT // MIB} MiB"
OPFS_PICKER = """
window.showSaveFilePicker = async ({ suggestedName }) => {
  const root = await navigator.storage.getDirectory();
  return root.getFileHandle(suggestedName, { create: true });
};
"""
RAW = """(async (total) => {
  const key = await crypto.subtle.importKey(
    "raw", crypto.getRandomValues(new Uint8Array(32)), "AES-GCM", false, ["encrypt", "decrypt"]);
  const chunk = crypto.getRandomValues(new Uint8Array(65536));
  const iv = new Uint8Array(12);
  let started = performance.now();
  for (let done = 0; done < total; done += chunk.length) {
    await crypto.subtle.encrypt({ name: "AES-GCM", iv }, key, chunk);
  }
  const encrypt = performance.now() - started;
  const sealed = await crypto.subtle.encrypt({ name: "AES-GCM", iv }, key, chunk);
  started = performance.now();
  for (let done = 0; done < total; done += chunk.length) {
    await crypto.subtle.decrypt({ name: "AES-GCM", iv }, key, sealed);
  }
  return { encrypt: encrypt / 1000, decrypt: (performance.now() - started) / 1000 };
})"""


def what(direction: str, small: int, large: int) -> str:
    if direction == "up":
        done = (
            "level 3 upload through the compose page "
            "(encrypt + tus, from the first byte to the sent page)"
        )
        raw = "raw WebCrypto AES-256-GCM encryption"
    else:
        done = (
            "level 3 download through the recipient page (fetch + decrypt + verify + write to disk)"
        )
        raw = "raw WebCrypto AES-256-GCM decryption"
    return (
        f"{done} in headless Chromium vs {raw} of 64 KiB chunks in the same browser; "
        f"memory flat from {sizes(small)} to {sizes(large)} ({sizes(small)} and {sizes(large)})"
    )


def rows(stack: Stack, file_sizes: tuple[int, int]) -> list[Row]:
    small, large = file_sizes
    target = TARGET_TEXT
    if chromium_binary() is None:
        return [
            Row.not_measured(what(d, small, large), target, "Chromium is not installed")
            for d in ("up", "down")
        ]
    people = _make_keys()
    browser = Browser()
    try:
        return _measure(stack, browser, people, small, large, target)
    finally:
        browser.close()


def _measure(stack, browser, people, small: int, large: int, target: str) -> list[Row]:
    base = f"http://127.0.0.1:{stack.port}"
    sender = browser.new_page()
    reader = browser.new_page(own_context=False)  # saves to disk, as a person's browser does
    reader.init_script(OPFS_PICKER)
    _log_in(sender, base, SENDER, PASSWORD)
    _log_in(reader, base, READER, PASSWORD)
    compose_refuses = _compose_refuses(sender, base)
    raw_encrypt, raw_decrypt = [], []
    up, down = {}, {}
    for size in (small, large):
        source = stack.tmp / f"browser-{size // MIB}MiB.bin"
        _raw(sender, size, raw_encrypt, raw_decrypt)
        if compose_refuses:
            made = _python_delivery(people, size, source.name)
        else:
            flows.write_plain(source, size)
            seconds, growth, delivery_id = _upload(browser, sender, base, source)
            source.unlink()
            up[size] = (seconds, growth)
            made = (flows.link_token(READER), _file_id(delivery_id))
        down[size] = _download(browser, reader, base, *made, source.name)
        _raw(sender, size, raw_encrypt, raw_decrypt)
    out = []
    if compose_refuses:
        out.append(Row.not_measured(what("up", small, large), target, compose_refuses))
    else:
        out.append(_row("up", up, _rate_of(raw_encrypt), small, large, target))
    out.append(_row("down", down, _rate_of(raw_decrypt), small, large, target))
    return out


def _row(direction: str, results: dict, raw_rate: float, small: int, large: int, target: str):
    rates = {size: size / results[size][0] for size in (small, large)}
    ratios = {size: rates[size] / raw_rate for size in (small, large)}
    growth = {size: results[size][1] for size in (small, large)}
    flat = growth[large] - growth[small] <= FLAT
    return Row(
        what(direction, small, large),
        " / ".join(f"{rates[s] / 1e6:,.0f} MB/s" for s in (small, large)),
        f"raw {raw_rate / 1e6:,.0f} MB/s",
        " / ".join(ratio(ratios[s]) for s in (small, large))
        + "; memory "
        + " / ".join(f"+{growth[s] / MIB:.0f}" for s in (small, large))
        + " MiB",
        target,
        all(r >= TARGET for r in ratios.values()) and flat,
    )


def _compose_refuses(page, base: str) -> str:
    """Why the compose page cannot send at level 3 here, or ""."""
    page.goto(f"{base}/send/", "document.querySelector('form#compose[data-ready=true]') !== null")
    if page.evaluate("document.getElementById('id_level_3')?.disabled !== false"):
        return "the compose page does not offer level 3 yet"
    return ""


def _file_id(delivery_id: str) -> str:
    from deliveries.models import DeliveryFile

    return str(DeliveryFile.objects.get(delivery_id=delivery_id).id)


def _rate_of(samples: list[tuple[int, float]]) -> float:
    return median([size / seconds for size, seconds in samples])


def _raw(page, size: int, encrypt: list, decrypt: list) -> None:
    total = min(size, 256 * MIB)
    timings = page.evaluate(f"{RAW}({total})")
    encrypt.append((total, timings["encrypt"]))
    decrypt.append((total, timings["decrypt"]))


# -- the two people ------------------------------------------------------------------------------


def _make_keys() -> dict:
    """SecuPass keys for the sender and the reader, each pinned in the other's keyring;
    returns {email: (UserKey, unlocked keys)}."""
    from django.utils import timezone

    from accounts.models import User
    from secupass import keys, sxf
    from secupass.models import UserKey

    sender = User.objects.get(email=SENDER)
    reader = User.objects.filter(email=READER).first() or User.objects.create_guest(
        READER, PASSWORD, email_verified_at=timezone.now()
    )
    made = {}
    for user, secupass in ((sender, SENDER_SECUPASS), (reader, READER_SECUPASS)):
        key, pepper = UserKey.issue(user)
        unlocked, body = keys.create_key(secupass, key.id, pepper)
        made[user.email] = (key, unlocked, body)
    for user, other in ((sender, reader), (reader, sender)):
        key, unlocked, body = made[user.email]
        theirs = made[other.email][1].keys
        pins = {
            other.email: keys.full_fingerprint_hex(
                other.email, theirs.ecdh_public, theirs.ecdsa_public
            )
        }
        key.register(
            ecdh_public=unlocked.keys.ecdh_public,
            ecdsa_public=unlocked.keys.ecdsa_public,
            kdf=keys.KDF_NAME,
            iterations=keys.DEFAULT_ITERATIONS,
            salt=sxf.b64u_decode(body["salt"]),
            private_record=sxf.b64u_decode(body["private_record"]),
            keyring=keys.seal_keyring(pins, 1, unlocked.derived.keyring_key, key.id),
            keyring_version=1,
        )
    return {email: (key, unlocked.keys) for email, (key, unlocked, _body) in made.items()}


def _python_delivery(people: dict, size: int, name: str) -> tuple[str, str]:
    """A sent level 3 delivery of one ``size``-byte file made as the sender's browser makes
    it (blob, manifest, signature, entries for both keys); returns (link token, file id)."""
    import hashlib
    import secrets
    from datetime import timedelta

    from django.utils import timezone

    from deliveries.models import Delivery, DeliveryFile, KeyEntry, Recipient, new_token
    from deliveries.storage import blob_name, blob_store
    from secupass import keys, sxf

    sender_key, sender_private = people[SENDER]
    message = "Benchmark"
    delivery = Delivery.objects.create(
        sender=sender_key.user,
        level=Delivery.Level.SECUPASS,
        subject=f"Benchmark {name}",
        message=message,
        message_sha256=hashlib.sha256(message.encode()).hexdigest(),
        expires_at=timezone.now() + timedelta(days=1),
        language="en",
    )
    delivery_key = secrets.token_bytes(32)
    f = DeliveryFile(
        delivery=delivery,
        name=name,
        content_type="application/octet-stream",
        size=size,
        blob_size=sxf.blob_length(size),
    )
    f.storage_name = blob_name(delivery.id, f.id)
    store = blob_store()
    store.create(f.storage_name)
    digest = sxf.BlobDigest()
    with store.path(f.storage_name).open("wb") as out:
        for i, piece in enumerate(flows.blob_pieces(delivery_key, delivery.id, f.id, size)):
            (digest.update_header if i == 0 else digest.update_chunk)(piece)
            out.write(piece)
    f.offset = f.blob_size
    f.state = DeliveryFile.State.VERIFIED
    f.completed_at = timezone.now()
    f.save()
    manifest = {
        "files": [
            {
                "file_id": str(f.id),
                "name": name,
                "type": f.content_type,
                "size": size,
                "digest": digest.hexdigest(),
            }
        ],
        "message_sha256": delivery.message_sha256,
    }
    delivery.manifest = keys.seal_manifest(manifest, delivery_key, delivery.id)
    delivery.signature = keys.sign_delivery(
        sender_private.ecdsa, delivery.id, delivery.level, delivery_key, delivery.manifest
    )
    for key, private in people.values():
        entry = sxf.wrap_p256(private.ecdh_public, str(key.id), delivery.id, delivery_key)
        KeyEntry.objects.create(
            delivery=delivery, kind=KeyEntry.Kind.P256, key_ref=str(key.id), data=entry
        )
    token, token_hash = new_token()
    Recipient.objects.create(
        delivery=delivery, email=READER, token_hash=token_hash, mail_sent_at=timezone.now()
    )
    delivery.status = Delivery.Status.SENT
    delivery.sent_at = timezone.now()
    delivery.save()
    return token, str(f.id)


def _log_in(page, base: str, email: str, password: str) -> None:
    page.goto(f"{base}/accounts/login/")
    page.evaluate(
        f"""(() => {{
        const form = document.querySelector("input[type=password]").form;
        form.querySelector("input[type=email]").value = {json.dumps(email)};
        form.querySelector("input[type=password]").value = {json.dumps(password)};
        form.requestSubmit();
    }})()"""
    )
    page.wait_for(
        "!location.pathname.startsWith('/accounts/login/') && document.readyState === 'complete'"
    )


# -- upload and download ---------------------------------------------------------------------------


class _Memory:
    """Peak of Chromium's memory: the proportional set size (shared pages divided among the
    processes that map them, so nothing is counted twice) summed over its processes, sampled
    every 100 ms."""

    def __init__(self, browser: Browser):
        self.browser = browser
        self.start = self._now()
        self.peak = self.start
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _now(self) -> int:
        total = 0
        for pid in self.browser.pids():
            try:
                for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
                    if line.startswith("Pss:"):
                        total += int(line.split()[1]) * 1024
            except OSError:
                continue
        return total

    def _run(self):
        while not self._stop.wait(0.1):
            self.peak = max(self.peak, self._now())

    def growth(self) -> int:
        self._stop.set()
        self._thread.join()
        return max(0, self.peak - self.start)


def _upload(browser: Browser, page, base: str, source: Path) -> tuple[float, int, str]:
    from deliveries.models import Delivery

    page.goto(f"{base}/send/", "document.querySelector('form#compose[data-ready=true]') !== null")
    page.evaluate(
        f"""(() => {{
        const set = (id, value) => {{
            const field = document.getElementById(id);
            field.value = value;
            field.dispatchEvent(new Event("input", {{ bubbles: true }}));
            field.dispatchEvent(new Event("change", {{ bubbles: true }}));
        }};
        set("id_recipients", {json.dumps(READER)});
        set("id_subject", "Benchmark {source.name}");
        set("id_message", "Benchmark");
        document.getElementById("id_level_3").click();
    }})()"""
    )
    page.wait_for("!document.getElementById('secupass-field').hidden")
    page.evaluate(
        f"""(() => {{
        const field = document.getElementById("id_secupass");
        field.value = {json.dumps(SENDER_SECUPASS)};
        field.dispatchEvent(new Event("input", {{ bubbles: true }}));
    }})()"""
    )
    page.set_files("#id_files", [str(source)])
    page.wait_for("document.querySelectorAll('#file-list li').length === 1")
    memory = _Memory(browser)
    page.evaluate("document.getElementById('send').click()")
    page.wait_for(
        "!document.getElementById('overall').hidden"
        " || !document.getElementById('form-errors').hidden",
        timeout=120,
        interval=0.01,
    )
    errors = page.evaluate(
        "(e => e.hidden ? '' : e.textContent)(document.getElementById('form-errors'))"
    )
    if errors:
        raise CDPError(f"the compose page refused: {errors.strip()}")
    started = time.perf_counter()
    sent = page.wait_for(
        "location.pathname.match(/^\\/sent\\/([0-9a-f-]{36})\\/$/)?.[1] || "
        "(document.getElementById('form-errors') && !document.getElementById('form-errors').hidden"
        " && 'error:' + document.getElementById('form-errors').textContent)",
        timeout=1800,
        interval=0.05,
    )
    seconds = time.perf_counter() - started
    growth = memory.growth()
    if sent.startswith("error:"):
        raise CDPError(f"the upload failed: {sent[6:].strip()}")
    delivery = Delivery.objects.get(pk=sent)
    if delivery.status != Delivery.Status.SENT:
        raise CDPError(f"the delivery is {delivery.status}, not sent")
    return seconds, growth, sent


def _download(browser: Browser, page, base: str, token: str, file_id: str, name: str):
    page.goto(f"{base}/d/{token}", "document.querySelector('#unlock:not([disabled])') !== null")
    page.evaluate(
        f"""(() => {{
        const field = document.getElementById("secupass");
        field.value = {json.dumps(READER_SECUPASS)};
        field.dispatchEvent(new Event("input", {{ bubbles: true }}));
        document.getElementById("unlock-form").requestSubmit();
    }})()"""
    )
    row = f"document.querySelector('tr[data-file-id=\"{file_id}\"]')"
    state = page.wait_for(
        f"({row}?.querySelector('.e2e-save') && 'ready') || "
        "(!document.getElementById('pin-ask')?.hidden && 'pin') || "
        "(!document.getElementById('unlock-error').hidden && 'error:' + "
        "document.getElementById('unlock-error').textContent)",
        timeout=120,
    )
    if state == "pin":
        page.evaluate("document.getElementById('pin-sender').click()")
        state = page.wait_for(f"{row}?.querySelector('.e2e-save') && 'ready'", timeout=60)
    if state != "ready":
        raise CDPError(f"the recipient page refused: {state}")
    memory = _Memory(browser)
    started = time.perf_counter()
    page.evaluate(f"{row}.querySelector('.e2e-save').click()")
    status = page.wait_for(
        f"(() => {{ const s = {row}.querySelector('.e2e-status');"
        " return s.classList.contains('ok') ? 'ok' :"
        " s.classList.contains('failed') ? 'failed: ' + s.textContent : ''; })()",
        timeout=1800,
        interval=0.05,
    )
    seconds = time.perf_counter() - started
    growth = memory.growth()
    if status != "ok":
        raise CDPError(f"the download {status}")
    if not page.evaluate(f"{row}.querySelector('.e2e-note').hidden"):
        raise CDPError("the page kept the file in memory instead of writing it to disk")
    page.evaluate(
        f"(async () => (await navigator.storage.getDirectory()).removeEntry({json.dumps(name)}))()"
    )
    return seconds, growth
