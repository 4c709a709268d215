from django.conf import settings
from django.contrib import messages
from django.contrib.auth import login as auth_login
from django.contrib.auth import logout as auth_logout
from django.contrib.auth import views as auth_views
from django.db import connection, transaction
from django.http import Http404
from django.shortcuts import redirect, render
from django.urls import reverse_lazy
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_POST
from django.views.i18n import set_language as django_set_language

from accounts import throttle
from accounts.forms import LoginForm, PasswordResetForm, ResetSetPasswordForm, SetupForm
from accounts.middleware import users_exist
from accounts.models import User


def _next_url(request, default="home"):
    target = request.POST.get("next") or request.GET.get("next")
    if target and url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return target
    return default


@sensitive_post_parameters("password")
@never_cache
def login(request):
    if request.user.is_authenticated and request.method == "GET":
        return redirect(_next_url(request))
    status = 200
    if request.method == "POST":
        guard = throttle.LoginThrottle(request, request.POST.get("email", ""))
        blocked = guard.blocked()
        form = LoginForm(request, data=request.POST, blocked=blocked)
        if form.is_valid():
            auth_login(request, form.user)
            response = redirect(_next_url(request))
            guard.succeeded(request, response)
            return response
        if blocked:
            status = 429
        else:
            guard.failed()
            status = 400
    else:
        form = LoginForm(request)
    return render(
        request,
        "accounts/login.html",
        {"form": form, "next": _next_url(request, "")},
        status=status,
    )


@require_POST
def logout(request):
    auth_logout(request)
    messages.info(request, _("You have been logged out."))
    return redirect("accounts:login")


@sensitive_post_parameters("password1", "password2")
@never_cache
def setup(request):
    """Create the first administrator. Exists only while there is no user at all."""
    if users_exist():
        raise Http404
    form = SetupForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        with transaction.atomic():
            if connection.vendor == "postgresql":
                with connection.cursor() as cursor:
                    cursor.execute("LOCK TABLE accounts_user IN EXCLUSIVE MODE")
            if User.objects.exists():
                raise Http404
            user = User.objects.create_superuser(
                form.cleaned_data["email"],
                form.cleaned_data["password1"],
                name=form.cleaned_data["name"],
                language=request.LANGUAGE_CODE,
            )
        auth_login(request, user, backend="django.contrib.auth.backends.ModelBackend")
        messages.success(
            request,
            _(
                "Welcome! Your administrator account is ready. "
                "Create senders in the administration."
            ),
        )
        response = redirect("home")
        throttle.remember_device(request, response, user.email)
        return response
    return render(request, "accounts/setup.html", {"form": form})


class PasswordChangeView(auth_views.PasswordChangeView):
    template_name = "accounts/password_change.html"
    success_url = reverse_lazy("home")

    def form_valid(self, form):
        messages.success(self.request, _("Your password has been changed."))
        return super().form_valid(form)


class PasswordResetView(auth_views.PasswordResetView):
    template_name = "accounts/password_reset.html"
    form_class = PasswordResetForm
    success_url = reverse_lazy("accounts:password_reset_done")

    def form_valid(self, form):
        # Bound the mails one address can cause, without telling whether it has an account.
        if not throttle.reset_allowed(self.request, form.cleaned_data["email"]):
            return redirect(self.success_url)
        return super().form_valid(form)


class PasswordResetConfirmView(auth_views.PasswordResetConfirmView):
    template_name = "accounts/password_reset_confirm.html"
    form_class = ResetSetPasswordForm
    post_reset_login = True
    post_reset_login_backend = "django.contrib.auth.backends.ModelBackend"
    success_url = reverse_lazy("home")

    def form_valid(self, form):
        response = super().form_valid(form)
        # The owner proved control of the mailbox: this browser is theirs from now on.
        throttle.remember_device(self.request, response, form.user.email)
        throttle.forget_account_failures(form.user.email)
        messages.success(self.request, _("Your new password is set and you are logged in."))
        return response


class PasswordResetDoneView(auth_views.PasswordResetDoneView):
    template_name = "accounts/password_reset_done.html"


@require_POST
def set_language(request):
    """Django's language switch, remembering the choice on the account for its mails."""
    response = django_set_language(request)
    language = request.POST.get("language")
    if request.user.is_authenticated and language in dict(settings.LANGUAGES):
        User.objects.filter(pk=request.user.pk).update(language=language)
    return response
