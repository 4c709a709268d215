"""Downloads at levels 1 and 2: the server decrypts while streaming.

A file is read from its SXF1 blob and decrypted about 1 MiB at a time; nothing is ever held
whole in memory or written to disk in plain. Single byte ranges work, so a broken download
resumes. Expiry, revocation and the download limit are checked on every request, in the same
transaction that counts the download (``Download.take``).

A chunk that fails authentication stops the stream: the connection ends before the announced
Content-Length, so the client sees a broken download, never a silently wrong file.
"""

import functools
import logging
import re
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.http import HttpResponse, StreamingHttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.utils.http import http_date
from django.utils.translation import gettext as _
from django.utils.translation import ngettext
from django.views.decorators.http import require_http_methods

from deliveries import audit
from deliveries.models import AuditEvent, DeliveryFile, Download, KeyEntry, Recipient
from deliveries.receive_access import gone, not_found, recipient_view
from deliveries.receive_names import clean_name, content_disposition, unique_names
from deliveries.storage import StoreError, blob_store
from deliveries.zipstream import Entry, ZipStream
from outbox.services import queue_mail
from secupass import masterkeys, sxf

log = logging.getLogger(__name__)

PIECE = 1 << 20  # bytes handed to the WSGI server at a time where it cannot sendfile()
# A Range request starting after byte 0 continues a download counted this recently.
RESUME_WINDOW = timedelta(hours=24)
_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")
UNSATISFIABLE = "unsatisfiable"


def parse_range(header: str | None, size: int):
    """One byte range as (first, last), None to send the whole file, or UNSATISFIABLE.

    Malformed and multi-range headers are ignored (RFC 9110 allows it): the whole file goes.
    """
    match = _RANGE.match((header or "").strip())
    if not match or match.groups() == ("", ""):
        return None
    first, last = match.groups()
    if not first:
        suffix = int(last)
        if suffix == 0 or size == 0:
            return UNSATISFIABLE
        return max(0, size - suffix), size - 1
    start = int(first)
    if last and int(last) < start:
        return None
    if start >= size:
        return UNSATISFIABLE
    return start, min(int(last), size - 1) if last else size - 1


def _validators(f: DeliveryFile) -> tuple[str, str]:
    """ETag and Last-Modified; a stored blob never changes."""
    return f'"{f.id.hex}"', http_date((f.completed_at or f.created_at).timestamp())


def _delivery_key(delivery) -> bytes:
    entry = (
        KeyEntry.objects.filter(delivery=delivery, kind=KeyEntry.Kind.KEK)
        .order_by("-created_at")
        .first()
    )
    if entry is None:
        raise sxf.SXFError("the delivery has no server key entry")
    return masterkeys.unwrap(delivery.id, entry.data)


def _open_blob(f: DeliveryFile):
    """The blob, positioned at 0, after its header was checked against the record."""
    blob = blob_store().open(f.storage_name)
    try:
        header = sxf.Header.parse(
            blob.read(sxf.HEADER_LEN),
            delivery_id=f.delivery_id,
            file_id=f.id,
            blob_length=f.blob_size,
        )
        if header.length != f.size:
            raise sxf.FormatError(f"the header says {header.length} bytes, the record {f.size}")
        blob.seek(0)
    except BaseException:
        blob.close()
        raise
    return blob


def plaintext(key: bytes, f: DeliveryFile, blob, start: int = 0, end: int | None = None):
    """Decrypted bytes [start, end], a chunk (64 KiB) at a time; closes the blob.

    Each chunk goes to the WSGI server as it comes out of AES-GCM: joining them into larger
    pieces first cost a copy of every byte, and the output stays in the processor's cache.
    """
    try:
        yield from sxf.decrypt_stream(
            key,
            blob,
            delivery_id=f.delivery_id,
            file_id=f.id,
            blob_length=f.blob_size,
            start=start,
            end=end,
        )
    except sxf.SXFError as e:
        log.error("download of file %s of delivery %s stopped: %s", f.id, f.delivery_id, e)
        raise
    finally:
        blob.close()


