"""``POST /api/v1/receive``: the recipient's steps for the command-line client.

Body ``{"token", "email", "password"?}``. The same checks and throttles as the pages: the
address (level 1), then the password of the account with that address (level 2). The answer
lists the files with URLs, and the session cookie set on it authorises them, exactly as the
browser's session does.

The view is CSRF-exempt but accepts only ``application/json``, which a cross-site form cannot
send, so no other site can log a visitor's browser into an account.
"""

import json
import math

from django.conf import settings
from django.contrib.auth import authenticate
from django.http import JsonResponse
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.debug import sensitive_variables
from django.views.decorators.http import require_POST

from accounts.emails import normalize_email
from accounts.models import User
from accounts.throttle import LoginThrottle
from deliveries.models import Delivery, DeliveryFile, Recipient
from deliveries.receive_access import (
    CONFIRMED,
    account_matches,
    address_blocked,
    address_failed,
    bind_account,
    confirm,
    login_keeping_access,
    mark_opened,
    same_address,
    session_state,
)


def _error(message, status, **extra):
    return JsonResponse({"error": str(message), **extra}, status=status)


def _body(request) -> dict | None:
    if request.content_type != "application/json":
        return None
    try:
        data = json.loads(request.body)
    except (ValueError, UnicodeDecodeError):
        return None
    return data if isinstance(data, dict) else None


def _payload(request, recipient: Recipient) -> dict:
    delivery = recipient.delivery
    files = delivery.files.exclude(state=DeliveryFile.State.UPLOADING)

    def url(name, **kwargs):
        return request.build_absolute_uri(reverse(name, kwargs={"rid": recipient.pk, **kwargs}))

    e2e = not delivery.server_holds_key
    # Levels 1-2: the server decrypts (files, ZIP). Levels 3-4: ciphertext only, the
    # client decrypts with what e2e_url gives it; there is no ZIP.
    file_route = "receive:blob" if e2e else "receive:file"
    payload = {
        "delivery": {
            "id": str(delivery.id),
            "recipient_id": str(recipient.pk),
            "subject": delivery.subject,
            "sender": {"name": delivery.sender.get_full_name(), "email": delivery.sender.email},
            "expires_at": delivery.expires_at.isoformat(),
            "level": delivery.level,
            "message": delivery.message if delivery.level < Delivery.Level.SECUPASS_PLUS else "",
            "download_limit": delivery.download_limit,
        },
        "files": [
            {
                "id": str(f.id),
                "name": f.name,
                "size": f.size,
                "content_type": f.content_type,
                "url": url(file_route, file_id=f.id),
            }
            for f in files
        ],
        "zip_url": None if e2e else url("receive:zip"),
    }
    if e2e:
        payload["e2e_url"] = url("receive:e2e")
    return payload


@sensitive_variables("data", "token", "password")
@csrf_exempt
@never_cache
@require_POST
def receive(request):
    data = _body(request)
    if data is None:
        return _error(_("Send a JSON object with the fields token and email."), 400)
    token, email, password = data.get("token"), data.get("email"), data.get("password")
    if not isinstance(token, str) or not isinstance(email, str) or not email.strip():
        return _error(_("Both token and email are needed, as strings."), 400)
    if password is not None and not isinstance(password, str):
        return _error(_("The password must be a string."), 400)
    recipient = Recipient.by_token(token)
    if recipient is None:
        return _error(_("This link is not valid. Please check that it was copied whole."), 404)
    reason = recipient.unavailable_reason()
    if reason:
        return _error(reason, 410)
    mark_opened(request, recipient)
    if session_state(request, recipient) != CONFIRMED:
        if address_blocked(request, recipient):
            return _error(
                _("Too many wrong addresses were entered for this link. Wait 15 minutes."), 429
            )
        if not same_address(email, recipient.email):
            address_failed(request, recipient)
            return _error(_("This is not the address the delivery was sent to."), 403)
        confirm(request, recipient, via="api")
    response = None
    if recipient.delivery.level >= Delivery.Level.ACCOUNT and not account_matches(
        request, recipient
    ):
        result = _log_in(request, recipient, password)
        if isinstance(result, JsonResponse):
            return result
        response = JsonResponse(_payload(request, recipient))
        result.succeeded(request, response)
    if recipient.delivery.level >= Delivery.Level.ACCOUNT and recipient.user_id != request.user.pk:
        bind_account(request, recipient)
    return response or JsonResponse(_payload(request, recipient))


@sensitive_variables("password")
def _log_in(request, recipient: Recipient, password: str | None):
    """Log in with the recipient's account; the throttle on success, else the error answer."""
    email = normalize_email(recipient.email)
    if not User.objects.filter(email=email, is_active=True).exists():
        return _error(
            _(
                "This delivery needs an account for %(email)s, and there is none yet. Open "
                "the link in a browser once to create a free guest account."
            )
            % {"email": email},
            403,
        )
    if not password:
        return _error(
            _("This delivery needs the password of your account (%(email)s).") % {"email": email},
            403,
            password_required=True,
        )
    guard = LoginThrottle(request, email)
    if guard.blocked():
        minutes = max(1, math.ceil(settings.LOGIN_THROTTLE_SECONDS / 60))
        return _error(
            _("Too many failed attempts. Please wait %(minutes)d minutes.") % {"minutes": minutes},
            429,
        )
    user = authenticate(request, email=email, password=password)
    if user is None:
        guard.failed()
        return _error(_("The password is wrong."), 403)
    login_keeping_access(request, user)
    return guard
