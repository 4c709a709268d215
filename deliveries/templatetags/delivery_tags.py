"""Filters for the sent pages and the delivery mails."""

from datetime import datetime
from zoneinfo import ZoneInfo

from django import template
from django.conf import settings
from django.template.defaultfilters import filesizeformat
from django.utils import formats, timezone
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from deliveries import sender_views

register = template.Library()

DETAIL_LABELS = {
    "file": _("file"),
    "files": _("files"),
    "size": _("file size"),
    "bytes": _("bytes sent"),
    "range": _("part"),
    "recipients": _("recipients"),
    "days": _("days"),
    "expires_at": _("expires"),
    "expires_before": _("previous expiry"),
    "told": _("recipients told by mail"),
    "level": _("security level"),
    "via": _("confirmed by"),
}
DETAIL_VALUES = {
    ("via", "account"): _("logging in"),
    ("via", "address"): _("typing the address"),
    ("via", "api"): _("the command-line client"),
    ("via", "mailbox"): _("a mailed code or link"),
}
SIZE_KEYS = {"bytes", "size"}
DATE_KEYS = {"expires_at", "expires_before"}


def _as_datetime(value):
    if isinstance(value, datetime):
        return value
    try:
        parsed = datetime.fromisoformat(str(value))
    except ValueError:
        return None
    if timezone.is_naive(parsed):
        parsed = timezone.make_aware(parsed, ZoneInfo(settings.TIME_ZONE))
    return parsed


@register.filter
def maildate(value, kind="datetime"):
    """An ISO date from a mail's JSON context, in the active language and TIME_ZONE,
    with the zone's abbreviation: mails are read far from the server."""
    moment = _as_datetime(value)
    if moment is None:
        return value
    local = timezone.localtime(moment, ZoneInfo(settings.TIME_ZONE))
    if kind == "date":
        return formats.date_format(local, "DATE_FORMAT")
    return f"{formats.date_format(local, 'DATETIME_FORMAT')} ({local.tzname()})"


@register.filter
def delivery_state(delivery):
    """The sender's view of a delivery's status: key, label and badge class."""
    return sender_views.state_of(delivery)


@register.simple_tag
def latest_deliveries(user, count=5):
    """The newest deliveries of a sender, with state and counts, for the home page."""
    if not getattr(user, "is_sender", False):
        return []
    return sender_views.latest_for(user, count)


@register.simple_tag
def audit_detail(detail, file_names=None):
    """An audit event's detail as short "label: value" parts for people; file ids
    become the names in ``file_names`` (id → name; empty at level 4)."""
    if not isinstance(detail, dict):
        return []
    file_names = file_names or {}

    def file(value):
        return file_names.get(str(value)) or gettext("(name encrypted)")

    parts = []
    for key, value in detail.items():
        if value in (None, "", [], {}):
            continue
        if key == "zip":
            parts.append(gettext("as one ZIP archive"))
            continue
        if key in SIZE_KEYS and isinstance(value, int):
            shown = filesizeformat(value)
        elif key in DATE_KEYS:
            shown = maildate(value)
        elif key == "file":
            shown = file(value)
        elif key == "files" and isinstance(value, list):
            shown = ", ".join(file(v) for v in value)
        elif (key, value) in DETAIL_VALUES:
            shown = DETAIL_VALUES[key, value]
        elif isinstance(value, (list, tuple)):
            shown = ", ".join(str(v) for v in value)
        else:
            shown = str(value)
        parts.append(f"{DETAIL_LABELS.get(key, key.replace('_', ' '))}: {shown}")
    return parts


@register.simple_tag
def sender_label(name, email):
    """ "Sam Sender (sam@example.org)", or just the address when there is no name."""
    if name and email and name != email:
        return f"{name} ({email})"
    return name or email or ""
