"""Validation of a new delivery, shared by the JSON API and any HTML page."""

import re

from django import forms
from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.urls import reverse
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext_lazy

from accounts.emails import normalize_email
from deliveries.models import Delivery
from secupass.models import UserKey

AVAILABLE_LEVELS = tuple(Delivery.Level)
# Levels at which only the sender's and the recipients' SecuPass keys open the files.
E2E_LEVELS = (Delivery.Level.SECUPASS, Delivery.Level.SECUPASS_PLUS)
MAX_DOWNLOAD_LIMIT = 1000
_SEPARATORS = ",;\r\n"
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def split_addresses(text: str) -> list[str]:
    """The addresses in a pasted list, in order, as typed.

    Addresses may be separated by commas, semicolons, line breaks or spaces, and may
    come as mail programs copy them: ``"Doe, Jane" <jane@example.org>; bob@example.org``.
    """
    segments, current, quoted, angle = [], [], False, False
    for char in text:
        if char == '"' and not angle:
            quoted = not quoted
        elif char == "<" and not quoted:
            angle = True
        elif char == ">" and not quoted:
            angle = False
        if char in _SEPARATORS and not quoted and not angle:
            segments.append("".join(current))
            current = []
        else:
            current.append(char)
    segments.append("".join(current))
    addresses = []
    for segment in segments:
        inside = re.findall(r"<([^<>]*)>", segment)
        if inside:
            addresses.extend(a.strip() for a in inside if a.strip())
        else:
            addresses.extend(segment.split())
    return addresses


class RecipientsField(forms.Field):
    """A list of addresses, or one text with a pasted list: normalised and de-duplicated."""

    widget = forms.Textarea
    default_error_messages = {
        "required": _("Enter at least one recipient's e-mail address."),
        "invalid_type": _("Give the recipients as a list of addresses or as one text."),
        "invalid_address": _("“%(address)s” is not a valid e-mail address."),
        "too_many": ngettext_lazy(
            "A delivery can go to at most %(max)d recipient.",
            "A delivery can go to at most %(max)d recipients.",
            "max",
        ),
    }

    def to_python(self, value):
        if value in (None, ""):
            return []
        if isinstance(value, str):
            text = value
        elif isinstance(value, list | tuple) and all(isinstance(v, str) for v in value):
            text = "\n".join(value)
        else:
            raise ValidationError(self.error_messages["invalid_type"], code="invalid_type")
        addresses, seen, errors = [], set(), []
        for raw in split_addresses(text):
            address = normalize_email(raw)
            try:
                if len(address) > 254:
                    raise ValidationError("too long")
                validate_email(address)
            except ValidationError:
                errors.append(
                    ValidationError(
                        self.error_messages["invalid_address"],
                        code="invalid_address",
                        params={"address": raw[:100]},
                    )
                )
                continue
            if address not in seen:
                seen.add(address)
                addresses.append(address)
        if errors:
            raise ValidationError(errors)
        return addresses

    def validate(self, value):
        super().validate(value)
        if len(value) > settings.MAX_RECIPIENTS:
            raise ValidationError(
                self.error_messages["too_many"],
                code="too_many",
                params={"max": settings.MAX_RECIPIENTS},
            )


class DeliveryForm(forms.Form):
    """What a sender decides before uploading: who, what, how strongly protected, how long."""

    level = forms.TypedChoiceField(
        label=_("Security level"),
        choices=Delivery.Level.choices,
        coerce=int,
        error_messages={
            "required": _("Choose a security level."),
            "invalid_choice": _("Choose a security level from 1 to 4."),
        },
    )
    recipients = RecipientsField(
        label=_("Recipients"),
        help_text=_("E-mail addresses, separated by commas, semicolons or line breaks."),
    )
    subject = forms.CharField(
        label=_("Subject"),
        max_length=200,
        help_text=_("The subject is the subject line of the mail and is never encrypted."),
        error_messages={"required": _("Enter a subject.")},
    )
    message = forms.CharField(
        label=_("Message"), required=False, max_length=20000, widget=forms.Textarea
    )
    expires_in_days = forms.IntegerField(
        label=_("Available for (days)"),
        required=False,
        min_value=1,
    )
    download_limit = forms.IntegerField(
        label=_("Download limit per recipient and file"),
        required=False,
        min_value=1,
        max_value=MAX_DOWNLOAD_LIMIT,
        help_text=_("Leave empty for no limit."),
    )
    notify_on_download = forms.BooleanField(label=_("Notify me on download"), required=False)
    language = forms.ChoiceField(
        label=_("Language of the mails"), choices=settings.LANGUAGES, required=False
    )

    def __init__(self, *args, sender=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.sender = sender
        days = self.fields["expires_in_days"]
        days.widget.attrs["max"] = settings.DELIVERY_MAX_DAYS
        days.validators.append(MaxDaysValidator(settings.DELIVERY_MAX_DAYS))
        days.help_text = _("At most %(max)d days; %(default)d if left empty.") % {
            "max": settings.DELIVERY_MAX_DAYS,
            "default": settings.DELIVERY_DEFAULT_DAYS,
        }

    def clean_level(self):
        level = self.cleaned_data["level"]
        if level in E2E_LEVELS and not has_secupass_key(self.sender):
            raise ValidationError(
                _(
                    "Levels 3 and 4 need your SecuPass key, and you have none yet. Create it "
                    "on the page %(url)s (or with “secushare keys create”), then send again."
                ),
                code="no_key",
                params={"url": create_key_url()},
            )
        return level

    def clean(self):
        cleaned = super().clean()
        if cleaned.get("level") == Delivery.Level.SECUPASS_PLUS and cleaned.get("message"):
            self.add_error(
                "message",
                ValidationError(
                    _(
                        "At level 4 the message is end-to-end encrypted: leave it empty here. "
                        "Your browser or the command-line client puts it into the encrypted "
                        "manifest."
                    ),
                    code="level4_message",
                ),
            )
        return cleaned

    def clean_subject(self):
        subject = self.cleaned_data["subject"]
        if _CONTROL.search(subject):
            raise ValidationError(_("The subject must be a single line."), code="multiline")
        return subject

    def clean_expires_in_days(self):
        return self.cleaned_data["expires_in_days"] or settings.DELIVERY_DEFAULT_DAYS

    def clean_language(self):
        language = self.cleaned_data["language"]
        if not language:
            language = self.sender.language if self.sender is not None else ""
        return language or settings.LANGUAGE_CODE


def has_secupass_key(user) -> bool:
    return user is not None and UserKey.objects.active().filter(user=user).exists()


def create_key_url() -> str:
    """Where a sender makes a SecuPass key and comes back to the compose page."""
    return reverse("keys:create") + "?next=" + reverse("sender:compose")


class MaxDaysValidator:
    """The admin-set maximum, said in words (the built-in message names no unit)."""

    def __init__(self, max_days: int):
        self.max_days = max_days

    def __call__(self, value):
        if value is not None and value > self.max_days:
            raise ValidationError(
                ngettext_lazy(
                    "A delivery can be kept for at most %(max)d day.",
                    "A delivery can be kept for at most %(max)d days.",
                    "max",
                ),
                code="max_days",
                params={"max": self.max_days},
            )

    def __eq__(self, other):
        return isinstance(other, MaxDaysValidator) and other.max_days == self.max_days
