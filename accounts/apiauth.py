"""Who is calling the JSON API (a personal API token, or the browser's session), and the
plumbing its views share: JSON bodies, errors, dispatch by method.

Token requests carry ``Authorization: Bearer <token>`` and need no CSRF token;
session requests from the browser's own pages are CSRF-checked like any form.
"""

import functools
import hashlib
import json

from django.http import Http404, JsonResponse
from django.middleware.csrf import CsrfViewMiddleware
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
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


# -- The JSON API's common plumbing (deliveries' and SecuPass' APIs) ---------------------------


class BadRequest(Exception):
    """A request the API refuses; the message says why, for the caller."""


def error(message, status=400, **extra) -> JsonResponse:
    return JsonResponse({"error": str(message), **extra}, status=status)


def read_json(request, max_body: int) -> dict:
    """The request body as a JSON object (an empty body is an empty object)."""
    if len(request.body) > max_body:
        raise BadRequest(_("The request body is too large."))
    if not request.body.strip():
        return {}
    try:
        data = json.loads(request.body)
    except (ValueError, UnicodeDecodeError):
        raise BadRequest(_("The request body is not valid JSON.")) from None
    if not isinstance(data, dict):
        raise BadRequest(_("The request body must be a JSON object."))
    return data


def json_methods(*allowed, refusals=None):
    """A view dispatching by HTTP method to ``(METHOD, handler)`` pairs, behind `api_auth`.

    Any other method is 405 in JSON; ``BadRequest`` is 400 and ``Http404`` 404 in JSON.
    ``refusals`` maps further exception classes to functions making their answer.
    """
    handlers = dict(allowed)
    answers = {BadRequest: error, **(refusals or {})}

    def view(request, *args, **kwargs):
        handler = handlers.get(request.method)
        if handler is None:
            response = error(_("This method is not allowed here."), status=405)
            response["Allow"] = ", ".join(handlers)
            return response
        try:
            return handler(request, *args, **kwargs)
        except tuple(answers) as e:
            return next(answer(e) for kind, answer in answers.items() if isinstance(e, kind))
        except Http404:
            return error(_("Not found."), status=404)

    view.http_methods = tuple(handlers)
    return never_cache(api_auth(view, senders_only=False))
