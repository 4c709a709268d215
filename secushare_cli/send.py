"""``secushare send``: create a draft, encrypt and upload each file, send the delivery."""

from __future__ import annotations

import contextlib
import mimetypes
import os
import secrets
import stat
import sys
from dataclasses import dataclass
from datetime import datetime

from secupass import sxf
from secushare_cli.client import Api
from secushare_cli.errors import FAILED, USAGE, CliError
from secushare_cli.progress import Progress, human_size
from secushare_cli.tus import Upload

STATUS_WORDS = {
    "draft": "not sent",
    "pending": "mail waiting",
    "mail_sent": "mail sent",
    "opened": "link opened",
    "confirmed": "address confirmed",
    "downloaded": "downloaded",
    "revoked": "withdrawn",
}


@dataclass
class LocalFile:
    path: str
    name: str
    size: int
    content_type: str


def check_files(paths: list[str]) -> list[LocalFile]:
    """Every file exists and is readable before anything is created on the server."""
    files = []
    for path in paths:
        try:
            info = os.stat(path)
        except OSError as e:
            raise CliError(f"Cannot read {path}: {e.strerror}.", USAGE) from None
        if not stat.S_ISREG(info.st_mode):
            raise CliError(f"{path} is not a regular file.", USAGE)
        if not os.access(path, os.R_OK):
            raise CliError(f"Cannot read {path}: permission denied.", USAGE)
        name = os.path.basename(os.path.abspath(path))
        content_type = mimetypes.guess_type(name)[0] or "application/octet-stream"
        files.append(LocalFile(path, name, info.st_size, content_type))
    return files


def read_message(args) -> str:
    if args.message_file is None:
        return args.message or ""
    try:
        if args.message_file == "-":
            return sys.stdin.read()
        with open(args.message_file, encoding="utf-8") as f:
            return f.read()
    except (OSError, UnicodeDecodeError) as e:
        raise CliError(f"Cannot read the message file {args.message_file}: {e}.", USAGE) from None


def default_subject(paths: list[str]) -> str:
    names = [os.path.basename(os.path.abspath(p)) for p in paths]
    more = len(names) - 1
    subject = names[0] if not more else f"{names[0]} and {plural(more, 'more file')}"
    return subject if len(subject) <= 200 else subject[:199] + "…"


def draft_body(args) -> dict:
    body = {
        "level": args.level,
        "recipients": args.to,
        "subject": args.subject if args.subject is not None else default_subject(args.files),
        "message": read_message(args),
        "notify_on_download": args.notify,
    }
    if args.expires_days is not None:
        body["expires_in_days"] = args.expires_days
    if args.download_limit is not None:
        body["download_limit"] = args.download_limit
    if args.language is not None:
        body["language"] = args.language
    return body


def upload_file(
    api: Api,
    delivery: dict,
    key: bytes,
    local: LocalFile,
    *,
    named: bool = True,
    digest: sxf.BlobDigest | None = None,
) -> str:
    """Encrypt one file chunk by chunk while uploading it; returns the file id.

    ``named=False`` (level 4) keeps the name and type off the server; ``digest`` is fed the
    stored bytes (the manifest's digest at levels 3 and 4).
    """
    length = sxf.blob_length(local.size)
    meta = {"delivery": delivery["id"], "size": str(local.size)}
    if named:
        meta = {**meta, "filename": local.name, "filetype": local.content_type}
    upload = Upload.create(api, delivery.get("upload_url") or "/api/v1/uploads/", length, meta)
    progress = Progress(local.name, length)
    try:
        with open(local.path, "rb") as f:
            encryptor = sxf.Encryptor(key, delivery["id"], upload.file_id, local.size)
            upload.send(encryptor.encrypt_stream(f, digest=digest), progress.update)
    except sxf.SXFError as e:
        upload.terminate()
        raise CliError(f"{local.path}: {e}.", FAILED) from None
    except OSError as e:
        upload.terminate()
        raise CliError(f"Cannot read {local.path}: {e.strerror}.", FAILED) from None
    except ValueError as e:  # a file id that is no UUID
        upload.terminate()
        raise CliError(f"The server gave an unusable upload address: {e}.", FAILED) from None
    finally:
        progress.finish()
    return upload.file_id


def delete_draft(api: Api, delivery: dict) -> None:
    """Leave nothing half-made behind; the periodic cleanup catches what this misses."""
    with contextlib.suppress(CliError):
        api.request("DELETE", f"/api/v1/deliveries/{delivery['id']}")


def run(args, api: Api, out=None) -> int:
    out = out or sys.stdout
    if args.level in (3, 4):
        from secushare_cli import send_e2e

        return send_e2e.run(args, api, out)
    files = check_files(args.files)
    body = draft_body(args)
    delivery = api.json("POST", "/api/v1/deliveries", json=body, expect=(201,))
    key = secrets.token_bytes(sxf.KEY_LEN)
    sent = False
    try:
        for local in files:
            upload_file(api, delivery, key, local)
        delivery = api.json(
            "POST",
            f"/api/v1/deliveries/{delivery['id']}/send",
            json={"delivery_key": sxf.b64u_encode(key)},
        )
        sent = True
    finally:
        if not sent:
            delete_draft(api, delivery)
    report(delivery, files, out, as_json=args.json)
    return 0


def report(
    delivery: dict, files: list[LocalFile], out, *, as_json: bool, notes: dict | None = None
) -> None:
    """The delivery id, a summary, and each recipient's status (``notes`` add to it)."""
    if as_json:
        import json

        out.write(json.dumps(delivery, indent=2) + "\n")
        return
    total = sum(f.size for f in files)
    expires = _local_time(delivery.get("expires_at"))
    out.write(f"{delivery['id']}\n")
    out.write(
        f"Sent “{delivery.get('subject', '')}” at level {delivery.get('level')}: "
        f"{plural(len(files), 'file')}, {human_size(total)}, available until {expires}.\n"
    )
    for r in delivery.get("recipients", []):
        status = STATUS_WORDS.get(r.get("status"), r.get("status"))
        note = (notes or {}).get(r["email"])
        out.write(f"  {r['email']}: {status}{'; ' + note if note else ''}\n")


def plural(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def _local_time(value: str | None) -> str:
    if not value:
        return "?"
    try:
        return datetime.fromisoformat(value).astimezone().strftime("%Y-%m-%d %H:%M %Z")
    except ValueError:
        return value
