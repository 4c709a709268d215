"""The recipient's side at levels 3 and 4: the browser decrypts (DESIGN.md sections 4 and 5).

The server holds only ciphertext here. After the level-2 gate (``receive_access``) the
delivery page (:func:`page`) asks for a SecuPass key, says that the sender has to approve it,
or offers the unlock form; ``static/js/receive_e2e.js`` then fetches :func:`e2e` (the key
entry for the reader's key, the signed manifest, the sender's public keys), unlocks,
verifies and decrypts ciphertext from :func:`blob` chunk by chunk, writes to disk and reports
a verified file with :func:`downloaded` (the audit event and the receipt).

Every URL answers 404 unless the session reached the recipient's link and the logged-in
account is the recipient's address; expiry, revocation and download limits answer 410.
"""

import json
import uuid
from urllib.parse import urlencode

from django.conf import settings
from django.contrib.staticfiles import finders
from django.db import transaction
from django.http import FileResponse, Http404, HttpResponse, HttpResponseRedirect, JsonResponse
from django.middleware.csrf import get_token
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import (
    require_GET,
    require_http_methods,
    require_POST,
    require_safe,
)

from deliveries import audit
from deliveries.accel import accel_enabled, accel_response
from deliveries.downloads import (
    PIECE,
    _continues,
    _damaged,
    _exhausted,
    _limit_reached,
    _open_blob,
    counts_again,
    parse_range,
    ranged_headers,
    requested_range,
)
from deliveries.models import AuditEvent, Delivery, DeliveryFile, Download, KeyEntry, Recipient
from deliveries.receive_access import gone, not_found, recipient_view, resolve
from deliveries.receive_e2e_strings import page_strings
from deliveries.storage import StoreError, blob_store
from outbox.services import queue_mail
from secupass import sxf
from secupass.models import UserKey

# Below this size a browser without a streaming way to disk may assemble the file in memory.
MEMORY_LIMIT = 256 * 1024 * 1024
SW_SCOPE = "/r/"
# The page's policy plus hidden same-origin frames: the service worker's download starts in one.
PAGE_CSP_EXTRA = "; frame-src 'self'"


# -- what the reader may see --------------------------------------------------------------


def reader_key(user) -> UserKey | None:
    return UserKey.objects.active().filter(user=user).first()


def reader_entry(delivery: Delivery, key: UserKey | None) -> KeyEntry | None:
    if key is None:
        return None
    return KeyEntry.objects.filter(
        delivery=delivery, kind=KeyEntry.Kind.P256, key_ref=str(key.id)
    ).first()


def signing_key(delivery: Delivery) -> UserKey | None:
    """The sender's key that signed the delivery: the sender's key with the oldest entry
    (the one made when it was sent; a later reset does not change it)."""
    refs = list(
        KeyEntry.objects.filter(delivery=delivery, kind=KeyEntry.Kind.P256)
        .order_by("created_at", "pk")
        .values_list("key_ref", flat=True)
    )
    ids = []
    for ref in refs:
        try:
            ids.append(uuid.UUID(ref))
        except ValueError:
            continue
    found = {
        str(key.id): key
        for key in UserKey.objects.filter(user_id=delivery.sender_id, pk__in=ids)
        .exclude(status=UserKey.Status.ISSUED)
        .select_related("user")
    }
    return next((found[ref] for ref in refs if ref in found), None)


def visible_files(delivery: Delivery):
    return list(delivery.files.exclude(state=DeliveryFile.State.UPLOADING).order_by("created_at"))


def left_counts(recipient: Recipient, files) -> dict:
    """Downloads left per file id (None: no limit)."""
    limit = recipient.delivery.download_limit
    if limit is None:
        return {f.id: None for f in files}
    counts = dict(Download.objects.filter(recipient=recipient).values_list("file_id", "count"))
    return {f.id: max(0, limit - counts.get(f.id, 0)) for f in files}


def _e2e_access(request, rid):
    """The access of a ready recipient of a level 3/4 delivery, or None (404)."""
    access = resolve(request, rid)
    if access is None or not access.ready or access.delivery.server_holds_key:
        return None
    return access


