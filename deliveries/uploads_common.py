"""What every tus response of the upload server shares (see ``deliveries.uploads``)."""

import uuid
from datetime import timedelta

from django.conf import settings
from django.http import JsonResponse
from django.utils import timezone
from django.utils.http import http_date
from django.utils.translation import gettext as _

from deliveries.models import DeliveryFile
from deliveries.storage import blob_store
from secupass import sxf

TUS_VERSION = "1.0.0"
TUS_EXTENSIONS = "creation,termination,expiration"
OFFSET_STREAM = "application/offset+octet-stream"


def error(status: int, message, **headers) -> JsonResponse:
    response = JsonResponse({"error": str(message)}, status=status)
    for name, value in headers.items():
        response[name.replace("_", "-")] = value
    return response


def max_blob_size() -> int:
    return sxf.blob_length(settings.MAX_FILE_SIZE)


def expires_at(f: DeliveryFile):
    return f.touched_at + timedelta(hours=settings.UPLOAD_EXPIRY_HOURS)


def upload_headers(response, f: DeliveryFile):
    """Upload-Offset always; Upload-Expires while the upload is unfinished."""
    response["Upload-Offset"] = str(f.offset)
    if f.state == DeliveryFile.State.UPLOADING:
        response["Upload-Expires"] = http_date(expires_at(f).timestamp())
    return response


def owned_file(request, file_id: str) -> DeliveryFile | None:
    try:
        pk = uuid.UUID(file_id)
    except ValueError:
        return None
    return (
        DeliveryFile.objects.select_related("delivery")
        .filter(pk=pk, delivery__sender=request.api_user)
        .first()
    )


def not_found():
    return error(404, _("There is no such upload. Start the upload again."))


def gone():
    return error(
        410,
        _("This upload was not continued for %(hours)d hours and has expired. Start it again.")
        % {"hours": settings.UPLOAD_EXPIRY_HOURS},
    )


def not_draft():
    return error(403, _("This delivery has been sent already; its files can no longer change."))


def is_expired(f: DeliveryFile) -> bool:
    return f.state == DeliveryFile.State.UPLOADING and expires_at(f) <= timezone.now()


def delete_file(f: DeliveryFile) -> None:
    DeliveryFile.objects.filter(pk=f.pk).delete()
    blob_store().delete(f.storage_name)
