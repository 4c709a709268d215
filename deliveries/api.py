"""The JSON API under /api/v1/ (uploads are tus, in ``deliveries.uploads``).

Every object is reached only through its owner: a delivery of another user is 404,
exactly like one that does not exist. Errors are ``{"error": sentence}`` or, for
validation, ``{"errors": {field: [sentence, ...]}}``, always with a 4xx status.
"""

from django.conf import settings
from django.db.models import Count, Q
from django.http import Http404, HttpResponse, JsonResponse
from django.urls import path
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts import apiauth
from accounts.apiauth import BadRequest, error, json_methods
from deliveries import approvals, services, services_e2e
from deliveries.forms import DeliveryForm
from deliveries.models import Delivery, Recipient
from deliveries.openapi import schema_view
from secupass import sxf

app_name = "api"

MAX_BODY = 64 * 1024
DEFAULT_PAGE = 50
MAX_PAGE = 200


def read_json(request) -> dict:
    return apiauth.read_json(request, MAX_BODY)


def methods(*allowed):
    """Dispatch by HTTP method; a refused action (already revoked, …) is 400 in JSON."""
    return json_methods(*allowed, refusals={services.ActionRefused: error})


def own_delivery(request, pk) -> Delivery:
    """The caller's delivery, or 404 for anyone else (also for guests)."""
    if not request.api_user.is_sender:
        raise Http404
    delivery = (
        Delivery.objects.select_related("sender").filter(pk=pk, sender=request.api_user).first()
    )
    if delivery is None:
        raise Http404
    return delivery


def require_sender(request):
    if not request.api_user.is_sender:
        return error(_("Only internal senders may do this."), status=403)
    return None


def iso(value):
    return value.isoformat() if value else None


def shown_status(delivery: Delivery, now=None) -> str:
    """The status a person would call it: a sent delivery past its expiry is expired."""
    now = now or timezone.now()
    if delivery.status == Delivery.Status.SENT and delivery.expires_at <= now:
        return Delivery.Status.EXPIRED.value
    return delivery.status


def recipient_status(recipient: Recipient, delivery: Delivery) -> str:
    if recipient.revoked_at or delivery.status == Delivery.Status.REVOKED:
        return "revoked"
    for state, at in (
        ("downloaded", recipient.downloaded_at),
        ("confirmed", recipient.confirmed_at),
        ("opened", recipient.opened_at),
        ("mail_sent", recipient.mail_sent_at),
    ):
        if at:
            return state
    return "draft" if delivery.status == Delivery.Status.DRAFT else "pending"


def recipient_json(recipient: Recipient, delivery: Delivery) -> dict:
    return {
        "id": str(recipient.id),
        "email": recipient.email,
        "status": recipient_status(recipient, delivery),
        "mail_sent_at": iso(recipient.mail_sent_at),
        "opened_at": iso(recipient.opened_at),
        "confirmed_at": iso(recipient.confirmed_at),
        "downloaded_at": iso(recipient.downloaded_at),
        "revoked_at": iso(recipient.revoked_at),
    }


def summary_json(delivery: Delivery) -> dict:
    return {
        "id": str(delivery.id),
        "url": f"/api/v1/deliveries/{delivery.id}",
        "level": delivery.level,
        "subject": delivery.subject,
        "status": shown_status(delivery),
        "language": delivery.language,
        "created_at": iso(delivery.created_at),
        "sent_at": iso(delivery.sent_at),
        "expires_at": iso(delivery.expires_at),
        "revoked_at": iso(delivery.revoked_at),
        "download_limit": delivery.download_limit,
        "notify_on_download": delivery.notify_on_download,
    }


def delivery_json(delivery: Delivery) -> dict:
    return {
        **summary_json(delivery),
        "message": delivery.message,
        "upload_url": "/api/v1/uploads/",
        "files": [
            {
                "id": str(f.id),
                "name": f.name,
                "content_type": f.content_type,
                "size": f.size,
                "state": f.state,
                "uploaded": f.offset,
                "blob_size": f.blob_size,
            }
            for f in delivery.files.all()
        ],
        "recipients": [recipient_json(r, delivery) for r in delivery.recipients.all()],
    }


def list_deliveries(request):
    refused = require_sender(request)
    if refused:
        return refused
    try:
        limit = min(int(request.GET.get("limit", DEFAULT_PAGE)), MAX_PAGE)
        offset = int(request.GET.get("offset", 0))
        if limit < 1 or offset < 0:
            raise ValueError
    except ValueError:
        raise BadRequest(_("limit and offset must be whole numbers (limit 1 to 200).")) from None
    deliveries = (
        Delivery.objects.filter(sender=request.api_user)
        .order_by("-created_at")
        .annotate(
            recipient_count=Count("recipients", distinct=True),
            downloaded_count=Count(
                "recipients", filter=Q(recipients__downloaded_at__isnull=False), distinct=True
            ),
            file_count=Count("files", distinct=True),
        )
    )
    total = deliveries.count()
    page = deliveries[offset : offset + limit]
    results = [
        {
            **summary_json(d),
            "recipient_count": d.recipient_count,
            "downloaded_count": d.downloaded_count,
            "file_count": d.file_count,
        }
        for d in page
    ]
    following = offset + limit < total
    return JsonResponse(
        {
            "count": total,
            "next": f"/api/v1/deliveries?limit={limit}&offset={offset + limit}"
            if following
            else None,
            "results": results,
        }
    )


