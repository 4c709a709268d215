"""The SecuPass pages: the key profile, creating a key, changing the SecuPass, resetting.

The SecuPass itself never reaches the server: the pages' inputs have no ``name`` and the
work happens in ``static/js/keys_page.js`` through the key API. These views only render.
"""

import uuid

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.middleware.csrf import get_token
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_safe

from secupass import keys
from secupass.models import UserKey


def next_url(request) -> str:
    """Where to go after the key exists: a local path from ``?next=``, else the profile."""
    target = request.GET.get("next", "")
    if (
        target.startswith("/")
        and not target.startswith(("//", "/\\"))
        and url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()})
    ):
        return target
    return reverse("keys:profile")


def _strings() -> dict:
    return {
        "tooShort": _(
            "Your SecuPass must be at least {min} characters long; this one has {count}."
        ),
        "mismatch": _("The two SecuPass entries differ."),
        "sameAsLogin": _("Your SecuPass must differ from your login password. Choose another one."),
        "loginMissing": _("Enter your login password, so we can check that it differs."),
        "wrongLogin": _("This is not your login password."),
        "oldMissing": _("Enter your current SecuPass."),
        "confirmMissing": _("Confirm that you have read the warning."),
        "wrongSecupass": _("Wrong SecuPass. Check it and try again."),
        "checking": _("Checking…"),
        "making": _("Making your keys. Deriving the key from your SecuPass takes a few seconds…"),
        "unlocking": _("Unlocking your key. This takes a few seconds…"),
        "saving": _("Saving…"),
        "changed": _("Your SecuPass has been changed. Use the new one from now on."),
        "networkError": _("The server cannot be reached. Check your connection and try again."),
        "serverError": _("The server answered with an error ({status}). Try again later."),
        "fingerprintMismatch": _(
            "The fingerprint the server reports differs from the one computed in your "
            "browser. Do not use this key; contact your administrator."
        ),
        "keyringRollback": _(
            "The server offered an older version of your keyring than this browser saw "
            "before. Nothing was changed; contact your administrator."
        ),
        "failed": _("This did not work: {message}"),
        "unsupported": _(
            "Your browser cannot do the encryption this page needs. Use a current browser."
        ),
    }


def _render(request, template, mode, key=None):
    config = {
        "mode": mode,
        "email": request.user.email,
        "next": next_url(request),
        "minLength": keys.MIN_SECUPASS_LENGTH,
        "csrfToken": get_token(request),
        "api": {
            "issue": reverse("keys_api:issue"),
            "checkPassword": reverse("keys_api:check_password"),
            "mine": reverse("keys_api:mine"),
            "pepper": reverse("keys_api:pepper"),
            "change": reverse("keys_api:change"),
            # The JS puts the issued key_id in place of the zero UUID.
            "register": reverse("keys_api:register", args=[uuid.UUID(int=0)]),
        },
        "strings": _strings(),
    }
    if key is not None:
        config["key"] = key.public_json()
    context = {"key": key, "config": config, "next": config["next"], "mode": mode}
    return render(request, template, context)


@require_safe
@never_cache
@login_required
def profile(request):
    key = UserKey.objects.active().filter(user=request.user).first()
    return _render(request, "secupass/profile.html", "profile", key)


@require_safe
@never_cache
@login_required
def create(request):
    if UserKey.objects.active().filter(user=request.user).exists():
        messages.info(request, _("You already have a SecuPass key."))
        return redirect(next_url(request))
    return _render(request, "secupass/create.html", "create")


@require_safe
@never_cache
@login_required
def change(request):
    key = UserKey.objects.active().filter(user=request.user).first()
    if key is None:
        return redirect("keys:create")
    return _render(request, "secupass/change.html", "change", key)


@require_safe
@never_cache
@login_required
def reset(request):
    key = UserKey.objects.active().filter(user=request.user).first()
    if key is None:
        return redirect("keys:create")
    return _render(request, "secupass/create.html", "reset", key)
