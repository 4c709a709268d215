"""``secushare fetch``: open a delivery with its personal link and save its files.

Nothing is written before the server has accepted the address (and password). Each
file goes to a hidden temporary file in the target folder and gets its name only
when it is complete, so a name in the folder always means a whole file; an existing
file is never overwritten (the new one gets a " (1)" suffix instead).
"""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
import time
import unicodedata

import requests

from secushare_cli.client import NETWORK_ERRORS, Api, backoff, describe
from secushare_cli.client import exit_code_for as code_for
from secushare_cli.errors import FAILED, CliError
from secushare_cli.login import link_login
from secushare_cli.progress import Progress

READ_BLOCK = 1024 * 1024
MAX_NAME_BYTES = 240
DOWNLOAD_ATTEMPTS = 6
WINDOWS_RESERVED = '<>:"|?*'


def safe_name(name: str, fallback: str = "file") -> str:
    """A file name that stays in the target folder and shows what it is."""
    name = unicodedata.normalize("NFC", name or "")
    # Control characters, line breaks, bidirectional overrides and zero-width marks.
    name = "".join(c for c in name if unicodedata.category(c) not in ("Cc", "Cf", "Zl", "Zp"))
    name = name.replace("/", "_").replace("\\", "_")
    if os.name == "nt":
        name = "".join("_" if c in WINDOWS_RESERVED else c for c in name).rstrip(". ")
    name = name.strip()
    if not name.strip("."):
        name = fallback
    if len(name.encode("utf-8")) > MAX_NAME_BYTES:
        _stem, dot, ext = name.rpartition(".")
        ext = dot + ext if dot and 0 < len(ext) <= 16 else ""
        stem = name[: len(name) - len(ext)]
        while len((stem + ext).encode("utf-8")) > MAX_NAME_BYTES:
            stem = stem[:-1]
        name = stem + ext
    return name


def numbered(name: str, n: int) -> str:
    if n == 0:
        return name
    stem, dot, ext = name.rpartition(".")
    if dot and stem and len(ext) <= 16:
        return f"{stem} ({n}).{ext}"
    return f"{name} ({n})"


def place(temp_path: str, folder: str, name: str) -> str:
    """Give the finished temporary file its name without replacing any existing file."""
    for n in range(10000):
        target = os.path.join(folder, numbered(name, n))
        try:
            os.link(temp_path, target)
        except FileExistsError:
            continue
        except OSError:
            # No hard links here: claim the name exclusively, then move over the claim.
            try:
                fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            except FileExistsError:
                continue
            os.close(fd)
            os.replace(temp_path, target)
            return target
        os.unlink(temp_path)
        return target
    raise CliError(f"Too many files named {name} in {folder}.", FAILED)


def download(api: Api, url: str, temp, expected: int, progress: Progress) -> None:
    """Stream one file into ``temp``, resuming with Range after a broken connection."""
    written = 0
    failures = 0
    while True:
        headers = {"Range": f"bytes={written}-"} if written else {}
        try:
            with api.session.get(url, headers=headers, stream=True, timeout=(15, 300)) as r:
                if r.status_code == 200 and written:
                    temp.seek(0)
                    temp.truncate()
                    written = 0
                elif r.status_code == 206:
                    if not r.headers.get("Content-Range", "").startswith(f"bytes {written}-"):
                        raise CliError("The server resumed the download at the wrong byte.")
                elif r.status_code != 200:
                    raise CliError(describe(r), code_for(r.status_code))
                for block in r.iter_content(READ_BLOCK):
                    temp.write(block)
                    written += len(block)
                    if written > expected:
                        raise CliError("The server sent more bytes than the file has.", FAILED)
                    progress.update(written)
            if written == expected:
                return
            raise requests.ConnectionError(f"the download stopped at byte {written}")
        except (*NETWORK_ERRORS, requests.exceptions.ChunkedEncodingError) as e:
            failures += 1
            if failures >= DOWNLOAD_ATTEMPTS:
                raise CliError(f"The download keeps failing: {e}", FAILED) from None
            time.sleep(backoff(failures - 1))


def save(api: Api, entry: dict, folder: str) -> str:
    expected = int(entry["size"])
    name = safe_name(entry.get("name", ""), fallback=str(entry.get("id", "file")))
    progress = Progress(name, expected)
    fd, temp_path = tempfile.mkstemp(prefix=".secushare-", suffix=".part", dir=folder)
    try:
        with os.fdopen(fd, "wb") as temp:
            download(api, api.url(entry["url"]), temp, expected, progress)
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


def target_folder(path: str) -> str:
    folder = os.path.abspath(path)
    try:
        os.makedirs(folder, exist_ok=True)
    except OSError as e:
        raise CliError(f"Cannot create {folder}: {e.strerror}.", FAILED) from None
    return folder


def run(args, env_base: str | None, out=None) -> int:
    out = out or sys.stdout
    login = link_login(args, env_base)
    api, received = login.api, login.received
    level = (received.get("delivery") or {}).get("level")
    if level in (3, 4):
        from secushare_cli import fetch_e2e

        return fetch_e2e.run(args, api, received, out)
    files = received.get("files")
    if not isinstance(files, list):
        raise CliError("The server's answer lists no files.", FAILED)
    folder = target_folder(args.output)
    for entry in files:
        try:
            path = save(api, entry, folder)
        except OSError as e:
            raise CliError(f"Cannot write into {folder}: {e.strerror}.", FAILED) from None
        out.write(path + "\n")
        out.flush()
    return 0
