"""Approving recipients' SecuPass keys (DESIGN.md section 1): the sender's browser re-wraps.

A recipient of an active level 3/4 delivery whose active key has no entry in it is *pending*:
they created a key after the delivery went out, reset theirs, or the sender had not approved
their key yet. The sender compares the key's fingerprint with the recipient by another
channel, then the sender's browser (or the CLI) unwraps each waiting delivery's key from the
sender's own entry, wraps it for the recipient's key and posts the new entries here; the
server stores them and mails the recipient. Nothing is sent again, and the server never
sees a delivery key.

- ``GET /api/v1/approvals``: the caller's pending keys with the deliveries waiting for each.
- ``POST /api/v1/approvals`` ``{key_id, entries: [{delivery_id, entry}]}``: store entries.
- ``/approvals/``: the page (``static/js/approvals.js`` does the work).
"""

import json
import uuid
from dataclasses import dataclass, field

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.db import transaction
from django.http import Http404, JsonResponse
from django.middleware.csrf import get_token
from django.shortcuts import render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache

from accounts.apiauth import api_auth
from deliveries import audit
from deliveries.models import AuditEvent, Delivery, KeyEntry, Recipient
from deliveries.services_e2e import active_keys_for
from outbox.services import queue_mail
from secupass import sxf
from secupass.models import UserKey

MAX_BODY = 2 * 1024 * 1024


class Refused(Exception):
    """A request that changes nothing, with the reason for the person or the script."""

    def __init__(self, message, status=400):
        super().__init__(message)
        self.status = status


@dataclass
class Waiting:
    recipient: Recipient
    sender_entry: dict | None  # the sender's own entry; None if sent with an older key

    @property
    def delivery(self) -> Delivery:
        return self.recipient.delivery


@dataclass
class PendingKey:
    key: UserKey
    waiting: list[Waiting] = field(default_factory=list)
    replaces_key: bool = False  # the recipient had a key before (a reset)

    @property
    def email(self) -> str:
        return self.key.user.email


def own_key(sender) -> UserKey | None:
    return UserKey.objects.active().filter(user=sender).first()


def pending_for(sender) -> list[PendingKey]:
    """The keys waiting for this sender's approval, by address, each with its deliveries."""
    recipients = list(
        Recipient.objects.filter(
            delivery__in=Delivery.objects.active().filter(
                sender=sender, level__in=(Delivery.Level.SECUPASS, Delivery.Level.SECUPASS_PLUS)
            ),
            revoked_at__isnull=True,
        )
        .select_related("delivery")
        .order_by("email", "delivery__sent_at")
    )
    keys = active_keys_for({r.email for r in recipients})
    if not keys:
        return []
    entries = {
        (delivery_id, key_ref): data
        for delivery_id, key_ref, data in KeyEntry.objects.filter(
            delivery__in={r.delivery_id for r in recipients}, kind=KeyEntry.Kind.P256
        ).values_list("delivery_id", "key_ref", "data")
    }
    mine = own_key(sender)
    pending: dict[str, PendingKey] = {}
    for r in recipients:
        key = keys.get(r.email)
        if key is None or (r.delivery_id, str(key.id)) in entries:
            continue
        item = pending.setdefault(str(key.id), PendingKey(key))
        sender_entry = entries.get((r.delivery_id, str(mine.id))) if mine else None
        item.waiting.append(Waiting(r, sender_entry))
    earlier = set(
        UserKey.objects.filter(
            user__in=[p.key.user_id for p in pending.values()], status=UserKey.Status.RETIRED
        ).values_list("user_id", flat=True)
    )
    for item in pending.values():
        item.replaces_key = item.key.user_id in earlier
    return sorted(pending.values(), key=lambda p: p.email)


def _iso(value):
    return value.isoformat() if value else None


