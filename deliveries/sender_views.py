"""The sender's side after sending: the sent list, one delivery's status, revoke, extend."""

from dataclasses import dataclass
from datetime import timedelta
from functools import wraps

from django import forms
from django.conf import settings
from django.contrib import messages
from django.contrib.auth.views import redirect_to_login
from django.core.paginator import Paginator
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import path, reverse
from django.utils import formats, timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_POST

from deliveries import approvals, services
from deliveries.compose import compose
from deliveries.models import AuditEvent, Delivery, Recipient

app_name = "sender"

PER_PAGE = 25
EVENTS_SHOWN = 300


@dataclass(frozen=True)
class State:
    key: str  # draft, active, expired, revoked
    label: str
    css: str  # badge class


STATES = {
    "draft": ("draft", gettext_lazy("draft"), ""),
    "active": ("active", gettext_lazy("active"), "ok"),
    "expired": ("expired", gettext_lazy("expired"), "warn"),
    "revoked": ("revoked", gettext_lazy("revoked"), "error"),
}


def state_of(delivery: Delivery, now=None) -> State:
    """What the sender sees: a sent delivery past its expiry is expired even before the
    periodic job has marked it so."""
    now = now or timezone.now()
    if delivery.status == Delivery.Status.DRAFT:
        key = "draft"
    elif delivery.status == Delivery.Status.REVOKED:
        key = "revoked"
    elif delivery.status == Delivery.Status.EXPIRED or delivery.expires_at <= now:
        key = "expired"
    else:
        key = "active"
    key, label, css = STATES[key]
    return State(key, str(label), css)


def sent_deliveries(user):
    """The user's deliveries, newest first, with what the lists show prefetched."""
    return (
        Delivery.objects.filter(sender=user)
        .order_by("-created_at")
        .prefetch_related("recipients", "files")
    )


def summarise(deliveries, now=None):
    """Attach state and counts to each delivery (recipients and files prefetched)."""
    now = now or timezone.now()
    for d in deliveries:
        recipients = list(d.recipients.all())
        files = list(d.files.all())
        d.state = state_of(d, now)
        d.recipient_list = recipients
        d.recipient_count = len(recipients)
        d.downloaded_count = sum(1 for r in recipients if r.downloaded_at)
        d.opened_count = sum(1 for r in recipients if r.opened_at)
        d.revoked_count = sum(1 for r in recipients if r.revoked_at)
        d.file_count = len(files)
        d.total_size = sum(f.size for f in files)
    return deliveries


def latest_for(user, count=5):
    return summarise(list(sent_deliveries(user)[:count]))


def sender_required(view):
    """Logged in and an internal sender; guests have no sent pages (404)."""

    @wraps(view)
    def wrapped(request, *args, **kwargs):
        if not request.user.is_authenticated:
            if "pk" in kwargs:
                # A delivery's pages answer 404 to anonymous clients like to anyone
                # else who does not own it, and tell a sender who followed a receipt
                # mail while logged out how to get there.
                login = redirect_to_login(
                    request.get_full_path() if request.method == "GET" else reverse("sender:list")
                )["Location"]
                return render(
                    request, "deliveries/sent_not_found.html", {"login_url": login}, status=404
                )
            return redirect_to_login(request.get_full_path())
        if not request.user.is_sender:
            raise Http404
        return view(request, *args, **kwargs)

    return wrapped


def own_delivery(request, pk) -> Delivery:
    """The delivery if the logged-in sender sent it; 404 for anyone else's."""
    return get_object_or_404(Delivery.objects.select_related("sender"), pk=pk, sender=request.user)


def can_change(delivery: Delivery) -> bool:
    return state_of(delivery).key == "active"


def extend_limit(delivery: Delivery, now=None):
    """The latest allowed expiry and how many whole days the delivery can still gain."""
    now = now or timezone.now()
    limit = now + timedelta(days=settings.DELIVERY_MAX_DAYS)
    return limit, services.max_extension_days(delivery, now)


class ExtendForm(forms.Form):
    days = forms.IntegerField(
        label=gettext_lazy("Extend by (days)"),
        min_value=1,
        error_messages={"required": gettext_lazy("Enter by how many days to extend.")},
    )

    def __init__(self, *args, delivery, **kwargs):
        super().__init__(*args, **kwargs)
        self.delivery = delivery
        self.limit, self.max_days = extend_limit(delivery)
        self.fields["days"].widget.attrs.update(min=1, max=max(1, self.max_days))
        self.fields["days"].initial = min(settings.DELIVERY_DEFAULT_DAYS, max(1, self.max_days))
        self.fields["days"].help_text = _(
            "A delivery can be available for at most %(max)d days from today (until %(limit)s)."
        ) % {
            "max": settings.DELIVERY_MAX_DAYS,
            "limit": formats.date_format(timezone.localtime(self.limit), "DATETIME_FORMAT"),
        }

    def clean_days(self):
        days = self.cleaned_data["days"]
        if days > self.max_days:
            if self.max_days < 1:
                raise forms.ValidationError(
                    _("This delivery already stays available as long as allowed.")
                )
            raise forms.ValidationError(
                _(
                    "A delivery can be available for at most %(max)d days from today: "
                    "extend it by %(days)d days or fewer."
                )
                % {"max": settings.DELIVERY_MAX_DAYS, "days": self.max_days}
            )
        return days


