"""tus creation: a POST makes the upload resource (and the empty blob) for one file.

Everything is checked before anything is stored: the metadata, that ``Upload-Length``
is the SXF1 size of a ``size``-byte file, the file size limit, the number of files per
delivery and the sender's quota (under a lock, so two creations cannot both pass).
"""

import logging
import uuid

from django.conf import settings
from django.db import transaction
from django.db.models import Sum
from django.http import HttpResponse
from django.template.defaultfilters import filesizeformat
from django.urls import reverse
from django.utils.translation import gettext as _

from accounts.apiauth import api_auth
from accounts.models import User
from deliveries import uploads_meta as meta
from deliveries.models import Delivery, DeliveryFile
from deliveries.storage import Unavailable, blob_name, blob_store
from deliveries.uploads_common import error, max_blob_size, not_draft, upload_headers
from secupass import sxf

log = logging.getLogger(__name__)
CHUNK_LOG2_RANGE = range(sxf.MIN_CHUNK_LOG2, sxf.MAX_CHUNK_LOG2 + 1)


def _chunk_log2_for(size: int, upload_length: int) -> int | None:
    """The SXF1 chunk size (as log2) for which a ``size``-byte file makes this blob."""
    for log2 in CHUNK_LOG2_RANGE:
        if sxf.blob_length(size, log2) == upload_length:
            return log2
    return None


def _read_creation(request):
    """Validate the creation request; return (delivery_id, size, blob size, name, type)."""
    if request.headers.get("Upload-Defer-Length") is not None:
        raise meta.BadRequest(_("Uploads of unknown length are not supported; send Upload-Length."))
    if request.headers.get("Content-Length", "0") not in ("", "0"):
        raise meta.BadRequest(
            _("Create the upload with an empty POST, then send the bytes with PATCH.")
        )
    upload_length = meta.header_count(request, "Upload-Length")
    values = meta.parse_metadata(request.headers.get("Upload-Metadata"))
    try:
        delivery_id = uuid.UUID(meta.text(values, "delivery") or "")
    except ValueError:
        raise meta.BadRequest(_("The “delivery” metadata must be the id of a delivery.")) from None
    size = meta.parse_count(meta.text(values, "size"), _("the “size” metadata"))
    name = meta.text(values, "filename")
    content_type = meta.clean_content_type(meta.text(values, "filetype"))
    return delivery_id, size, upload_length, name, content_type


def _too_large(size: int, name: str):
    return error(
        413,
        _("“%(name)s” is %(size)s; a file can be at most %(limit)s.")
        % {
            "name": name or _("This file"),
            "size": filesizeformat(size),
            "limit": filesizeformat(settings.MAX_FILE_SIZE),
        },
    )


@api_auth
def create(request):
    user = request.api_user
    try:
        delivery_id, size, upload_length, raw_name, content_type = _read_creation(request)
    except meta.BadRequest as e:
        return error(400, e)
    name = meta.clean_filename(raw_name) if raw_name is not None else ""
    if upload_length > max_blob_size() or size > settings.MAX_FILE_SIZE:
        return _too_large(size, name)
    chunk_log2 = _chunk_log2_for(size, upload_length)
    if chunk_log2 is None:
        return error(
            400,
            _(
                "Upload-Length (%(length)d bytes) does not fit a file of %(size)d bytes: "
                "its encrypted SXF1 form is %(expected)d bytes."
            )
            % {"length": upload_length, "size": size, "expected": sxf.blob_length(size)},
        )
    store = blob_store()
    created = None
    try:
        with transaction.atomic():
            # One creation at a time per sender, so two cannot both pass the quota.
            User.objects.select_for_update().filter(pk=user.pk).first()
            delivery = (
                Delivery.objects.select_for_update().filter(pk=delivery_id, sender=user).first()
            )
            if delivery is None:
                return error(404, _("There is no such delivery."))
            if delivery.status != Delivery.Status.DRAFT:
                return not_draft()
            if delivery.level < Delivery.Level.SECUPASS_PLUS and not raw_name:
                return error(400, _("The “filename” metadata is missing."))
            if delivery.level == Delivery.Level.SECUPASS_PLUS:
                name = ""  # level 4: names live only in the encrypted manifest
            if delivery.files.count() >= settings.MAX_FILES_PER_DELIVERY:
                return error(
                    403,
                    _("A delivery can hold at most %(limit)d files.")
                    % {"limit": settings.MAX_FILES_PER_DELIVERY},
                )
            used = (
                DeliveryFile.objects.filter(
                    delivery__sender=user, delivery__blobs_deleted_at__isnull=True
                ).aggregate(total=Sum("size"))["total"]
                or 0
            )
            if used + size > settings.USER_QUOTA:
                return error(
                    413,
                    _(
                        "This file (%(size)s) does not fit into your storage quota: you use "
                        "%(used)s of %(quota)s. Delete drafts or revoke deliveries you no "
                        "longer need to make room."
                    )
                    % {
                        "size": filesizeformat(size),
                        "used": filesizeformat(used),
                        "quota": filesizeformat(settings.USER_QUOTA),
                    },
                )
            f = DeliveryFile(
                delivery=delivery,
                name=name,
                content_type=content_type,
                size=size,
                blob_size=upload_length,
                upload_state={"chunk_log2": chunk_log2},
            )
            f.storage_name = blob_name(delivery.id, f.id)
            # The store's upload state (an S3 multipart id) is recorded with the row.
            f.upload_state.update(store.create(f.storage_name, upload_length))
            created = f.storage_name
            f.save()
    except Unavailable as e:  # from store.create, so nothing was created
        log.error("creating an upload: the blob store failed: %s", e)
        return error(
            503, _("The file storage is not answering right now. Please try again shortly.")
        )
    except BaseException:
        if created:
            store.delete(created)
        raise
    response = HttpResponse(status=201)
    response["Location"] = reverse("uploads:file", kwargs={"file_id": f.id})
    return upload_headers(response, f)
