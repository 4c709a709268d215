"""The tus 1.0.0 upload server: core, creation, termination and expiration.

https://tus.io/protocols/resumable-upload. A client creates an upload for one SXF1
blob of a draft delivery (POST with ``Upload-Length`` and ``Upload-Metadata``
``delivery``, ``filename``, ``filetype``, ``size``), learns the file id from
``Location`` (the blob header names it), then sends the ciphertext with PATCH; HEAD
says how much arrived, so an interrupted upload resumes. The upload state lives in
the database, so any web process can take any request; a PATCH holds the blob's
writer lock from checking the offset until the new offset is recorded.

Limits and quota are checked before a byte is stored, and the 80-byte header is
checked as soon as it has arrived. Every response carries ``Tus-Resumable`` and
``Cache-Control: no-store``; refusals carry ``{"error": sentence}``.
"""

from django.http import HttpResponse
from django.urls import path
from django.utils.translation import gettext as _
from django.views.decorators.csrf import csrf_exempt

from accounts.apiauth import api_auth
from deliveries import uploads_meta as meta
from deliveries.models import Delivery
from deliveries.uploads_common import (
    TUS_EXTENSIONS,
    TUS_VERSION,
    delete_file,
    error,
    gone,
    is_expired,
    max_blob_size,
    not_draft,
    not_found,
    owned_file,
    upload_headers,
)
from deliveries.uploads_create import create
from deliveries.uploads_patch import patch

app_name = "uploads"


def _dispatch(request, handlers, *args):
    # tus: X-HTTP-Method-Override is the method. Setting it before authentication
    # means the CSRF check of session requests sees the real intent.
    override = request.headers.get("X-HTTP-Method-Override")
    if override:
        request.method = override.strip().upper()
    if request.method == "OPTIONS":
        response = HttpResponse(status=204)
        response["Tus-Version"] = TUS_VERSION
        response["Tus-Extension"] = TUS_EXTENSIONS
        response["Tus-Max-Size"] = str(max_blob_size())
        response["Allow"] = ", ".join(["OPTIONS", *handlers])
    elif request.method not in handlers:
        response = error(
            405,
            _("This address does not accept %(method)s.") % {"method": request.method[:20]},
            Allow=", ".join(["OPTIONS", *handlers]),
        )
    elif request.headers.get("Tus-Resumable") != TUS_VERSION:
        response = error(
            412,
            _("This server speaks tus %(version)s; send the header Tus-Resumable: %(version)s.")
            % {"version": TUS_VERSION},
            Tus_Version=TUS_VERSION,
        )
    else:
        response = handlers[request.method](request, *args)
    response["Tus-Resumable"] = TUS_VERSION
    response["Cache-Control"] = "no-store"
    if request.method == "HEAD":
        response.content = b""
    return response


@api_auth
def head(request, file_id):
    f = owned_file(request, file_id)
    if f is None:
        return not_found()
    if is_expired(f):
        return gone()
    response = HttpResponse(status=200)
    response["Upload-Length"] = str(f.blob_size)
    response["Upload-Metadata"] = meta.encode_metadata(
        {
            "delivery": str(f.delivery_id),
            "filename": f.name,
            "filetype": f.content_type,
            "size": str(f.size),
        }
    )
    return upload_headers(response, f)


@api_auth
def terminate(request, file_id):
    f = owned_file(request, file_id)
    if f is None:
        return not_found()
    if f.delivery.status != Delivery.Status.DRAFT:
        return not_draft()
    delete_file(f)
    return HttpResponse(status=204)


@csrf_exempt
def collection(request):
    return _dispatch(request, {"POST": create})


@csrf_exempt
def resource(request, file_id):
    return _dispatch(request, {"HEAD": head, "PATCH": patch, "DELETE": terminate}, file_id)


urlpatterns = [
    path("", collection, name="collection"),
    path("<str:file_id>", resource, name="file"),
]
