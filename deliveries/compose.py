"""The compose page: the form a sender fills in, and the configuration its JavaScript needs.

The page itself stores nothing. ``static/js/compose.js`` creates the delivery through the JSON
API, encrypts every file in the browser (SXF1, ``static/js/sxf.js``) and uploads the ciphertext
with tus (``static/js/tus.js``); the server only ever sees encrypted bytes.
"""

import uuid

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.shortcuts import render
from django.templatetags.static import static
from django.urls import NoReverseMatch, reverse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.cache import never_cache

from deliveries.forms import AVAILABLE_LEVELS, MAX_DOWNLOAD_LIMIT
from deliveries.models import Delivery

# All four levels: compose.js sends 1 and 2 with the delivery key, 3 and 4 with key entries,
# the manifest and the signature made in static/js/compose_e2e.js.

LEVEL_EXPLANATIONS = {
    Delivery.Level.ADDRESS: gettext_lazy(
        "The recipient opens the personal link and types the e-mail address it was sent to."
    ),
    Delivery.Level.ACCOUNT: gettext_lazy(
        "As level 1, then the recipient logs in with a free guest account for exactly that address."
    ),
    Delivery.Level.SECUPASS: gettext_lazy(
        "As level 2, and only the recipient's personal SecuPass key opens the files: the "
        "server cannot read them."
    ),
    Delivery.Level.SECUPASS_PLUS: gettext_lazy(
        "As level 3, and the file names and the message are end-to-end encrypted too."
    ),
}

API_DELIVERIES = "/api/v1/deliveries"
API_UPLOADS = "/api/v1/uploads/"
# Stored bytes per tus PATCH request: large enough that the per-request cost on the server
# (auth, lock, fsync, database) stays small (16 MiB uploaded about a fifth faster than 8 MiB
# here), small enough that a retry resends little and the ciphertext kept for it stays small.
UPLOAD_BATCH = 16 * 1024 * 1024
_PLACEHOLDER = uuid.UUID(int=0)


def sent_url_template() -> str:
    """The sent page of a delivery with the id replaced by ``{id}``."""
    try:
        url = reverse("sender:detail", kwargs={"pk": _PLACEHOLDER})
    except NoReverseMatch:
        url = f"/sent/{_PLACEHOLDER}/"
    return url.replace(str(_PLACEHOLDER), "{id}")


def js_strings() -> dict:
    """Every sentence compose.js may show, translated into the page's language.

    Placeholders in braces are filled in by the script.
    """
    return {
        "noFiles": _("Add at least one file."),
        "fileChanged": _("the file changed while it was being read; add it again"),
        "badLength": _("the encrypted file came out at an unexpected length; add it again"),
        "encryptionFailed": _("the file could not be encrypted in this browser; add it again"),
        "tooManyFiles": _("A delivery can hold at most {max} files."),
        "tooLarge": _("This file is larger than the limit of {limit} per file."),
        "duplicate": _("This file has been added already."),
        "noRecipients": _("Add at least one recipient."),
        "notAddress": _("not an e-mail address"),
        "recipientCount": _("{count} recipient(s):"),
        "creating": _("Creating the delivery…"),
        "uploading": _("Encrypting and uploading {count} file(s)…"),
        "sending": _("All files are uploaded. Sending the mails…"),
        "sent": _("Sent. Opening the delivery…"),
        "waiting": _("waiting"),
        "preparing": _("encrypting…"),
        "progress": _("{done} of {total}"),
        "rate": _("{speed}/s, {left} left"),
        "done": _("uploaded"),
        "removed": _("removed"),
        "retrying": _("Connection interrupted, trying again in {seconds} s…"),
        "failed": _("Not uploaded: {error}"),
        "someFailed": _(
            "Some files could not be uploaded. Remove them or try again; nothing has been sent yet."
        ),
        "networkError": _("The server could not be reached. Check your connection."),
        "serverError": _("The server answered with an error ({status}). Please try again."),
        "lostUpload": _("The server lost part of this upload; it will start again."),
        "sendFailed": _("The delivery could not be sent: {error}"),
        "remove": _("Remove"),
        "cancel": _("Cancel upload"),
        "retry": _("Try again"),
        "needsFile": _("select this file again"),
        "resumeTitle": _("An unfinished delivery “{subject}” was found."),
        "resumeAllDone": _("All its files are uploaded. Continue to send it."),
        "resumeSelect": _(
            "Files that were uploaded completely are kept. Select the other files again "
            "(the same files from this device): they are encrypted and uploaded again from "
            "the start, since the page was reloaded."
        ),
        "resumeNotMatched": _(
            "“{name}” is not one of the files of this delivery (name, size and date must match)."
        ),
        "resumeMissing": _("Select the missing files again or remove them first."),
        "discardConfirm": _("Delete this unfinished delivery and its uploaded files?"),
        "leaveWarning": _("Files are still being uploaded."),
        "noCrypto": _(
            "This browser cannot encrypt files (WebCrypto is missing or the page is not "
            "served over HTTPS). Please use a current browser."
        ),
    }


@never_cache
@login_required
def compose(request):
    if not request.user.is_sender:
        raise PermissionDenied(_("Only internal senders can send files."))
    levels = [
        {
            "value": int(level),
            "label": level.label,
            "explanation": LEVEL_EXPLANATIONS[level],
            "available": level in AVAILABLE_LEVELS,
        }
        for level in Delivery.Level
    ]
    language = request.user.language
    if language not in dict(settings.LANGUAGES):
        language = settings.LANGUAGE_CODE
    config = {
        "api": API_DELIVERIES,
        "uploads": API_UPLOADS,
        "sentUrl": sent_url_template(),
        "batchBytes": min(UPLOAD_BATCH, settings.TUS_MAX_CHUNK),
        "sealWorker": static("js/seal_worker.js"),
        "maxFileSize": settings.MAX_FILE_SIZE,
        "maxFiles": settings.MAX_FILES_PER_DELIVERY,
        "maxRecipients": settings.MAX_RECIPIENTS,
        "strings": js_strings(),
    }
    return render(
        request,
        "deliveries/compose.html",
        {
            "levels": levels,
            "default_level": AVAILABLE_LEVELS[0].value,
            "default_days": settings.DELIVERY_DEFAULT_DAYS,
            "max_days": settings.DELIVERY_MAX_DAYS,
            "languages": settings.LANGUAGES,
            "default_language": language,
            "max_file_size": settings.MAX_FILE_SIZE,
            "max_files": settings.MAX_FILES_PER_DELIVERY,
            "max_download_limit": MAX_DOWNLOAD_LIMIT,
            "config": config,
        },
    )
