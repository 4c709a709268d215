"""``secushare fetch`` at levels 3 and 4: everything is opened and checked on this computer.

After the link login (``fetch.run``) the client reads ``/r/<id>/e2e`` (the key entry for the
recipient's key, the sealed manifest, the sender's signature and public keys), unlocks the
recipient's key with the SecuPass, unwraps the delivery key, verifies the signature with the
sender's key (approved before, or shown with its fingerprint and approved now), recomputes
the commit itself, opens the manifest, then fetches each file's ciphertext from
``/r/<id>/blobs/<file id>`` and decrypts it chunk by chunk into a hidden temporary file. A
file gets its name only after every chunk authenticated and its digest matched the signed
manifest; otherwise the temporary file is removed.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import sys
import tempfile
import time

import requests

from secupass import keys, sxf
from secushare_cli import prompts
from secushare_cli.client import NETWORK_ERRORS, Api, backoff, describe
from secushare_cli.client import exit_code_for as code_for
from secushare_cli.errors import FAILED, UNSAFE, WAITING, CliError
from secushare_cli.fetch import DOWNLOAD_ATTEMPTS, READ_BLOCK, place, safe_name, target_folder
from secushare_cli.ownkey import KeySession, fingerprint_matches, full_fingerprint, shown
from secushare_cli.progress import Progress


def unsafe(message: str) -> CliError:
    return CliError(f"Refused: {message} Nothing was saved.", UNSAFE)


class BlobReader:
    """The ciphertext at ``url`` as a readable stream that resumes (HTTP Range) after a
    broken connection, so the decryptor never sees the interruption."""

    def __init__(self, api: Api, url: str, total: int, progress: Progress):
        self.api = api
        self.url = url
        self.total = total
        self.progress = progress
        self.received = 0  # bytes of the blob that arrived so far: where a resume starts
        self.buffer = bytearray()
        self.blocks = None
        self.response = None
        self.failures = 0

    def _open(self) -> None:
        headers = {"Range": f"bytes={self.received}-"} if self.received else {}
        response = self.api.session.get(self.url, headers=headers, stream=True, timeout=(15, 300))
        skip = 0
        if response.status_code == 206:
            expected = f"bytes {self.received}-"
            if not response.headers.get("Content-Range", "").startswith(expected):
                response.close()
                raise CliError("The server resumed the download at the wrong byte.", FAILED)
        elif response.status_code == 200:
            skip = self.received  # the server ignored the range: pass over what arrived
        else:
            response.close()
            raise CliError(describe(response), code_for(response.status_code))
        self.response = response
        self.blocks = response.iter_content(READ_BLOCK)
        while skip:
            block = next(self.blocks, b"")
            if not block:
                raise requests.ConnectionError("the download stopped early")
            if len(block) > skip:
                self._take(memoryview(block)[skip:])
                skip = 0
            else:
                skip -= len(block)

    def _take(self, block) -> None:
        self.buffer += block
        self.received += len(block)
        if self.received > self.total:
            raise CliError("The server sent more bytes than the file has.", FAILED)
        self.progress.update(self.received)

    def _fill(self, n: int) -> None:
        while len(self.buffer) < n and self.received < self.total:
            try:
                if self.blocks is None:
                    self._open()
                    continue
                block = next(self.blocks, b"")
                if not block:
                    raise requests.ConnectionError(f"the download stopped at byte {self.received}")
                self._take(block)
            except (*NETWORK_ERRORS, requests.exceptions.ChunkedEncodingError) as e:
                self.close()
                self.failures += 1
                if self.failures >= DOWNLOAD_ATTEMPTS:
                    raise CliError(f"The download keeps failing: {e}", FAILED) from None
                time.sleep(backoff(self.failures - 1))

    def read(self, n: int = -1) -> bytes:
        n = self.total if n is None or n < 0 else n
        self._fill(n)
        data = bytes(self.buffer[:n])
        del self.buffer[:n]
        return data

    def close(self) -> None:
        if self.response is not None:
            self.response.close()
        self.response = None
        self.blocks = None


def save_file(api: Api, listed: dict, item: dict, delivery_key: bytes, delivery_id: str, folder):
    """Decrypt one file into the folder; returns its path."""
    size, blob_size = item["size"], int(listed["blob_size"])
    name = safe_name(item["name"], fallback=item["file_id"])
    progress = Progress(name, blob_size)
    reader = BlobReader(api, api.url(listed["url"]), blob_size, progress)
    digest = sxf.BlobDigest()
    fd, temp_path = tempfile.mkstemp(prefix=".secushare-", suffix=".part", dir=folder)
    try:
        written = 0
        with os.fdopen(fd, "wb") as temp:
            try:
                for part in sxf.decrypt_stream(
                    delivery_key,
                    reader,
                    delivery_id=delivery_id,
                    file_id=item["file_id"],
                    blob_length=blob_size,
                    digest=digest,
                ):
                    temp.write(part)
                    written += len(part)
            except sxf.SXFError as e:
                raise unsafe(f"the file “{name}” does not verify: {e}.") from None
            finally:
                reader.close()
            if written != size or digest.hexdigest() != item["digest"]:
                raise unsafe(
                    f"the file “{name}” is not the one the sender signed (its digest differs)."
                )
            temp.flush()
            os.fsync(temp.fileno())
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(temp_path, 0o666 & ~umask)
        return place(temp_path, folder, name)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temp_path)
        raise
    finally:
        progress.finish()


def check_sender(session: KeySession, email: str, fpr: str, approved: dict[str, str]) -> None:
    """Trust the sender's key only if it is pinned, or pin it now (see DESIGN 4, keyring)."""
    _version, pins = session.keyring()
    pinned = pins.get(email)
    if pinned == fpr:
        return
    given = approved.get(email)
    if given is not None and not fingerprint_matches(given, fpr):
        raise unsafe(
            f"the sender's key for {email} has the fingerprint {shown(fpr)}, not the one "
            "you gave with --approve-fingerprint."
        )
    if pinned:
        if given is None:
            raise unsafe(
                f"the sender {email} signed with a key whose fingerprint ({shown(fpr)}) "
                f"differs from the one you approved before ({shown(pinned)}). They may have "
                "reset their SecuPass, or someone is trying to slip you another key. Compare "
                f"the new fingerprint with {email} by phone or in person; if it is theirs, "
                f'run again with --approve-fingerprint "{email}={shown(fpr)}".'
            )
        print(f"secushare: replacing the approved key of {email} by {shown(fpr)}.", file=sys.stderr)
    elif given is None:
        note = (
            f"The sender {email} signed with a key you have not approved yet. Its "
            f"fingerprint is\n    {shown(fpr)}\nCompare it with {email} by phone or in person."
        )
        if session.new_device:
            print(note, file=sys.stderr)
            answer = prompts.confirm("Is this the sender's fingerprint?")
            if answer is None:
                raise unsafe(
                    "this computer has not used your keyring before, so it approves no "
                    "new key without asking. After comparing the fingerprint, run again "
                    f'with --approve-fingerprint "{email}={shown(fpr)}".'
                )
            if not answer:
                raise unsafe("you did not confirm the sender's fingerprint.")
        else:
            print(f"{note}\nIt is now approved in your keyring.", file=sys.stderr)
    session.pin(email, fpr)