def pending_json(item: PendingKey) -> dict:
    key = item.key
    return {
        "key_id": str(key.id),
        "email": item.email,
        "ecdh_public": sxf.b64u_encode(key.ecdh_public_bytes),
        "ecdsa_public": sxf.b64u_encode(key.ecdsa_public_bytes),
        # For reading out only: clients recompute the fingerprint from the public keys.
        "fingerprint": key.shown_fingerprint,
        "created_at": _iso(key.activated_at),
        "replaces_key": item.replaces_key,
        "deliveries": [
            {
                "delivery_id": str(w.delivery.id),
                "recipient_id": str(w.recipient.id),
                "subject": w.delivery.subject,
                "level": w.delivery.level,
                "sent_at": _iso(w.delivery.sent_at),
                "expires_at": _iso(w.delivery.expires_at),
                "manifest": sxf.b64u_encode(bytes(w.delivery.manifest or b"")),
                "signature": sxf.b64u_encode(bytes(w.delivery.signature or b"")),
                "sender_entry": w.sender_entry,
            }
            for w in item.waiting
        ],
    }


# -- approving ------------------------------------------------------------------------------


def _read_items(data: dict, key_id: str) -> dict[str, dict]:
    """{delivery_id: entry} from the request, each entry a well-formed entry for key_id."""
    items = data.get("entries")
    if not isinstance(items, list) or not items:
        raise Refused(_("“entries” must be a list of {delivery_id, entry}, one at least."))
    found: dict[str, dict] = {}
    for number, item in enumerate(items, start=1):
        if not isinstance(item, dict) or set(item) != {"delivery_id", "entry"}:
            raise Refused(
                _("Item %(number)d must have exactly delivery_id and entry.") % {"number": number}
            )
        entry = item["entry"]
        try:
            sxf.validate_entry(entry)
        except sxf.SXFError as e:
            raise Refused(
                _("The entry of item %(number)d is malformed: %(error)s")
                % {"number": number, "error": e}
            ) from None
        if entry["kind"] != KeyEntry.Kind.P256 or entry["key_id"] != key_id:
            raise Refused(
                _("The entry of item %(number)d is not a public-key entry for key %(key)s.")
                % {"number": number, "key": key_id}
            )
        delivery_id = str(item["delivery_id"])
        if delivery_id in found:
            raise Refused(_("Delivery %(id)s is listed twice.") % {"id": delivery_id})
        found[delivery_id] = entry
    return found


def approve(sender, data: dict, *, request=None) -> dict:
    """Store the sender's new entries for one pending key; mail the recipient once."""
    key_id = data.get("key_id")
    if not isinstance(key_id, str) or not key_id:
        raise Refused(_("“key_id” is missing."))
    with transaction.atomic():
        pending = {p.key.id: p for p in pending_for(sender)}
        try:
            item = pending[uuid.UUID(key_id)]
        except (KeyError, ValueError):
            raise Refused(_("No key with this id is waiting for your approval."), 404) from None
        items = _read_items(data, str(item.key.id))
        waiting = {str(w.delivery.id): w for w in item.waiting}
        unknown = sorted(set(items) - set(waiting))
        if unknown:
            raise Refused(
                _("Delivery %(id)s is not waiting for this key (approved already, or not yours).")
                % {"id": unknown[0]}
            )
        approved = []
        for delivery_id, entry in items.items():
            w = waiting[delivery_id]
            _entry, created = KeyEntry.objects.get_or_create(
                delivery=w.delivery,
                kind=KeyEntry.Kind.P256,
                key_ref=str(item.key.id),
                defaults={"data": entry},
            )
            if not created:
                continue
            approved.append(w)
            audit.record(
                AuditEvent.Kind.KEY_APPROVED,
                request=request,
                actor=sender,
                delivery=w.delivery,
                recipient=w.recipient,
                key_id=str(item.key.id),
                fingerprint=item.key.shown_fingerprint,
            )
        if approved:
            _mail_recipient(sender, item.key, approved)
    return {
        "key_id": str(item.key.id),
        "approved": [str(w.delivery.id) for w in approved],
        "still_waiting": len(waiting) - len(items),
    }


def _mail_recipient(sender, key: UserKey, approved: list[Waiting]) -> None:
    deliveries = []
    for w in approved:
        bound = w.recipient.user_id == key.user_id
        url = reverse("receive:delivery", kwargs={"rid": w.recipient.id}) if bound else ""
        deliveries.append(
            {"subject": w.delivery.subject, "url": settings.SITE_URL + url if url else ""}
        )
    queue_mail(
        key.user.email,
        "key_approved",
        {
            "sender_name": sender.get_full_name(),
            "sender_email": sender.email,
            "deliveries": deliveries,
            "received_url": settings.SITE_URL + reverse("receive:received"),
        },
        language=approved[0].delivery.language,
    )


