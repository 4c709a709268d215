import math

from django import forms
from django.conf import settings
from django.contrib.auth import authenticate, password_validation
from django.contrib.auth.forms import PasswordResetForm as DjangoPasswordResetForm
from django.contrib.auth.forms import SetPasswordForm
from django.urls import reverse
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from accounts.emails import normalize_email
from accounts.models import User
from outbox.services import queue_mail


class LoginForm(forms.Form):
    email = forms.EmailField(
        label=_("E-mail address"),
        widget=forms.EmailInput(attrs={"autocomplete": "username", "autofocus": True}),
    )
    password = forms.CharField(
        label=_("Password"),
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "current-password"}),
    )

    error_messages = {
        "invalid_login": _(
            "That e-mail address and password do not match an account. "
            "Note that the password is case-sensitive."
        ),
        "inactive": _("This account is disabled. Please ask your administrator."),
    }

    def __init__(self, request, *args, blocked=False, **kwargs):
        self.request = request
        self.blocked = blocked
        self.user = None
        super().__init__(*args, **kwargs)

    def clean(self):
        if self.blocked:
            # Throttled: the password is not even checked, so guessing on teaches nothing.
            minutes = max(1, math.ceil(settings.LOGIN_THROTTLE_SECONDS / 60))
            raise forms.ValidationError(
                ngettext(
                    "Too many failed attempts. Please wait %(minutes)d minute, or reset "
                    "your password by mail to log in right away.",
                    "Too many failed attempts. Please wait %(minutes)d minutes, or reset "
                    "your password by mail to log in right away.",
                    minutes,
                ),
                code="throttled",
                params={"minutes": minutes},
            )
        email = self.cleaned_data.get("email")
        password = self.cleaned_data.get("password")
        if email and password:
            email = normalize_email(email)
            # Say that an account is disabled only to someone who knows its password.
            disabled = User.objects.filter(email=email, is_active=False).first()
            if disabled is not None:
                code = "inactive" if disabled.check_password(password) else "invalid_login"
                raise forms.ValidationError(self.error_messages[code], code=code)
            self.user = authenticate(self.request, email=email, password=password)
            if self.user is None:
                raise forms.ValidationError(
                    self.error_messages["invalid_login"], code="invalid_login"
                )
        return self.cleaned_data


class SetupForm(forms.Form):
    """Creates the first administrator; shown only while no user exists."""

    email = forms.EmailField(
        label=_("Your e-mail address"),
        widget=forms.EmailInput(attrs={"autocomplete": "username", "autofocus": True}),
    )
    name = forms.CharField(label=_("Your name"), max_length=150, required=False)
    password1 = forms.CharField(
        label=_("Password"),
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
        help_text=password_validation.password_validators_help_text_html(),
    )
    password2 = forms.CharField(
        label=_("Password again"),
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
    )

    def clean(self):
        data = super().clean()
        p1, p2 = data.get("password1"), data.get("password2")
        if p1 and p2 and p1 != p2:
            self.add_error("password2", _("The two passwords differ."))
        elif p1:
            user = User(email=data.get("email", ""), name=data.get("name", ""))
            try:
                password_validation.validate_password(p1, user)
            except forms.ValidationError as e:
                self.add_error("password1", e)
        return data


class PasswordResetForm(DjangoPasswordResetForm):
    """Sends the reset link through the mail outbox, in the user's language."""

    def get_users(self, email):
        return User.objects.filter(email=normalize_email(email), is_active=True)

    def send_mail(
        self,
        subject_template_name,
        email_template_name,
        context,
        from_email,
        to_email,
        html_email_template_name=None,
    ):
        user = context["user"]
        path = reverse(
            "accounts:password_reset_confirm",
            kwargs={"uidb64": context["uid"], "token": context["token"]},
        )
        queue_mail(
            to_email,
            "password_reset",
            {"name": user.get_short_name(), "secret_link": settings.SITE_URL + path},
            language=user.language,
        )


class ResetSetPasswordForm(SetPasswordForm):
    pass