def create_delivery(request):
    refused = require_sender(request)
    if refused:
        return refused
    data = read_json(request)
    unknown = sorted(set(data) - set(DeliveryForm.base_fields))
    if unknown:
        raise BadRequest(
            _("Unknown fields: %(unknown)s. Known fields: %(known)s.")
            % {"unknown": ", ".join(unknown), "known": ", ".join(DeliveryForm.base_fields)}
        )
    if "notify_on_download" in data and not isinstance(data["notify_on_download"], bool):
        return JsonResponse(
            {"errors": {"notify_on_download": [_("Give true or false.")]}}, status=400
        )
    form = DeliveryForm(data=data, sender=request.api_user)
    if not form.is_valid():
        return JsonResponse(
            {"errors": {field: list(messages) for field, messages in form.errors.items()}},
            status=400,
        )
    delivery = services.create_draft(request.api_user, form.cleaned_data, request=request)
    response = JsonResponse(delivery_json(delivery), status=201)
    response["Location"] = f"/api/v1/deliveries/{delivery.id}"
    return response


def show_delivery(request, pk):
    return JsonResponse(delivery_json(own_delivery(request, pk)))


def delete_delivery(request, pk):
    services.delete_draft(own_delivery(request, pk))
    return HttpResponse(status=204)


def send_delivery(request, pk):
    delivery = own_delivery(request, pk)
    if delivery.status == Delivery.Status.DRAFT and delivery.expires_at <= timezone.now():
        return error(_("This draft has passed its expiry date; extend it before sending."))
    if not delivery.server_holds_key:
        return send_e2e_delivery(request, delivery)
    data = read_json(request)
    key = None
    if delivery.server_holds_key:
        try:
            key = sxf.b64u_decode(data.get("delivery_key"))
        except sxf.SXFError:
            key = None
        if key is None or len(key) != sxf.KEY_LEN:
            return error(_("The delivery key is missing or malformed."))
    try:
        services.send(delivery, delivery_key=key, actor=request.api_user, request=request)
    except services.SendError as e:
        return error(e)
    delivery.refresh_from_db()
    return JsonResponse(delivery_json(delivery))


def send_e2e_delivery(request, delivery):
    """Levels 3 and 4: key entries, manifest and signature instead of the delivery key."""
    try:
        body = services_e2e.parse_body(request.body)
        services_e2e.send_e2e(
            delivery,
            entries=body.entries,
            manifest=body.manifest,
            signature=body.signature,
            message_sha256=body.message_sha256,
            actor=request.api_user,
            request=request,
        )
    except services.SendError as e:
        return error(e)
    return JsonResponse(delivery_json(delivery))


def revoke_delivery(request, pk):
    delivery = services.revoke(own_delivery(request, pk), actor=request.api_user, request=request)
    return JsonResponse(delivery_json(delivery))


def revoke_recipient(request, pk, rid):
    delivery = own_delivery(request, pk)
    recipient = delivery.recipients.filter(pk=rid).first()
    if recipient is None:
        raise Http404
    recipient.delivery = delivery
    services.revoke_recipient(recipient, actor=request.api_user, request=request)
    delivery.refresh_from_db()
    return JsonResponse(delivery_json(delivery))


def extend_delivery(request, pk):
    delivery = own_delivery(request, pk)
    data = read_json(request)
    days = data.get("days")
    if isinstance(days, bool) or not isinstance(days, int):
        return JsonResponse(
            {"errors": {"days": [_("Give the number of days as a whole number.")]}}, status=400
        )
    if days < 1:
        return JsonResponse({"errors": {"days": [_("Extend by at least one day.")]}}, status=400)
    if days > settings.DELIVERY_MAX_DAYS:
        return JsonResponse(
            {
                "errors": {
                    "days": [
                        _("A delivery can be kept for at most %(max)d days from today.")
                        % {"max": settings.DELIVERY_MAX_DAYS}
                    ]
                }
            },
            status=400,
        )
    delivery = services.extend(delivery, days, actor=request.api_user, request=request)
    return JsonResponse(delivery_json(delivery))


urlpatterns = [
    path(
        "deliveries",
        methods(("GET", list_deliveries), ("POST", create_delivery)),
        name="deliveries",
    ),
    path(
        "deliveries/<uuid:pk>",
        methods(("GET", show_delivery), ("DELETE", delete_delivery)),
        name="delivery",
    ),
    path("deliveries/<uuid:pk>/send", methods(("POST", send_delivery)), name="send"),
    path("deliveries/<uuid:pk>/revoke", methods(("POST", revoke_delivery)), name="revoke"),
    path(
        "deliveries/<uuid:pk>/recipients/<uuid:rid>/revoke",
        methods(("POST", revoke_recipient)),
        name="revoke_recipient",
    ),
    path("deliveries/<uuid:pk>/extend", methods(("POST", extend_delivery)), name="extend"),
    path("schema", schema_view, name="schema"),
    path("approvals", approvals.api_view, name="approvals"),
]
