"""Free guest accounts for level 2 recipients, verified by a mailed code or link.

Registration is reachable only from a delivery page whose address step is done, so a guest
account can only exist for an address some delivery was sent to, and it is fixed to that
address. The account stays inactive (it cannot log in) until the mailbox is proven: the
6-digit code (valid 30 minutes, 5 tries) or the link in the same mail. Both are kept in the
cache only as keyed hashes. A registration that was never verified proves nothing, so
registering again for that address replaces it.
"""

import hashlib
import hmac
import secrets

from django import forms
from django.conf import settings
from django.contrib import messages
from django.contrib.auth import password_validation
from django.core.cache import cache
from django.db import IntegrityError, transaction
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.cache import never_cache
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_http_methods

from accounts.emails import normalize_email
from accounts.models import User
from accounts.throttle import client_address, hit
from deliveries.models import Recipient
from deliveries.receive_access import (
    CONFIRMED,
    bind_account,
    confirm,
    login_keeping_access,
    recipient_view,
    session_state,
)
from outbox.services import queue_mail

CODE_SECONDS = 30 * 60
CODE_TRIES = 5
# Verification mails one address (or one client) can cause per hour.
MAILS_PER_ADDRESS = 5
MAILS_PER_CLIENT = 20
MAIL_WINDOW = 60 * 60


def is_pending(user: User) -> bool:
    """A guest registration whose address was never verified."""
    return user.kind == User.Kind.GUEST and not user.is_active and user.email_verified_at is None


def pending_guest(email: str) -> User | None:
    user = User.objects.filter(email=normalize_email(email)).first()
    return user if user is not None and is_pending(user) else None


def _entry_key(user) -> str:
    return f"guestverify:{user.pk}"


def _tries_key(user) -> str:
    return f"guestverify:tries:{user.pk}"


def _mac(kind: str, value: str) -> str:
    message = f"secushare.guestverify.{kind}:{value}".encode()
    return hmac.new(settings.SECRET_KEY.encode(), message, hashlib.sha256).hexdigest()


def code_pending(user: User) -> bool:
    return cache.get(_entry_key(user)) is not None


def mail_allowed(request, email: str) -> bool:
    """Count one verification mail; False once the address or the client had too many."""
    budgets = {
        f"guestverify:mail:{_mac('addr', normalize_email(email))[:32]}": MAILS_PER_ADDRESS,
        f"guestverify:mail:{_mac('client', client_address(request))[:32]}": MAILS_PER_CLIENT,
    }
    counts = cache.get_many(list(budgets))
    if any(counts.get(key, 0) >= limit for key, limit in budgets.items()):
        return False
    for key in budgets:
        hit(key, MAIL_WINDOW)
    return True


def send_code(user: User, recipient: Recipient) -> None:
    """Make a fresh code and link (the old ones stop working) and queue the mail."""
    code = f"{secrets.randbelow(10**6):06d}"
    secret = secrets.token_urlsafe(24)
    cache.set(
        _entry_key(user),
        {"code": _mac("code", code), "link": _mac("link", secret), "rid": str(recipient.pk)},
        CODE_SECONDS,
    )
    cache.delete(_tries_key(user))
    path = reverse("receive:verify_link", kwargs={"rid": recipient.pk, "secret": secret})
    queue_mail(
        user.email,
        "guest_verify",
        {
            "name": user.get_short_name(),
            "sender_name": recipient.delivery.sender.get_full_name(),
            "subject": recipient.delivery.subject,
            "minutes": CODE_SECONDS // 60,
            "secret_code": code,
            "secret_link": settings.SITE_URL + path,
        },
        language=user.language,
    )


def check_code(user: User, code: str) -> tuple[bool, int]:
    """(right, tries left). A code tried CODE_TRIES times wrongly is gone."""
    entry = cache.get(_entry_key(user))
    if entry is None:
        return False, 0
    tries = hit(_tries_key(user), CODE_SECONDS)
    if tries > CODE_TRIES:
        cache.delete(_entry_key(user))
        return False, 0
    if hmac.compare_digest(entry["code"], _mac("code", code)):
        return True, CODE_TRIES - tries
    if tries >= CODE_TRIES:
        cache.delete(_entry_key(user))
    return False, CODE_TRIES - tries


def check_link(user: User, recipient: Recipient, secret: str) -> bool:
    entry = cache.get(_entry_key(user))
    return bool(
        entry
        and entry.get("rid") == str(recipient.pk)
        and hmac.compare_digest(entry["link"], _mac("link", secret))
    )


def activate(request, user: User, recipient: Recipient) -> None:
    """The mailbox is proven: the account works, this browser is logged in and lands on the
    delivery."""
    with transaction.atomic():
        User.objects.filter(pk=user.pk, is_active=False).update(
            is_active=True, email_verified_at=timezone.now()
        )
    cache.delete_many([_entry_key(user), _tries_key(user)])
    user.refresh_from_db()
    login_keeping_access(request, user)
    if session_state(request, recipient) != CONFIRMED:
        confirm(request, recipient, via="mailbox")
    bind_account(request, recipient)


