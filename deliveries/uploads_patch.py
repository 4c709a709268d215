"""tus core PATCH: append the request body to the blob at the recorded offset.

The body is read as a stream (``request.read`` in pieces; files are many GB) and handed to
the blob store (``deliveries.storage``: a local file, or S3 parts). One writer at a time:
the PATCH holds the upload's lease in its database row (``deliveries.upload_lease``) from
checking the offset until the new offset and the store's upload state are recorded with
``UPDATE ... WHERE offset = old``, plus the store's own lock where it has one. A broken
connection keeps what arrived. The 80-byte SXF1 header is checked as soon as it is in,
from the bytes as they arrive (kept in the upload state until all 80 are there), so no
store is read back.
"""

import base64
import errno
import logging

from django.conf import settings
from django.http import HttpResponse, UnreadablePostError
from django.template.defaultfilters import filesizeformat
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts.apiauth import api_auth
from deliveries import uploads_meta as meta
from deliveries.models import Delivery, DeliveryFile
from deliveries.storage import Busy, Missing, OffsetMismatch, Unavailable, blob_store
from deliveries.upload_lease import Lease
from deliveries.uploads_common import (
    OFFSET_STREAM,
    delete_file,
    error,
    gone,
    is_expired,
    not_draft,
    not_found,
    owned_file,
    upload_headers,
)
from secupass import sxf
from secushare.db import release_connections

log = logging.getLogger(__name__)


class Body:
    """``request.read`` in pieces that ends quietly where the connection broke.

    A read waits until all it asked for has arrived, and a connection that is reset
    loses what that read was waiting for, so pieces stay at 1 MiB (tus: store as much
    of a partial body as possible); a connection closed normally loses nothing.
    """

    PIECE = 1024 * 1024

    def __init__(self, request):
        self.request = request
        self.broken = False

    def read(self, n: int) -> bytes:
        if self.broken:
            return b""
        try:
            return self.request.read(min(n, self.PIECE))
        except (UnreadablePostError, OSError):
            self.broken = True
            return b""


class Start:
    """The blob's first bytes, up to the 80-byte header, collected across PATCHes.

    Until the header is complete they wait base64-encoded in the upload state, which is
    recorded together with the offset.
    """

    KEY = "start"

    def __init__(self, upload: dict, offset: int):
        self.offset = offset
        self.data = base64.b64decode(upload.pop(self.KEY, "")) if offset < sxf.HEADER_LEN else b""

    def capture(self, read):
        def reading(n: int) -> bytes:
            data = read(n)
            if len(self.data) < sxf.HEADER_LEN:
                self.data += data[: sxf.HEADER_LEN - len(self.data)]
            return data

        return reading if self.offset < sxf.HEADER_LEN else read

    def keep(self, upload: dict, new_offset: int) -> None:
        if new_offset < sxf.HEADER_LEN:
            upload[self.KEY] = base64.b64encode(self.data).decode("ascii")


def _check_header(f: DeliveryFile, data: bytes) -> str | None:
    """Why this header does not fit the upload, or None if it does."""
    try:
        header = sxf.Header.parse(
            data[: sxf.HEADER_LEN], delivery_id=f.delivery_id, file_id=f.id, blob_length=f.blob_size
        )
    except sxf.SXFError as e:
        return str(e)
    if header.length != f.size:
        return _("the header gives the file %(header)d bytes, the upload announced %(size)d") % {
            "header": header.length,
            "size": f.size,
        }
    return None


def _bad_header(f: DeliveryFile, reason: str):
    delete_file(f)
    return error(
        422,
        _(
            "“%(name)s” is not an encrypted SecuShare file for this upload (%(reason)s). "
            "It has been removed; please add the file again."
        )
        % {"name": f.name or _("The file"), "reason": reason},
    )


def _write(request, f: DeliveryFile, offset: int, length: int):
    """Append the body at ``offset`` holding the upload's lease; record the new offset."""
    store = blob_store()
    with store.locked(f.storage_name):
        lease = Lease.claim(f, offset)
        if lease is None:
            return _not_claimed(f, offset)
        try:
            return _append(request, store, lease, f, offset, length)
        finally:
            lease.release()