@never_cache
@sender_required
def sent_list(request):
    page = Paginator(sent_deliveries(request.user), PER_PAGE).get_page(request.GET.get("page"))
    summarise(page.object_list)
    return render(request, "deliveries/sent_list.html", {"page_obj": page})


def _detail(request, delivery, extend_form=None, status=200):
    now = timezone.now()
    recipients = list(delivery.recipients.select_related("user"))
    files = list(delivery.files.all())
    events = list(
        AuditEvent.objects.filter(delivery=delivery)
        .select_related("recipient", "actor")
        .order_by("-at", "-pk")[: EVENTS_SHOWN + 1]
    )
    state = state_of(delivery, now)
    if extend_form is None and state.key == "active":
        extend_form = ExtendForm(delivery=delivery)
    return render(
        request,
        "deliveries/sent_detail.html",
        {
            "delivery": delivery,
            "state": state,
            "recipients": recipients,
            "files": files,
            "file_names": {str(f.id): f.name for f in files},
            "total_size": sum(f.size for f in files),
            "downloaded_count": sum(1 for r in recipients if r.downloaded_at),
            "events": events[:EVENTS_SHOWN],
            "more_events": len(events) > EVENTS_SHOWN,
            "can_change": state.key == "active",
            "extend_form": extend_form,
        },
        status=status,
    )


@never_cache
@sender_required
def sent_detail(request, pk):
    return _detail(request, own_delivery(request, pk))


def _act(request, delivery, action, done: str):
    """Run a service action; its refusal (expired meanwhile, already revoked) is shown
    to the sender as it is and changes nothing."""
    try:
        action()
    except services.ActionRefused as refusal:
        messages.error(request, str(refusal))
    else:
        messages.success(request, done)
    return redirect("sender:detail", pk=delivery.pk)


@sender_required
@require_POST
def revoke(request, pk):
    delivery = own_delivery(request, pk)
    return _act(
        request,
        delivery,
        lambda: services.revoke(delivery, actor=request.user, request=request),
        _("The delivery has been revoked. Its recipients can no longer download the files."),
    )


@sender_required
@require_POST
def revoke_recipient(request, pk, rid):
    delivery = own_delivery(request, pk)
    recipient = get_object_or_404(Recipient, pk=rid, delivery=delivery)
    return _act(
        request,
        delivery,
        lambda: services.revoke_recipient(recipient, actor=request.user, request=request),
        _("%(email)s can no longer download this delivery.") % {"email": recipient.email},
    )


@sender_required
@require_POST
def extend(request, pk):
    delivery = own_delivery(request, pk)
    if not can_change(delivery):
        messages.error(request, _("Only an active delivery can be extended."))
        return redirect("sender:detail", pk=delivery.pk)
    form = ExtendForm(request.POST, delivery=delivery)
    if not form.is_valid():
        return _detail(request, delivery, extend_form=form, status=400)
    try:
        delivery = services.extend(
            delivery, form.cleaned_data["days"], actor=request.user, request=request
        )
    except services.ActionRefused as refusal:
        messages.error(request, str(refusal))
        return redirect("sender:detail", pk=delivery.pk)
    messages.success(
        request,
        _("The delivery is now available until %(date)s.")
        % {"date": formats.date_format(timezone.localtime(delivery.expires_at), "DATETIME_FORMAT")},
    )
    return redirect("sender:detail", pk=delivery.pk)


@sender_required
@require_POST
def delete_draft(request, pk):
    delivery = own_delivery(request, pk)
    try:
        services.delete_draft(delivery)
    except services.ActionRefused as refusal:
        messages.error(request, str(refusal))
        return redirect("sender:detail", pk=delivery.pk)
    messages.success(request, _("The unsent delivery and its uploaded files have been deleted."))
    return redirect("sender:list")


urlpatterns = [
    path("send/", compose, name="compose"),
    path("sent/", sent_list, name="list"),
    path("sent/<uuid:pk>/", sent_detail, name="detail"),
    path("sent/<uuid:pk>/revoke/", revoke, name="revoke"),
    path("sent/<uuid:pk>/recipients/<uuid:rid>/revoke/", revoke_recipient, name="revoke_recipient"),
    path("sent/<uuid:pk>/extend/", extend, name="extend"),
    path("sent/<uuid:pk>/delete/", delete_draft, name="delete_draft"),
    path("approvals/", approvals.page, name="approvals"),
]
