"""Personal API tokens: the page where a sender makes and revokes them.

A token is shown once, in the response to the request that made it; the database
keeps only its SHA-256 and the first characters to recognise it by.
"""

import secrets

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import path
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_POST

from accounts.apiauth import TOKEN_PREFIX, hash_api_token
from accounts.models import ApiToken

app_name = "tokens"

MAX_ACTIVE_TOKENS = 20
PREFIX_LENGTH = 10  # "ssk_" and six characters: enough to tell tokens apart


def issue_token(user, name: str) -> tuple[ApiToken, str]:
    """Make a token for ``user``; returns the row and the token, which nothing else keeps."""
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    row = ApiToken.objects.create(
        user=user, name=name, token_hash=hash_api_token(token), prefix=token[:PREFIX_LENGTH]
    )
    return row, token


class TokenForm(forms.Form):
    name = forms.CharField(
        label=gettext_lazy("Name"),
        max_length=100,
        help_text=gettext_lazy("Where you will use it, for example “backup script on host X”."),
        error_messages={"required": gettext_lazy("Give the token a name.")},
    )

    def __init__(self, *args, user, **kwargs):
        super().__init__(*args, **kwargs)
        self.user = user

    def clean(self):
        active = ApiToken.objects.filter(user=self.user, revoked_at__isnull=True).count()
        if active >= MAX_ACTIVE_TOKENS:
            raise forms.ValidationError(
                _("You have %(count)d tokens already; revoke one you no longer use first.")
                % {"count": active}
            )
        return super().clean()


def _sender(request):
    if not request.user.is_sender:
        raise Http404
    return request.user


@never_cache
@login_required
def token_list(request):
    user = _sender(request)
    new_token = None
    status = 200
    if request.method == "POST":
        form = TokenForm(request.POST, user=user)
        if form.is_valid():
            _row, new_token = issue_token(user, form.cleaned_data["name"])
            form = TokenForm(user=user)
        else:
            status = 400
    else:
        form = TokenForm(user=user)
    tokens = ApiToken.objects.filter(user=user, revoked_at__isnull=True).order_by("-created_at")
    # The new token is in this response only; never_cache makes it no-store.
    return render(
        request,
        "accounts/tokens.html",
        {"form": form, "tokens": tokens, "new_token": new_token},
        status=status,
    )


@require_POST
@login_required
def revoke(request, pk):
    user = _sender(request)
    token = get_object_or_404(ApiToken, pk=pk, user=user, revoked_at__isnull=True)
    ApiToken.objects.filter(pk=token.pk).update(revoked_at=timezone.now())
    messages.success(request, _("The token “%(name)s” has been revoked.") % {"name": token.name})
    return redirect("tokens:list")


urlpatterns = [
    path("", token_list, name="list"),
    path("<int:pk>/revoke/", revoke, name="revoke"),
]