def _not_claimed(f: DeliveryFile, offset: int):
    row = DeliveryFile.objects.filter(pk=f.pk).values_list("offset", "state").first()
    if row is None:
        return not_found()
    current, state = row
    if current != offset or state != DeliveryFile.State.UPLOADING:
        return _offset_conflict(current, offset)
    raise Busy(f"upload {f.pk} is being written by another request")


def _append(request, store, lease: Lease, f: DeliveryFile, offset: int, length: int):
    upload = DeliveryFile.objects.values_list("upload_state", flat=True).get(pk=f.pk) or {}
    # Bytes after the recorded offset are from a writer that died before recording them;
    # nobody else can be writing now, so they go.
    store.truncate(f.storage_name, offset)
    start = Start(upload, offset)
    read = start.capture(lease.guard(Body(request).read))
    release_connections()  # the body may take minutes to arrive; the lease holds the upload
    new_offset = store.append(f.storage_name, offset, read, length, upload)
    if new_offset == offset:
        return upload_headers(HttpResponse(status=204), f)
    start.keep(upload, new_offset)
    if offset < sxf.HEADER_LEN <= new_offset:
        reason = _check_header(f, start.data)
        if reason:
            return _bad_header(f, reason)
    complete = new_offset == f.blob_size
    if complete:
        store.finish(f.storage_name, upload)
    now = timezone.now()
    changes = {"offset": new_offset, "touched_at": now, "upload_state": upload}
    if complete:
        changes.update(state=DeliveryFile.State.COMPLETE, completed_at=now)
    if not lease.record(offset, **changes):
        return not_found()
    for field, value in changes.items():
        setattr(f, field, value)
    return upload_headers(HttpResponse(status=204), f)


def _offset_conflict(current: int, sent: int):
    return error(
        409,
        _(
            "The upload is at byte %(current)d, but this request continues at byte %(sent)d. "
            "Ask for the offset with HEAD and continue from there."
        )
        % {"current": current, "sent": sent},
        Upload_Offset=str(current),
    )


@api_auth
def patch(request, file_id):
    content_type = request.headers.get("Content-Type", "").split(";", 1)[0].strip().lower()
    if content_type != OFFSET_STREAM:
        return error(415, _("Send the bytes as %(type)s.") % {"type": OFFSET_STREAM})
    if request.headers.get("Content-Length") is None:
        return error(411, _("Send a Content-Length header with every PATCH."))
    try:
        length = meta.header_count(request, "Content-Length")
        offset = meta.header_count(request, "Upload-Offset")
    except meta.BadRequest as e:
        return error(400, e)
    if length > settings.TUS_MAX_CHUNK:
        return error(
            413,
            _("One request may carry at most %(limit)s; send the file in smaller pieces.")
            % {"limit": filesizeformat(settings.TUS_MAX_CHUNK)},
        )
    f = owned_file(request, file_id)
    if f is None:
        return not_found()
    if is_expired(f):
        return gone()
    if f.delivery.status != Delivery.Status.DRAFT:
        return not_draft()
    if offset != f.offset:
        return _offset_conflict(f.offset, offset)
    if offset + length > f.blob_size:
        return error(
            413,
            _("These bytes would make the file longer than the %(length)d bytes announced.")
            % {"length": f.blob_size},
        )
    if length == 0:
        return upload_headers(HttpResponse(status=204), f)
    try:
        return _write(request, f, offset, length)
    except Busy:
        return error(423, _("Another request is uploading this file right now; try again soon."))
    except (Missing, OffsetMismatch):
        # The stored bytes are gone or shorter than recorded: this upload cannot go on.
        delete_file(f)
        return error(410, _("The stored part of this upload was lost. Start the upload again."))
    except Unavailable as e:
        log.error("upload %s: the blob store failed: %s", f.pk, e)
        return error(
            503, _("The file storage is not answering right now. Please try again shortly.")
        )
    except OSError as e:
        if e.errno not in (errno.ENOSPC, errno.EDQUOT):
            raise
        return error(
            507, _("The server has no room for this file right now. Please try again later.")
        )
