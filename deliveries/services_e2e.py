"""Sending at levels 3 and 4 (DESIGN.md section 4): the server gets only ciphertext.

The sender's client encrypts the files, wraps the delivery key for the sender's own public
key and for every recipient key the sender has approved (public-key entries), seals the
manifest and signs it. The server cannot open any of it; it checks what it can (the shape
of every entry, whose keys they are for, every blob's header and length) and stores it,
then sends the mails exactly as at levels 1 and 2. A recipient without an entry for their
active key is "waiting for key" until the sender approves it (``deliveries.approvals``).
"""

import hashlib
import json
import re
from dataclasses import dataclass

from django.db import transaction
from django.db.models import Q
from django.utils.translation import gettext as _

from accounts.models import User
from deliveries.models import Delivery, DeliveryFile, KeyEntry
from deliveries.services import SendError, check_sendable, go_out, lock_draft
from deliveries.storage import StoreError, blob_store
from secupass import sxf
from secupass.models import UserKey

# A level 4 manifest carries the message (at most 20,000 characters of up to 4 bytes each)
# and up to MAX_FILES_PER_DELIVERY names; base64url adds a third.
MAX_BODY = 2 * 1024 * 1024  # below DATA_UPLOAD_MAX_MEMORY_SIZE
MAX_MANIFEST = 1024 * 1024
MIN_MANIFEST = 12 + len('{"files":[],"message":""}') + 16
SIGNATURE_LEN = 64
_HEX64 = re.compile(r"[0-9a-f]{64}")
BODY_FIELDS = {"entries", "manifest", "signature", "message_sha256"}


@dataclass(frozen=True)
class SendBody:
    entries: list
    manifest: bytes
    signature: bytes
    message_sha256: str


def parse_body(raw: bytes) -> SendBody:
    """The JSON body of ``POST /api/v1/deliveries/<id>/send`` at levels 3 and 4."""
    if len(raw) > MAX_BODY:
        raise SendError(_("The request body is too large."))
    try:
        data = json.loads(raw or b"{}")
    except (ValueError, UnicodeDecodeError):
        raise SendError(_("The request body is not valid JSON.")) from None
    if not isinstance(data, dict):
        raise SendError(_("The request body must be a JSON object."))
    unknown = sorted(set(data) - BODY_FIELDS)
    if unknown:
        raise SendError(
            _("Unknown fields: %(unknown)s. Known fields: %(known)s.")
            % {"unknown": ", ".join(unknown), "known": ", ".join(sorted(BODY_FIELDS))}
        )
    entries = data.get("entries")
    if not isinstance(entries, list) or not entries:
        raise SendError(_("“entries” must be a list of key entries, one at least (your own)."))
    manifest = _b64u(data.get("manifest"), "manifest")
    if not MIN_MANIFEST <= len(manifest) <= MAX_MANIFEST:
        raise SendError(_("The manifest is too short or too large."))
    signature = _b64u(data.get("signature"), "signature")
    if len(signature) != SIGNATURE_LEN:
        raise SendError(_("The signature must be 64 bytes (r || s)."))
    message_sha256 = data.get("message_sha256", "")
    if not isinstance(message_sha256, str):
        raise SendError(_("“message_sha256” must be 64 lowercase hex digits."))
    return SendBody(entries, manifest, signature, message_sha256)


def _b64u(value, name: str) -> bytes:
    if not isinstance(value, str) or not value:
        raise SendError(_("“%(name)s” is missing.") % {"name": name})
    try:
        return sxf.b64u_decode(value)
    except sxf.SXFError:
        raise SendError(_("“%(name)s” must be unpadded base64url.") % {"name": name}) from None


def active_keys_for(emails) -> dict[str, UserKey]:
    """The active SecuPass keys of these addresses, by address: only of active accounts
    whose address is known to be theirs (senders, and guests who verified it)."""
    found = (
        UserKey.objects.active()
        .select_related("user")
        .filter(user__email__in=list(emails), user__is_active=True)
        .filter(Q(user__kind=User.Kind.SENDER) | Q(user__email_verified_at__isnull=False))
    )
    return {key.user.email: key for key in found}


def readers_of(delivery: Delivery) -> dict[str, UserKey]:
    """The active keys of the delivery's recipients (not revoked), by key_id."""
    emails = delivery.recipients.filter(revoked_at__isnull=True).values_list("email", flat=True)
    return {str(key.id): key for key in active_keys_for(emails).values()}


def _check_entries(delivery: Delivery, entries: list, own: UserKey) -> dict[str, dict]:
    """The entries by key_id, each well formed and for the sender's or a recipient's key."""
    allowed = readers_of(delivery)
    allowed[str(own.id)] = own
    checked: dict[str, dict] = {}
    for number, entry in enumerate(entries, start=1):
        try:
            sxf.validate_entry(entry)
        except sxf.SXFError as e:
            raise SendError(
                _("Key entry %(number)d is malformed: %(error)s") % {"number": number, "error": e}
            ) from None
        if entry["kind"] != KeyEntry.Kind.P256:
            raise SendError(
                _("Key entry %(number)d is a server entry; levels 3 and 4 take public-key entries.")
                % {"number": number}
            )
        key_id = entry["key_id"]
        if key_id not in allowed:
            raise SendError(
                _(
                    "Key entry %(number)d is for a key that is neither yours nor the active "
                    "key of a recipient of this delivery."
                )
                % {"number": number}
            )
        if key_id in checked:
            raise SendError(
                _("Key entry %(number)d repeats a key that has an entry already.")
                % {"number": number}
            )
        checked[key_id] = entry
    if str(own.id) not in checked:
        raise SendError(
            _(
                "There is no key entry for your own key: without it you could not approve "
                "recipients' keys later."
            )
        )
    return checked


