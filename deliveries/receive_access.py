"""Who may see a recipient's pages and files, and the throttle on guessing addresses.

The link token is used once, on the landing page (``/d/<token>``). From then on this browser's
session remembers the recipient id, first as *opened* (the token was shown), then as
*confirmed* (the address was typed correctly), and every later URL names only the recipient id
(``/r/<id>/``). A recipient page answers 404 unless the session holds that id, or the logged-in
account is the one this recipient was bound to at level 2 (so a guest's list of received
deliveries can link to them). Files need *ready*: the address confirmed and, from level 2, the
logged-in account's address equal to the recipient's.
"""

import functools
import hashlib
import hmac
from dataclasses import dataclass

from django.contrib.auth import login
from django.core.cache import cache
from django.db import transaction
from django.shortcuts import render
from django.utils import timezone

from accounts.emails import normalize_email
from accounts.throttle import client_address, hit
from deliveries import audit
from deliveries.models import AuditEvent, Delivery, Recipient

SESSION_KEY = "receive"
OPENED = "opened"
CONFIRMED = "confirmed"
MAX_REMEMBERED = 50

# Wrong addresses: per recipient and per client, counted until WINDOW seconds after the last
# counted failure. Refused attempts are not counted, so the block always ends.
ADDRESS_FAILURES_PER_RECIPIENT = 5
ADDRESS_FAILURES_PER_CLIENT = 20
WINDOW = 15 * 60


def same_address(a: str, b: str) -> bool:
    return hmac.compare_digest(normalize_email(a or "").encode(), normalize_email(b).encode())


def account_matches(request, recipient: Recipient) -> bool:
    user = request.user
    return bool(
        user.is_authenticated and user.is_active and same_address(user.email, recipient.email)
    )


def remember(request, recipient: Recipient, state: str) -> None:
    """Note in the session that this browser opened (or confirmed) the recipient's link."""
    data = dict(request.session.get(SESSION_KEY) or {})
    key = str(recipient.id)
    if not (state == OPENED and data.get(key) == CONFIRMED):
        data.pop(key, None)
        data[key] = state
    request.session[SESSION_KEY] = dict(list(data.items())[-MAX_REMEMBERED:])


def session_state(request, recipient: Recipient) -> str | None:
    return (request.session.get(SESSION_KEY) or {}).get(str(recipient.id))


def login_keeping_access(request, user) -> None:
    """Log ``user`` in without losing the deliveries this browser has opened."""
    kept = dict(request.session.get(SESSION_KEY) or {})
    login(request, user, backend="django.contrib.auth.backends.ModelBackend")
    request.session[SESSION_KEY] = {**(request.session.get(SESSION_KEY) or {}), **kept}


@dataclass
class Access:
    recipient: Recipient
    confirmed: bool  # the address step is done
    account_ok: bool  # logged in with the recipient's address

    @property
    def delivery(self) -> Delivery:
        return self.recipient.delivery

    @property
    def needs_account(self) -> bool:
        return self.delivery.level >= Delivery.Level.ACCOUNT

    @property
    def ready(self) -> bool:
        """May see the message and download the files (availability aside)."""
        return self.confirmed and (self.account_ok or not self.needs_account)


def resolve(request, rid) -> Access | None:
    """The access this request has to recipient ``rid``, or None (answer 404)."""
    recipient = (
        Recipient.objects.select_related("delivery", "delivery__sender", "user")
        .filter(pk=rid)
        .first()
    )
    if recipient is None:
        return None
    state = session_state(request, recipient)
    account_ok = account_matches(request, recipient)
    bound = account_ok and recipient.user_id == request.user.pk
    if state is None and not bound:
        return None
    access = Access(recipient, confirmed=state == CONFIRMED or account_ok, account_ok=account_ok)
    if access.confirmed and state != CONFIRMED:
        # The account proves the address at least as well as typing it would.
        confirm(request, recipient, via="account")
    return access


def confirm(request, recipient: Recipient, via: str) -> None:
    """The address is proven: remember it, record it (``confirmed_at`` the first time)."""
    remember(request, recipient, CONFIRMED)
    with transaction.atomic():
        Recipient.objects.filter(pk=recipient.pk, confirmed_at__isnull=True).update(
            confirmed_at=timezone.now()
        )
        audit.record(
            AuditEvent.Kind.ADDRESS_CONFIRMED, request=request, recipient=recipient, via=via
        )


def mark_opened(request, recipient: Recipient) -> None:
    """The first open sets ``opened_at`` and writes the ``opened`` event."""
    with transaction.atomic():
        first = Recipient.objects.filter(pk=recipient.pk, opened_at__isnull=True).update(
            opened_at=timezone.now()
        )
        if first:
            audit.record(AuditEvent.Kind.OPENED, request=request, recipient=recipient)
    remember(request, recipient, OPENED)


def bind_account(request, recipient: Recipient) -> None:
    """A level 2+ recipient got through with an account: link it, record ``logged_in``."""
    user = request.user
    with transaction.atomic():
        changed = Recipient.objects.filter(pk=recipient.pk).exclude(user=user).update(user=user)
        if changed:
            audit.record(AuditEvent.Kind.LOGGED_IN, request=request, recipient=recipient)
    recipient.user = user


def _digest(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()[:32]


def _address_budgets(request, recipient) -> dict[str, int]:
    return {
        f"recv:addr:rcpt:{recipient.pk}": ADDRESS_FAILURES_PER_RECIPIENT,
        f"recv:addr:client:{_digest(client_address(request))}": ADDRESS_FAILURES_PER_CLIENT,
    }


def address_blocked(request, recipient: Recipient) -> bool:
    budgets = _address_budgets(request, recipient)
    counts = cache.get_many(list(budgets))
    return any(counts.get(key, 0) >= limit for key, limit in budgets.items())


def address_failed(request, recipient: Recipient) -> None:
    for key in _address_budgets(request, recipient):
        hit(key, WINDOW)
    audit.record(AuditEvent.Kind.ADDRESS_REFUSED, request=request, recipient=recipient)


def not_found(request):
    """The one answer for anything not reached through its own recipient link."""
    return render(request, "deliveries/receive/not_found.html", status=404)


def gone(request, recipient: Recipient, reason: str, *, back: bool = False):
    """410: expired, withdrawn or used up; ``back`` links to the delivery page."""
    return render(
        request,
        "deliveries/receive/gone.html",
        {"reason": reason, "delivery": recipient.delivery, "recipient": recipient, "back": back},
        status=410,
    )


def recipient_view(view):
    """Resolve ``rid`` to an :class:`Access` (or answer 404) and check availability (410)."""

    @functools.wraps(view)
    def wrapper(request, rid, *args, **kwargs):
        access = resolve(request, rid)
        if access is None:
            return not_found(request)
        reason = access.recipient.unavailable_reason()
        if reason:
            return gone(request, access.recipient, reason)
        return view(request, access, *args, **kwargs)

    return wrapper