def _json_error(message, status):
    return JsonResponse({"error": str(message)}, status=status)


# -- the delivery page ----------------------------------------------------------------------


def page(request, access):
    """The delivery page at levels 3 and 4, after the level-2 gate (called by
    ``receive_views.delivery``): create a key, wait for approval, or unlock."""
    recipient = access.recipient
    delivery = recipient.delivery
    key = reader_key(request.user)
    entry = reader_entry(delivery, key)
    state = "no_key" if key is None else ("waiting" if entry is None else "ready")
    here = reverse("receive:delivery", kwargs={"rid": recipient.pk})
    files = visible_files(delivery)
    left = left_counts(recipient, files)
    rows = [{"file": f, "number": n, "left": left[f.id]} for n, f in enumerate(files, start=1)]
    config = {
        "state": state,
        "rid": str(recipient.pk),
        "deliveryId": str(delivery.pk),
        "level": delivery.level,
        "email": request.user.email,
        "csrfToken": get_token(request),
        "memoryLimit": MEMORY_LIMIT,
        "urls": {
            "e2e": reverse("receive:e2e", kwargs={"rid": recipient.pk}),
            "downloaded": reverse("receive:downloaded", kwargs={"rid": recipient.pk}),
            "mine": reverse("keys_api:mine"),
            "pepper": reverse("keys_api:pepper"),
            "keyring": reverse("keys_api:keyring"),
            "serviceWorker": reverse("receive:service_worker"),
            "serviceWorkerScope": SW_SCOPE,
        },
        "strings": page_strings(MEMORY_LIMIT),
    }
    if key is not None and state == "waiting":
        config["ownKey"] = {
            "ecdh_public": sxf.b64u_encode(key.ecdh_public_bytes),
            "ecdsa_public": sxf.b64u_encode(key.ecdsa_public_bytes),
        }
    context = {
        "recipient": recipient,
        "delivery": delivery,
        "sender": delivery.sender,
        "state": state,
        "key": key,
        "rows": rows,
        "total_size": sum(f.size for f in files),
        "create_url": reverse("keys:create") + "?" + urlencode({"next": here}),
        "config": config,
        "memory_limit": MEMORY_LIMIT,
    }
    response = render(request, "deliveries/receive/e2e.html", context)
    response["Content-Security-Policy"] = settings.CONTENT_SECURITY_POLICY + PAGE_CSP_EXTRA
    return response


# -- the JSON the page (and the CLI) decrypts with ------------------------------------------


def _public(key: UserKey) -> dict:
    return {
        "key_id": str(key.id),
        "email": key.user.email,
        "ecdh_public": sxf.b64u_encode(key.ecdh_public_bytes),
        "ecdsa_public": sxf.b64u_encode(key.ecdsa_public_bytes),
        "fingerprint": key.shown_fingerprint,
    }


@never_cache
@require_GET
def e2e(request, rid):
    """``/r/<id>/e2e``: everything needed to open the delivery, none of it readable here."""
    access = _e2e_access(request, rid)
    if access is None:
        return _json_error(_("Not found."), 404)
    recipient, delivery = access.recipient, access.delivery
    reason = recipient.unavailable_reason()
    if reason:
        return _json_error(reason, 410)
    key = reader_key(request.user)
    entry = reader_entry(delivery, key)
    sender_key = signing_key(delivery)
    files = visible_files(delivery)
    left = left_counts(recipient, files)
    level4 = delivery.level == Delivery.Level.SECUPASS_PLUS
    listed = []
    for f in files:
        item = {
            "id": str(f.id),
            "size": f.size,
            "blob_size": f.blob_size,
            "left": left[f.id],
            "url": reverse("receive:blob", kwargs={"rid": recipient.pk, "file_id": f.id}),
        }
        if not level4:
            item["name"] = f.name
        listed.append(item)
    data = {
        "delivery_id": str(delivery.id),
        "level": delivery.level,
        "subject": delivery.subject,
        "expires_at": delivery.expires_at.isoformat(),
        "manifest": sxf.b64u_encode(bytes(delivery.manifest or b"")),
        "signature": sxf.b64u_encode(bytes(delivery.signature or b"")),
        "sender": {"email": delivery.sender.email, "name": delivery.sender.get_full_name()},
        "sender_key": _public(sender_key) if sender_key else None,
        "reader": {"key_id": str(key.id)} if key else None,
        "entry": entry.data if entry else None,
        "files": listed,
        "downloaded_url": reverse("receive:downloaded", kwargs={"rid": recipient.pk}),
    }
    if not level4:
        data["message"] = delivery.message
        data["message_sha256"] = delivery.message_sha256
    return JsonResponse(data)