# -- the API and the page -------------------------------------------------------------------


def _error(message, status=400) -> JsonResponse:
    return JsonResponse({"error": str(message)}, status=status)


def _list(request):
    mine = own_key(request.api_user)
    return JsonResponse(
        {
            "key_id": str(mine.id) if mine else None,
            "pending": [pending_json(p) for p in pending_for(request.api_user)],
        }
    )


def _post(request):
    if len(request.body) > MAX_BODY:
        return _error(_("The request body is too large."))
    try:
        data = json.loads(request.body or b"{}")
    except (ValueError, UnicodeDecodeError):
        return _error(_("The request body is not valid JSON."))
    if not isinstance(data, dict):
        return _error(_("The request body must be a JSON object."))
    try:
        return JsonResponse(approve(request.api_user, data, request=request))
    except Refused as e:
        return _error(e, e.status)


@never_cache
@api_auth
def api_view(request):
    if request.method == "GET":
        return _list(request)
    if request.method == "POST":
        return _post(request)
    response = _error(_("This method is not allowed here."), status=405)
    response["Allow"] = "GET, POST"
    return response


api_view.http_methods = ("GET", "POST")


def js_strings() -> dict:
    """Every sentence approvals.js may show, in the page's language ({…} filled in by it)."""
    return {
        "networkError": _("The server cannot be reached. Check your connection and try again."),
        "serverError": _("The server answered with an error ({status}). Try again later."),
        "confirmFirst": _(
            "First compare the fingerprint with {email}, then tick the box to confirm it."
        ),
        "secupassMissing": _("Enter your SecuPass."),
        "wrongSecupass": _("Wrong SecuPass. Check it and try again."),
        "unlocking": _("Unlocking your key. This takes a few seconds…"),
        "approving": _("Approving…"),
        "approved": _(
            "Approved. {email} can now open {count} delivery(s) and has been told by mail."
        ),
        "pinnedOther": _(
            "Careful: you approved a different key for {email} before (fingerprint {pinned}). "
            "The recipient may have reset their SecuPass, or someone is trying to slip you "
            "another key. Approve the new key only after comparing its fingerprint with "
            "{email} by phone or in person."
        ),
        "approveNew": _("Approve the new key anyway"),
        "oldSenderKey": _(
            "“{subject}” was sent with your previous SecuPass key and can no longer be "
            "re-encrypted; send it again if {email} still needs it."
        ),
        "nothingToApprove": _("None of these deliveries can be approved with your current key."),
        "badSignature": _(
            "The stored delivery “{subject}” does not carry your valid signature; it was not "
            "approved. Contact your administrator."
        ),
        "rollback": _(
            "The server offered an older version of your keyring than this browser saw "
            "before. Nothing was approved. Contact your administrator."
        ),
        "fingerprintMismatch": _(
            "The fingerprint the server reports differs from the one computed in your "
            "browser. Do not approve this key; contact your administrator."
        ),
        "failed": _("This did not work: {message}"),
        "unsupported": _(
            "Your browser cannot do the encryption this page needs. Use a current browser."
        ),
    }


@never_cache
@login_required
def page(request):
    if not request.user.is_sender:
        raise Http404
    mine = own_key(request.user)
    pending = pending_for(request.user)
    for item in pending:
        item.approvable = sum(1 for w in item.waiting if w.sender_entry is not None)
    config = {
        "csrfToken": get_token(request),
        "createKeyUrl": reverse("keys:create") + "?next=" + reverse("sender:approvals"),
        "api": {
            "approvals": reverse("api:approvals"),
            "mine": reverse("keys_api:mine"),
            "pepper": reverse("keys_api:pepper"),
            "keyring": reverse("keys_api:keyring"),
        },
        "strings": js_strings(),
    }
    return render(
        request,
        "deliveries/approvals.html",
        {"pending": pending, "own_key": mine, "config": config},
    )
