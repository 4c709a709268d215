"""The recipient's pages: the landing page of a link, the address step, the delivery page,
the account step of level 2 and a guest's list of what they received."""

from urllib.parse import urlencode

from django import forms
from django.contrib import messages
from django.contrib.auth import logout
from django.contrib.auth.decorators import login_required
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_POST

from accounts.emails import normalize_email
from accounts.models import User
from deliveries import receive_e2e, receive_guest
from deliveries.models import Delivery, DeliveryFile, Download, Recipient
from deliveries.receive_access import (
    CONFIRMED,
    account_matches,
    address_blocked,
    address_failed,
    bind_account,
    confirm,
    gone,
    mark_opened,
    not_found,
    recipient_view,
    remember,
    same_address,
    session_state,
)


class AddressForm(forms.Form):
    email = forms.EmailField(
        label=gettext_lazy("The e-mail address this message was sent to"),
        max_length=254,
        widget=forms.EmailInput(attrs={"autocomplete": "email", "autofocus": True}),
    )


def delivery_url(recipient: Recipient) -> str:
    return reverse("receive:delivery", kwargs={"rid": recipient.pk})


def _landing(request, recipient: Recipient, form: AddressForm, status: int = 200):
    return render(
        request,
        "deliveries/receive/landing.html",
        {
            "recipient": recipient,
            "delivery": recipient.delivery,
            "sender": recipient.delivery.sender,
            "form": form,
            "blocked": status == 429,
        },
        status=status,
    )


@never_cache
@require_GET
def landing(request, token):
    """``/d/<token>``: the only URL that carries the link token."""
    recipient = Recipient.by_token(token)
    if recipient is None:
        return not_found(request)
    reason = recipient.unavailable_reason()
    if reason:
        return gone(request, recipient, reason)
    mark_opened(request, recipient)
    if session_state(request, recipient) == CONFIRMED or account_matches(request, recipient):
        return redirect(delivery_url(recipient))
    return _landing(request, recipient, AddressForm())


@never_cache
@require_POST
@recipient_view
def address(request, access):
    """The level 1 step: type the address the mail was sent to."""
    recipient = access.recipient
    if access.confirmed:
        return redirect(delivery_url(recipient))
    form = AddressForm(request.POST)
    if address_blocked(request, recipient):
        form.is_valid()
        form.add_error(
            None,
            _(
                "Too many wrong addresses were entered. For your protection this link is "
                "paused: please wait 15 minutes and try again."
            ),
        )
        return _landing(request, recipient, form, status=429)
    if not form.is_valid():
        return _landing(request, recipient, form, status=400)
    if not same_address(form.cleaned_data["email"], recipient.email):
        address_failed(request, recipient)
        form.add_error(
            "email",
            _(
                "This is not the address the message was sent to. Please check it: it is "
                "the address at which you received the mail with this link."
            ),
        )
        return _landing(request, recipient, form, status=400)
    confirm(request, recipient, via="address")
    return redirect(delivery_url(recipient))


def _account_step(request, access):
    """Level 2 and up, address confirmed, but not logged in with the recipient's address."""
    recipient = access.recipient
    context = {"recipient": recipient, "delivery": recipient.delivery}
    if request.user.is_authenticated:
        return render(
            request, "deliveries/receive/account_step.html", {**context, "step": "other_account"}
        )
    user = User.objects.filter(email=normalize_email(recipient.email)).first()
    if user is None or receive_guest.is_pending(user):
        if user is not None and receive_guest.code_pending(user):
            return redirect("receive:verify", rid=recipient.pk)
        return redirect("receive:register", rid=recipient.pk)
    if not user.is_active:
        return render(
            request, "deliveries/receive/account_step.html", {**context, "step": "disabled"}
        )
    messages.info(
        request,
        _("Please log in as %(email)s to open the delivery from %(sender)s.")
        % {"email": recipient.email, "sender": recipient.delivery.sender.get_full_name()},
    )
    login_url = reverse("accounts:login") + "?" + urlencode({"next": delivery_url(recipient)})
    return redirect(login_url)


@never_cache
@require_GET
@recipient_view
def delivery(request, access):
    """``/r/<id>/``: the address step, the account step or the delivery, as far as this
    browser has come."""
    recipient = access.recipient
    if not access.confirmed:
        return _landing(request, recipient, AddressForm())
    if not access.ready:
        return _account_step(request, access)
    if access.needs_account and recipient.user_id != request.user.pk:
        bind_account(request, recipient)
    d = recipient.delivery
    if not d.server_holds_key:
        return receive_e2e.page(request, access)
    files = list(d.files.exclude(state=DeliveryFile.State.UPLOADING))
    counts = dict(Download.objects.filter(recipient=recipient).values_list("file_id", "count"))
    rows = []
    for f in files:
        left = None
        if d.download_limit is not None:
            left = max(0, d.download_limit - counts.get(f.id, 0))
        rows.append({"file": f, "left": left})
    return render(
        request,
        "deliveries/receive/delivery.html",
        {
            "recipient": recipient,
            "delivery": d,
            "sender": d.sender,
            "rows": rows,
            "total_size": sum(f.size for f in files),
            "server_decrypts": d.server_holds_key,
            "zip_exhausted": any(row["left"] == 0 for row in rows),
        },
    )


@require_POST
@recipient_view
def switch_account(request, access):
    """Log out of another account and carry on with this delivery."""
    recipient = access.recipient
    state = session_state(request, recipient)
    logout(request)
    if state is not None:
        remember(request, recipient, state)
    return redirect(delivery_url(recipient))


@login_required
@require_GET
def received(request):
    """Deliveries to the logged-in account's address that it has opened before."""
    recipients = (
        Recipient.objects.filter(user=request.user, email=normalize_email(request.user.email))
        .select_related("delivery", "delivery__sender")
        .exclude(delivery__status=Delivery.Status.DRAFT)
        .order_by("-delivery__sent_at")
    )
    rows = [{"recipient": r, "reason": r.unavailable_reason()} for r in recipients]
    return render(request, "deliveries/receive/received.html", {"rows": rows})