# -- ciphertext -----------------------------------------------------------------------------


class _Limited:
    """The next ``length`` bytes of a binary file (a bounded byte range)."""

    def __init__(self, blob, length: int):
        self.blob = blob
        self.left = length

    def read(self, size: int = -1) -> bytes:
        if self.left <= 0:
            return b""
        size = self.left if size is None or size < 0 else min(size, self.left)
        data = self.blob.read(size)
        self.left -= len(data)
        return data

    def close(self) -> None:
        self.blob.close()


def _take(recipient: Recipient, f: DeliveryFile, *, count: bool) -> str | None:
    """Check availability and count the fetch, atomically; the reason if it may not go."""
    with transaction.atomic():
        fresh = Recipient.objects.select_related("delivery").get(pk=recipient.pk)
        reason = fresh.unavailable_reason()
        if reason:
            return reason
        if count and not Download.take(fresh, [f], fresh.delivery.download_limit):
            return "limit"
    return None


@require_http_methods(["GET", "HEAD"])
@recipient_view
def blob(request, access, file_id):
    """``/r/<id>/blobs/<file id>``: the stored SXF1 blob as it is, with Range.

    Counted against the download limit like a download; a range that continues a fetch
    counted in the last day is not counted again. The audit event is written when the
    browser reports the file decrypted and verified (:func:`downloaded`). Behind nginx
    (ACCEL_REDIRECT_PREFIX) the bytes go out through X-Accel-Redirect (deliveries.accel).
    """
    recipient, delivery = access.recipient, access.delivery
    if not access.ready or delivery.server_holds_key:
        return not_found(request)
    f = delivery.files.exclude(state=DeliveryFile.State.UPLOADING).filter(pk=file_id).first()
    if f is None or reader_entry(delivery, reader_key(request.user)) is None:
        return not_found(request)
    if request.method == "GET":
        url = blob_store().presigned_url(f.storage_name, f"{f.id}.sxf", settings.S3_PRESIGN_SECONDS)
        if url is not None:
            return _to_store(request, recipient, f, url)
    name = f"{f.id}.sxf"
    span = requested_range(request, f, f.blob_size, name)
    if isinstance(span, HttpResponse):
        return span
    count = counts_again(recipient, f, span)
    if count and _exhausted(recipient, [f]):
        return _limit_reached(request, recipient, [f])
    if request.method == "HEAD":
        response = HttpResponse(status=span.status, content_type="application/octet-stream")
    else:
        try:
            stored = _open_blob(f)
        except (sxf.SXFError, StoreError) as e:
            return _damaged(request, delivery, e)
        accel = None
        if accel_enabled():
            stored.close()  # its header is checked; nginx sends the bytes
            try:
                accel = accel_response(f.storage_name, name, f.blob_size)
            except StoreError as e:
                return _damaged(request, delivery, e)
        reason = _take(recipient, f, count=count)
        if reason is not None:
            stored.close()
            if reason == "limit":
                return _limit_reached(request, recipient, [f])
            return gone(request, recipient, reason)
        if accel is not None:
            return accel  # nginx answers Range, ETag and Last-Modified itself
        stored.seek(span.start)
        body = stored if span.end == f.blob_size - 1 else _Limited(stored, span.length)
        response = FileResponse(body, status=span.status, content_type="application/octet-stream")
        response.block_size = PIECE  # where the server cannot sendfile()
    return ranged_headers(response, f, name, span)