def _check_blobs(delivery: Delivery) -> None:
    """Every blob complete, with a header for this delivery and file and its exact length.

    The server cannot authenticate a level 3/4 blob (it has no key); the recipients' clients
    do, against the digests in the signed manifest.
    """
    store = blob_store()
    for number, f in enumerate(delivery.files.order_by("created_at", "pk"), start=1):
        label = f.name or _("file %(number)d") % {"number": number}
        if f.state == DeliveryFile.State.UPLOADING:
            raise SendError(_("The file “%(name)s” has not finished uploading.") % {"name": label})
        try:
            actual = store.size(f.storage_name)
            with store.open(f.storage_name) as blob:
                head = blob.read(sxf.HEADER_LEN)
            header = sxf.Header.parse(
                head, delivery_id=delivery.id, file_id=f.id, blob_length=actual
            )
            if actual != f.blob_size or header.length != f.size:
                raise sxf.FormatError(_("its size differs from the one announced for the upload"))
        except (sxf.SXFError, StoreError) as e:
            raise SendError(
                _("The file “%(name)s” arrived damaged (%(error)s). Please upload it again.")
                % {"name": label, "error": e}
            ) from e


def _check_level_fields(delivery: Delivery, message_sha256: str) -> str:
    """Level 3: the hash of the stored message; level 4: no message, no names on the server."""
    if delivery.level == Delivery.Level.SECUPASS:
        if not _HEX64.fullmatch(message_sha256):
            raise SendError(
                _("Level 3 needs “message_sha256”: the SHA-256 of the message, 64 hex digits.")
            )
        stored = hashlib.sha256(delivery.message.encode()).hexdigest()
        if stored != message_sha256:
            raise SendError(
                _(
                    "“message_sha256” does not match the message stored with this delivery; "
                    "hash the message exactly as the server stored it."
                )
            )
        return message_sha256
    if message_sha256:
        raise SendError(_("Level 4 has no “message_sha256”: the message is in the manifest."))
    if delivery.message:
        raise SendError(
            _("At level 4 the message belongs in the encrypted manifest, not in the delivery.")
        )
    if delivery.files.exclude(name="").exists():
        raise SendError(
            _("At level 4 file names belong in the encrypted manifest; upload without names.")
        )
    return ""


def send_e2e(
    delivery: Delivery,
    *,
    entries: list,
    manifest: bytes,
    signature: bytes,
    message_sha256: str,
    actor,
    request=None,
) -> None:
    """Send a level 3/4 draft: store entries, manifest and signature, then the mails."""
    if delivery.server_holds_key:
        raise SendError(_("Levels 1 and 2 are sent with the delivery key, not key entries."))
    check_sendable(delivery)
    own = UserKey.objects.active().filter(user=delivery.sender).first()
    if own is None:
        raise SendError(_("You have no SecuPass key; create one before sending at this level."))
    message_sha256 = _check_level_fields(delivery, message_sha256)
    checked = _check_entries(delivery, entries, own)
    _check_blobs(delivery)
    with transaction.atomic():
        locked = lock_draft(delivery)
        if not UserKey.objects.active().filter(pk=own.pk).exists():
            raise SendError(_("Your SecuPass key was replaced meanwhile; reload and send again."))
        for key_id, entry in checked.items():
            KeyEntry.objects.create(
                delivery=locked, kind=KeyEntry.Kind.P256, key_ref=key_id, data=entry
            )
        locked.manifest = manifest
        locked.signature = signature
        locked.message_sha256 = message_sha256
        locked.save(update_fields=["manifest", "signature", "message_sha256"])
        go_out(locked, actor=actor, request=request)
    delivery.refresh_from_db()


def waiting_state(delivery: Delivery, recipients) -> dict:
    """Per recipient id of a sent level 3/4 delivery: "no_key" (the address has no SecuPass
    key yet) or "approval" (it has one, but no entry: the sender must approve it). Recipients
    who can open the delivery are left out."""
    if delivery.server_holds_key or delivery.status == Delivery.Status.DRAFT:
        return {}
    found = active_keys_for(r.email for r in recipients)
    keys = {email: str(key.id) for email, key in found.items()}
    entries = set(
        KeyEntry.objects.filter(delivery=delivery, kind=KeyEntry.Kind.P256).values_list(
            "key_ref", flat=True
        )
    )
    state = {}
    for r in recipients:
        key_id = keys.get(r.email)
        if key_id is None:
            state[r.pk] = "no_key"
        elif key_id not in entries:
            state[r.pk] = "approval"
    return state
