"""Ciphertext sent by nginx instead of the app (``X-Accel-Redirect``).

With ``ACCEL_REDIRECT_PREFIX`` set (deploy/nginx.conf: an ``internal`` location that aliases
MEDIA_ROOT), a level 3/4 blob download is checked and counted by the view as always, and then
answered with an empty response naming the blob; nginx sends the file itself, with sendfile
and Range, and the web worker is free at once.

nginx keeps the headers Content-Type, Content-Disposition and Cache-Control of this response
and drops the others, so its internal location adds nosniff and the sandboxing policy itself.
"""

from urllib.parse import quote

from django.conf import settings
from django.http import HttpResponse

from deliveries.receive_names import content_disposition
from deliveries.storage import LocalBlobStore, StoreError, blob_store


def accel_enabled() -> bool:
    """nginx can send blobs: the prefix is configured and blobs are files on this machine."""
    return bool(settings.ACCEL_REDIRECT_PREFIX) and isinstance(blob_store(), LocalBlobStore)


def accel_response(storage_name: str, filename: str, size: int) -> HttpResponse:
    """Let nginx send the whole stored blob ``storage_name`` (``size`` bytes) as ``filename``.

    Raises StoreError when the blob is missing or not ``size`` bytes long, so nginx never
    sends a file that does not match its record. Range requests are answered by nginx.
    """
    if blob_store().size(storage_name) != size:
        raise StoreError(f"blob {storage_name} does not have the {size} bytes recorded")
    response = HttpResponse(content_type="application/octet-stream")
    response["X-Accel-Redirect"] = settings.ACCEL_REDIRECT_PREFIX + quote(storage_name)
    response["Content-Disposition"] = content_disposition(filename)
    response["X-Content-Type-Options"] = "nosniff"
    response["Content-Security-Policy"] = "sandbox; default-src 'none'"
    response["Cache-Control"] = "no-store"
    return response