class GuestForm(forms.Form):
    name = forms.CharField(
        label=gettext_lazy("Your name"),
        max_length=150,
        required=False,
        widget=forms.TextInput(attrs={"autocomplete": "name"}),
    )
    password1 = forms.CharField(
        label=gettext_lazy("Password"),
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password", "autofocus": True}),
        help_text=password_validation.password_validators_help_text_html(),
    )
    password2 = forms.CharField(
        label=gettext_lazy("Password again"),
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
    )

    def __init__(self, *args, email: str, **kwargs):
        self.email = email
        super().__init__(*args, **kwargs)

    def clean(self):
        data = super().clean()
        p1, p2 = data.get("password1"), data.get("password2")
        if p1 and p2 and p1 != p2:
            self.add_error("password2", _("The two passwords differ."))
        elif p1:
            try:
                password_validation.validate_password(
                    p1, User(email=self.email, name=data.get("name", ""))
                )
            except forms.ValidationError as e:
                self.add_error("password1", e)
        return data


class CodeForm(forms.Form):
    code = forms.RegexField(
        label=gettext_lazy("Code from the mail"),
        regex=r"^\s*\d{6}\s*$",
        error_messages={"invalid": gettext_lazy("The code has 6 digits.")},
        widget=forms.TextInput(
            attrs={
                "inputmode": "numeric",
                "autocomplete": "one-time-code",
                "autofocus": True,
                "maxlength": 12,
            }
        ),
    )


def _account_step_done(request, access) -> bool:
    """True if there is nothing to register: go back to the delivery page."""
    return not access.confirmed or not access.needs_account or request.user.is_authenticated


@sensitive_post_parameters("password1", "password2")
@never_cache
@require_http_methods(["GET", "POST"])
@recipient_view
def register(request, access):
    recipient = access.recipient
    back = redirect("receive:delivery", rid=recipient.pk)
    if _account_step_done(request, access):
        return back
    email = normalize_email(recipient.email)
    existing = User.objects.filter(email=email).first()
    if existing is not None and not is_pending(existing):
        return back
    form = GuestForm(request.POST or None, email=email)
    status = 200
    if request.method == "POST":
        status = 400
        if form.is_valid():
            if not mail_allowed(request, email):
                form.add_error(
                    None,
                    _(
                        "Too many confirmation mails were sent to this address. "
                        "Please wait an hour and try again."
                    ),
                )
                status = 429
            else:
                try:
                    with transaction.atomic():
                        user = existing or User(email=email, kind=User.Kind.GUEST, is_active=False)
                        user.name = form.cleaned_data["name"]
                        user.language = request.LANGUAGE_CODE
                        user.set_password(form.cleaned_data["password1"])
                        user.save()
                        send_code(user, recipient)
                except IntegrityError:
                    return back  # registered at the same moment in another tab
                return redirect("receive:verify", rid=recipient.pk)
    return render(
        request,
        "deliveries/receive/register.html",
        {"form": form, "recipient": recipient, "delivery": recipient.delivery, "email": email},
        status=status,
    )


@never_cache
@require_http_methods(["GET", "POST"])
@recipient_view
def verify(request, access):
    recipient = access.recipient
    back = redirect("receive:delivery", rid=recipient.pk)
    if _account_step_done(request, access):
        return back
    user = pending_guest(recipient.email)
    if user is None:
        return back
    status = 200
    if request.method == "POST" and "resend" in request.POST:
        if mail_allowed(request, user.email):
            send_code(user, recipient)
            messages.success(
                request, _("A new code is on its way to %(email)s.") % {"email": user.email}
            )
        else:
            messages.error(
                request,
                _("Too many confirmation mails were sent to this address. Please wait an hour."),
            )
        return redirect("receive:verify", rid=recipient.pk)
    form = CodeForm(request.POST or None)
    if request.method == "POST":
        status = 400
        if form.is_valid():
            right, left = check_code(user, form.cleaned_data["code"].strip())
            if right:
                activate(request, user, recipient)
                messages.success(request, _("Your address is confirmed and your account is ready."))
                return back
            if left:
                form.add_error(
                    "code",
                    _("That code is not right. You can try %(left)d more times.") % {"left": left},
                )
            else:
                form.add_error(
                    "code",
                    _("This code has expired or was tried too often. Ask for a new code below."),
                )
    return render(
        request,
        "deliveries/receive/verify.html",
        {"form": form, "recipient": recipient, "delivery": recipient.delivery, "email": user.email},
        status=status,
    )


@never_cache
@require_http_methods(["GET", "POST"])
def verify_link(request, rid, secret):
    """The link from the verification mail; it may be opened in another browser.

    GET only shows a button: mail scanners that fetch links must not use it up.
    """
    recipient = Recipient.objects.select_related("delivery", "delivery__sender").filter(pk=rid)
    recipient = recipient.first()
    user = pending_guest(recipient.email) if recipient is not None else None
    if user is None or not check_link(user, recipient, secret):
        # One answer for every failure, so it tells nothing about the address or account.
        return render(request, "deliveries/receive/verify_link_invalid.html", status=404)
    if request.method == "POST":
        activate(request, user, recipient)
        messages.success(request, _("Your address is confirmed and your account is ready."))
        return redirect("receive:delivery", rid=recipient.pk)
    return render(
        request,
        "deliveries/receive/verify_link.html",
        {"recipient": recipient, "delivery": recipient.delivery, "email": user.email},
    )