def _to_store(request, recipient: Recipient, f: DeliveryFile, url: str):
    """On S3: count the fetch as :func:`blob` does, then send the browser to a short-lived
    presigned URL of the object. The store answers Range and If-Range itself (the bucket's
    CORS rule lets the page read the answer)."""
    wanted = parse_range(request.headers.get("Range"), f.blob_size)
    start = wanted[0] if isinstance(wanted, tuple) else 0
    count = not (start > 0 and _continues(recipient, f))
    if count and _exhausted(recipient, [f]):
        return _limit_reached(request, recipient, [f])
    reason = _take(recipient, f, count=count)
    if reason == "limit":
        return _limit_reached(request, recipient, [f])
    if reason is not None:
        return gone(request, recipient, reason)
    response = HttpResponseRedirect(url)
    response["Cache-Control"] = "no-store"
    return response


# -- a verified download --------------------------------------------------------------------


def _receipt(delivery: Delivery, recipient: Recipient, f: DeliveryFile, now) -> None:
    sender = delivery.sender
    queue_mail(
        sender.email,
        "download_receipt",
        {
            "recipient_email": recipient.email,
            "subject": delivery.subject,
            "file_names": [f.name] if delivery.level < Delivery.Level.SECUPASS_PLUS else [],
            "file_count": 1,
            "downloaded_at": now.isoformat(),
            "delivery_url": f"{settings.SITE_URL}/sent/{delivery.id}/",
        },
        language=sender.language,
    )


@csrf_exempt
@never_cache
@require_POST
def downloaded(request, rid):
    """``POST /r/<id>/downloaded`` ``{"file_id"}``: the browser (or the CLI) decrypted and
    verified a file it fetched from :func:`blob`. Records ``downloaded`` and, the first time
    for that file, sends the receipt the sender asked for.

    Like ``/api/v1/receive`` it takes only ``application/json``, which no other site can
    send cross-origin without a CORS preflight, so it needs no CSRF token (the CLI has none).
    """
    access = _e2e_access(request, rid)
    if access is None:
        return _json_error(_("Not found."), 404)
    recipient, delivery = access.recipient, access.delivery
    if request.content_type != "application/json":
        return _json_error(_("Send a JSON object with the field file_id."), 400)
    try:
        data = json.loads(request.body or b"{}")
        file_id = uuid.UUID(str(data["file_id"]))
    except (ValueError, TypeError, KeyError, UnicodeDecodeError):
        return JsonResponse(
            {"errors": {"file_id": [_("Give the id of the file you downloaded.")]}}, status=400
        )
    f = delivery.files.exclude(state=DeliveryFile.State.UPLOADING).filter(pk=file_id).first()
    if f is None:
        return _json_error(_("Not found."), 404)
    now = timezone.now()
    with transaction.atomic():
        fetched = (
            Download.objects.select_for_update()
            .filter(recipient=recipient, file=f, count__gte=1)
            .first()
        )
        if fetched is None:
            return _json_error(_("This file has not been fetched with this link."), 409)
        first = not AuditEvent.objects.filter(
            kind=AuditEvent.Kind.DOWNLOADED, recipient=recipient, detail__file=str(f.id)
        ).exists()
        Recipient.objects.filter(pk=recipient.pk, downloaded_at__isnull=True).update(
            downloaded_at=now
        )
        audit.record(
            AuditEvent.Kind.DOWNLOADED,
            request=request,
            recipient=recipient,
            file=str(f.id),
            size=f.size,
            e2e=True,
        )
        if first and delivery.notify_on_download:
            _receipt(delivery, recipient, f, now)
    return JsonResponse({"recorded": True, "first": first})


# -- the service worker ---------------------------------------------------------------------


@require_safe
def service_worker(request):
    """``/r/sw.js``: served here, not under /static/, so that its scope covers /r/ (the
    download URLs it answers with a stream from the page)."""
    path = finders.find("js/sw.js")
    if not path:
        raise Http404
    with open(path, "rb") as source:
        response = HttpResponse(source.read(), content_type="text/javascript; charset=utf-8")
    response["Cache-Control"] = "no-cache"
    response["Service-Worker-Allowed"] = SW_SCOPE
    return response
