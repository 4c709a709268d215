"""Who is calling the JSON API: a personal API token, or the browser's session.

Token requests carry ``Authorization: Bearer <token>`` and need no CSRF token;
session requests from the browser's own pages are CSRF-checked like any form.
"""

import functools
import hashlib

from django.http import JsonResponse
from django.middleware.csrf import CsrfViewMiddleware
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.csrf import csrf_exempt

from accounts.models import ApiToken

TOKEN_PREFIX = "ssk_"  # noqa: S105 - a public prefix, not a secret


def hash_api_token(token: str) -> str:
    return hashlib.sha256(token.encode("ascii", "replace")).hexdigest()


def token_user(header: str):
    scheme, _sep, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.startswith(TOKEN_PREFIX) or len(token) > 200:
        return None
    row = (
        ApiToken.objects.select_related("user")
        .filter(token_hash=hash_api_token(token.strip()), revoked_at__isnull=True)
        .first()
    )
    if row is None or not row.user.is_active:
        return None
    now = timezone.now()
    if row.last_used_at is None or (now - row.last_used_at).total_seconds() > 60:
        ApiToken.objects.filter(pk=row.pk).update(last_used_at=now)
    return row.user


def _csrf_failure(request, reason=""):
    return JsonResponse({"error": _("CSRF check failed; reload the page.")}, status=403)


def api_auth(view=None, *, senders_only=True):
    """Resolve ``request.api_user`` or answer 401 (403 for a guest where senders are needed)."""

    def decorate(view):
        @csrf_exempt
        @functools.wraps(view)
        def wrapper(request, *args, **kwargs):
            header = request.headers.get("Authorization")
            if header:
                user = token_user(header)
                if user is None:
                    return JsonResponse(
                        {"error": _("The API token is invalid or has been revoked.")}, status=401
                    )
            elif request.user.is_authenticated:
                user = request.user
                check = CsrfViewMiddleware(lambda r: None)
                check._reject = _csrf_failure  # answer in JSON, not an HTML page
                rejected = check.process_view(request, None, (), {})
                if rejected is not None:
                    return rejected
            else:
                return JsonResponse({"error": _("Log in or send an API token.")}, status=401)
            if senders_only and not user.is_sender:
                return JsonResponse({"error": _("Only internal senders may do this.")}, status=403)
            request.api_user = user
            return view(request, *args, **kwargs)

        return wrapper

    return decorate(view) if view is not None else decorate