def run(args, api: Api, received: dict, out) -> int:
    delivery = received.get("delivery") or {}
    rid = delivery.get("recipient_id")
    if not rid:
        raise CliError("The server's answer does not name the recipient.", FAILED)
    api.use_session_csrf()
    data = api.json("GET", f"/r/{rid}/e2e", retries=2)
    level = data.get("level")
    if level not in (3, 4) or level != delivery.get("level"):
        raise unsafe("the server describes the delivery's security level inconsistently.")
    session = KeySession(api)
    info = session.fetch()
    if info is None or data.get("reader") is None:
        raise CliError(
            "This delivery is end-to-end encrypted, and you have no SecuPass key yet. Create "
            f"one with:\n  secushare keys create --link LINK --email {args.email}\nThe sender "
            "is then asked to approve it; you get a mail when the files are ready.",
            WAITING,
        )
    session.info = info
    if data.get("entry") is None:
        raise CliError(
            "The sender has not approved your SecuPass key for this delivery yet; you get a "
            "mail when they have. If they ask, read them your fingerprint by phone or in "
            f"person:\n    {shown(session.own_fingerprint(args.email))}",
            WAITING,
        )
    unlocked = session.unlock(prompts.secupass(args.secupass_file))
    delivery_id = data["delivery_id"]
    if delivery_id != delivery.get("id") or data["entry"].get("key_id") != unlocked.key_id:
        raise unsafe("the server's description of this delivery is inconsistent.")
    try:
        delivery_key = sxf.unwrap_p256(unlocked.keys.ecdh, data["entry"], delivery_id)
    except sxf.SXFError as e:
        raise unsafe(f"the delivery key for you does not open: {e}.") from None
    sender_email = sxf.normalize_email((data.get("sender") or {}).get("email", ""))
    signer = data.get("sender_key") or {}
    if not signer or sxf.normalize_email(signer.get("email", "")) != sender_email:
        raise unsafe("the server offers no signing key of the sender.")
    try:
        manifest_blob = sxf.b64u_decode(data["manifest"])
        signature = sxf.b64u_decode(data["signature"])
        signer_public = sxf.b64u_decode(signer["ecdsa_public"])
        valid = keys.verify_delivery(
            signer_public, signature, delivery_id, level, delivery_key, manifest_blob
        )
    except (sxf.SXFError, KeyError, TypeError, ValueError):
        valid = False
    if not valid:
        raise unsafe(f"the delivery does not carry a valid signature of {sender_email}.")
    fpr = full_fingerprint(sender_email, signer["ecdh_public"], signer["ecdsa_public"])
    approved = dict(getattr(args, "approve_fingerprint", None) or [])
    check_sender(session, sender_email, fpr, approved)
    listed = {f["id"]: f for f in data.get("files", [])}
    try:
        manifest = keys.open_manifest(
            manifest_blob,
            delivery_key,
            delivery_id,
            level,
            {i: f["size"] for i, f in listed.items()},
        )
    except sxf.SXFError as e:
        raise unsafe(f"the list of files does not verify: {e}.") from None
    message = check_level(level, data, manifest)
    subject = data.get("subject", "")
    out.write(f"“{subject}” from {sender_email} (level {level}, signature verified)\n")
    if message:
        out.write("Message:\n" + "".join(f"  {line}\n" for line in message.splitlines()) + "\n")
    out.flush()
    folder = target_folder(args.output)
    items = {item["file_id"]: item for item in manifest["files"]}
    for file_id, entry in listed.items():
        try:
            path = save_file(api, entry, items[file_id], delivery_key, delivery_id, folder)
        except OSError as e:
            raise CliError(f"Cannot write into {folder}: {e.strerror}.", FAILED) from None
        report_downloaded(api, data, file_id)
        out.write(path + "\n")
        out.flush()
    return 0


def check_level(level: int, data: dict, manifest: dict) -> str:
    """The message, checked: level 3 against the signed hash, level 4 from the manifest.
    At level 3 the server's file names are compared with the signed ones."""
    if level == 4:
        return manifest["message"]
    message = data.get("message") or ""
    if hashlib.sha256(message.encode()).hexdigest() != manifest["message_sha256"]:
        raise unsafe("the message the server shows is not the one the sender signed.")
    names = {f["id"]: f.get("name") for f in data.get("files", [])}
    if any(names.get(item["file_id"]) != item["name"] for item in manifest["files"]):
        # The files are saved under the names the sender signed; the server's differ.
        print(
            "secushare: warning: the server shows other file names than the ones the sender "
            "signed; the signed names are used.",
            file=sys.stderr,
        )
    return message


def report_downloaded(api: Api, data: dict, file_id: str) -> None:
    """Tell the server the file was verified (the sender's receipt); a failure only warns."""
    url = data.get("downloaded_url")
    if not url:
        return
    with contextlib.suppress(CliError):
        response = api.request("POST", url, json={"file_id": file_id}, retries=2)
        if response.status_code == 200:
            return
    print("secushare: warning: the download could not be reported to the sender.", file=sys.stderr)