def _damaged(request, delivery, error: Exception):
    log.error("delivery %s cannot be served: %s", delivery.id, error)
    return render(request, "deliveries/receive/damaged.html", {"delivery": delivery}, status=500)


def _limit_reached(request, recipient: Recipient, files):
    limit = recipient.delivery.download_limit
    if len(files) == 1:
        reason = ngettext(
            "You have downloaded this file as often as the sender allowed (%(limit)d time).",
            "You have downloaded this file as often as the sender allowed (%(limit)d times).",
            limit,
        ) % {"limit": limit}
    else:
        reason = _(
            "At least one of these files has been downloaded as often as the sender allowed. "
            "Download the others one by one from the delivery page."
        )
    return gone(request, recipient, reason, back=True)


def _exhausted(recipient: Recipient, files) -> bool:
    limit = recipient.delivery.download_limit
    if limit is None:
        return False
    return Download.objects.filter(recipient=recipient, file__in=files, count__gte=limit).exists()


def _continues(recipient: Recipient, f: DeliveryFile) -> bool:
    """A download of this file was counted recently, so a range after byte 0 resumes it."""
    return Download.objects.filter(
        recipient=recipient,
        file=f,
        count__gte=1,
        last_at__gte=timezone.now() - RESUME_WINDOW,
    ).exists()


def start_download(
    request, recipient: Recipient, files, *, count: bool, detail: dict
) -> str | None:
    """Check availability, count the download and record it, in one transaction.

    Returns None when the bytes may go, else the reason (for the 410 page).
    """
    with transaction.atomic():
        fresh = Recipient.objects.select_related("delivery", "delivery__sender").get(
            pk=recipient.pk
        )
        reason = fresh.unavailable_reason()
        if reason:
            return reason
        delivery = fresh.delivery
        first = []
        if count:
            if not Download.take(fresh, files, delivery.download_limit):
                return "limit"
            first_ids = set(
                Download.objects.filter(recipient=fresh, file__in=files, count=1).values_list(
                    "file_id", flat=True
                )
            )
            first = [f for f in files if f.id in first_ids]
        now = timezone.now()
        Recipient.objects.filter(pk=fresh.pk, downloaded_at__isnull=True).update(downloaded_at=now)
        audit.record(AuditEvent.Kind.DOWNLOADED, request=request, recipient=fresh, **detail)
        if first and delivery.notify_on_download:
            sender = delivery.sender
            queue_mail(
                sender.email,
                "download_receipt",
                {
                    "recipient_email": fresh.email,
                    "subject": delivery.subject,
                    "file_names": [f.name for f in first] if delivery.level < 4 else [],
                    "file_count": len(first),
                    "downloaded_at": now.isoformat(),
                    "delivery_url": f"{settings.SITE_URL}/sent/{delivery.id}/",
                },
                language=sender.language,
            )
    return None


def _attachment(response, name: str, length: int):
    response["Content-Disposition"] = content_disposition(name)
    response["Content-Length"] = str(length)
    response["X-Content-Type-Options"] = "nosniff"
    response["Content-Security-Policy"] = "sandbox; default-src 'none'"
    response["Cache-Control"] = "no-store"
    return response


@dataclass(frozen=True)
class ByteRange:
    """The bytes of one file (or blob) that a request gets."""

    start: int
    end: int  # inclusive
    size: int  # of the whole file
    partial: bool  # a Range request, answered with 206

    @property
    def length(self) -> int:
        return self.end - self.start + 1

    @property
    def status(self) -> int:
        return 206 if self.partial else 200


def requested_range(request, f: DeliveryFile, size: int, name: str):
    """The bytes a GET or HEAD asks for (one Range, honouring If-Range), or the 416 answer."""
    etag, last_modified = _validators(f)
    wanted = parse_range(request.headers.get("Range"), size)
    if_range = request.headers.get("If-Range")
    if wanted is not None and if_range and if_range.strip() not in (etag, last_modified):
        wanted = None  # the client holds another version: send it all
    if wanted == UNSATISFIABLE:
        response = _attachment(HttpResponse(status=416), name, 0)
        response["Content-Range"] = f"bytes */{size}"
        return response
    start, end = wanted or (0, size - 1)
    return ByteRange(start, end, size, partial=wanted is not None)


def counts_again(recipient: Recipient, f: DeliveryFile, span: ByteRange) -> bool:
    """Whether this request counts against the limit: not a Range that continues a
    download of this file already counted."""
    return not (span.partial and span.start > 0 and _continues(recipient, f))


def ranged_headers(response, f: DeliveryFile, name: str, span: ByteRange):
    _attachment(response, name, span.length)
    response["Accept-Ranges"] = "bytes"
    response["ETag"], response["Last-Modified"] = _validators(f)
    if span.partial:
        response["Content-Range"] = f"bytes {span.start}-{span.end}/{span.size}"
    return response


def _downloadable(access) -> bool:
    return access.ready and access.delivery.server_holds_key


@require_http_methods(["GET", "HEAD"])
@recipient_view
def file_download(request, access, file_id):
    """``/r/<id>/files/<file id>``: one file, decrypted while it streams, with Range."""
    recipient, delivery = access.recipient, access.delivery
    f = (
        delivery.files.exclude(state=DeliveryFile.State.UPLOADING).filter(pk=file_id).first()
        if _downloadable(access)
        else None
    )
    if f is None:
        return not_found(request)
    span = requested_range(request, f, f.size, f.name)
    if isinstance(span, HttpResponse):
        return span
    count = counts_again(recipient, f, span)
    if count and _exhausted(recipient, [f]):
        return _limit_reached(request, recipient, [f])
    if request.method == "HEAD":
        response = HttpResponse(status=span.status, content_type="application/octet-stream")
    else:
        try:
            key = _delivery_key(delivery)
            blob = _open_blob(f)
        except (sxf.SXFError, StoreError) as e:
            return _damaged(request, delivery, e)
        detail = {"file": str(f.id), "size": f.size, "bytes": span.length}
        if span.partial:
            detail["range"] = f"{span.start}-{span.end}"
        reason = start_download(request, recipient, [f], count=count, detail=detail)
        if reason is not None:
            blob.close()
            if reason == "limit":
                return _limit_reached(request, recipient, [f])
            return gone(request, recipient, reason)
        body = plaintext(key, f, blob, span.start, span.end if span.partial else None)
        response = StreamingHttpResponse(
            body, status=span.status, content_type="application/octet-stream"
        )
    return ranged_headers(response, f, f.name, span)


def _open_plaintext(key, f):
    return plaintext(key, f, _open_blob(f))


@require_http_methods(["GET", "HEAD"])
@recipient_view
def zip_download(request, access):
    """``/r/<id>/zip``: every file of the delivery as one streamed ZIP."""
    recipient, delivery = access.recipient, access.delivery
    files = (
        list(delivery.files.exclude(state=DeliveryFile.State.UPLOADING))
        if _downloadable(access)
        else []
    )
    if not files:
        return not_found(request)
    if _exhausted(recipient, files):
        return _limit_reached(request, recipient, files)
    key = None
    if request.method != "HEAD":
        try:
            key = _delivery_key(delivery)
            for f in files:  # every header is checked before the first byte goes out
                _open_blob(f).close()
        except (sxf.SXFError, StoreError) as e:
            return _damaged(request, delivery, e)
    modified = timezone.localtime(delivery.sent_at or delivery.created_at).replace(tzinfo=None)
    names = unique_names(f.name for f in files)
    archive = ZipStream(
        Entry(name, f.size, functools.partial(_open_plaintext, key, f), modified)
        for name, f in zip(names, files, strict=True)
    )
    if request.method == "HEAD":
        response = HttpResponse(content_type="application/zip")
    else:
        reason = start_download(
            request,
            recipient,
            files,
            count=True,
            detail={
                "zip": True,
                "files": [str(f.id) for f in files],
                "size": sum(f.size for f in files),
                "bytes": archive.size,
            },
        )
        if reason == "limit":
            return _limit_reached(request, recipient, files)
        if reason is not None:
            return gone(request, recipient, reason)
        response = StreamingHttpResponse(iter(archive), content_type="application/zip")
    zip_name = clean_name(f"{delivery.subject}.zip")
    _attachment(response, zip_name, archive.size)
    response["Accept-Ranges"] = "none"
    return response
