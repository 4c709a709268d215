"""Failed-login throttling that a stranger cannot use to lock the owner out.

Budgets, each counted until ``LOGIN_THROTTLE_SECONDS`` after the last counted failure:

- per client address: one address guessing at many accounts is stopped;
- per account, shared by every client the owner has *not* logged in from before:
  a stranger guessing one account is stopped;
- per account and known device: a browser that logged in to this account before
  carries a signed device cookie and has a budget of its own instead of the two
  above, so the stranger's failures never block the owner's usual browser, not even
  when the stranger shares the owner's address (OWASP "device cookies").

A success clears only the known device's own budget: an attacker who logs in to an
account of their own now and then must not reset the budget of their address.
A successful password reset by mail also logs the owner in and marks the browser
as known, so even on a new device the owner is never locked out for long.
"""

import hashlib
import secrets

from django.conf import settings
from django.core import signing
from django.core.cache import cache

from accounts.emails import normalize_email

DEVICE_COOKIE = "secushare_device"
_SALT = "secushare.accounts.device"
# Password-reset mails one address (or one client address) can cause per hour.
RESETS_PER_ACCOUNT = 5
RESETS_PER_CLIENT = 20
_RESET_WINDOW = 60 * 60


def client_address(request) -> str:
    if settings.BEHIND_PROXY:
        forwarded = request.headers.get("X-Forwarded-For", "")
        # The proxy appends the address it saw last; earlier entries are the client's word.
        last = forwarded.rsplit(",", 1)[-1].strip()
        if last:
            return last
    return request.META.get("REMOTE_ADDR", "")


def _digest(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()[:32]


def _account_key(email: str) -> str:
    return f"login:acct:{_digest(normalize_email(email))}"


def hit(key: str, timeout: int) -> int:
    """Count one event under ``key``; the count lives ``timeout`` seconds after the last one.

    ``incr`` is atomic on Redis, but the file and database caches write the value
    back with their default timeout, so the expiry is set again explicitly.
    """
    if cache.add(key, 1, timeout):
        return 1
    try:
        count = cache.incr(key)
    except ValueError:  # expired between add and incr
        cache.add(key, 1, timeout)
        return 1
    cache.touch(key, timeout)
    return count


class LoginThrottle:
    def __init__(self, request, email: str):
        self.email = normalize_email(email or "")
        self.account = _digest(self.email)
        limit = settings.LOGIN_FAILURES_PER_ACCOUNT
        device = self._device(request)
        if device:
            self.keys = [(f"login:dev:{self.account}:{device}", limit)]
        else:
            address = _digest(client_address(request))
            self.keys = [
                (f"login:addr:{address}", settings.LOGIN_FAILURES_PER_ADDRESS),
                (_account_key(self.email), limit),
            ]
        self.known_device = bool(device)

    def _device(self, request) -> str | None:
        value = request.COOKIES.get(DEVICE_COOKIE)
        if not value:
            return None
        try:
            data = signing.loads(value, salt=_SALT)
        except signing.BadSignature:
            return None
        devices = data if isinstance(data, dict) else {}
        nonce = devices.get(self.account)
        return nonce if isinstance(nonce, str) else None

    def blocked(self) -> bool:
        counts = cache.get_many([key for key, _ in self.keys])
        return any(counts.get(key, 0) >= limit for key, limit in self.keys)

    def failed(self) -> None:
        for key, _limit in self.keys:
            hit(key, settings.LOGIN_THROTTLE_SECONDS)

    def succeeded(self, request, response) -> None:
        """Forget this device's failures and remember the browser for this account."""
        if self.known_device:
            cache.delete_many([key for key, _ in self.keys])
        remember_device(request, response, self.email)


def forget_account_failures(email: str) -> None:
    """The owner proved control of the mailbox: strangers' failures no longer count."""
    cache.delete(_account_key(email))


def reset_allowed(request, email: str) -> bool:
    """Count a password-reset request; False once the address or the client asked too often.

    Refused requests are not counted, so a stranger asking again and again does not keep
    the owner's budget used up.
    """
    budgets = {
        f"reset:acct:{_digest(normalize_email(email))}": RESETS_PER_ACCOUNT,
        f"reset:addr:{_digest(client_address(request))}": RESETS_PER_CLIENT,
    }
    counts = cache.get_many(list(budgets))
    if any(counts.get(key, 0) >= limit for key, limit in budgets.items()):
        return False
    for key in budgets:
        hit(key, _RESET_WINDOW)
    return True


def remember_device(request, response, email: str) -> None:
    account = _digest(normalize_email(email))
    try:
        devices = signing.loads(request.COOKIES.get(DEVICE_COOKIE, ""), salt=_SALT)
    except signing.BadSignature:
        devices = {}
    if not isinstance(devices, dict):
        devices = {}
    devices.setdefault(account, secrets.token_urlsafe(12))
    devices = dict(list(devices.items())[-10:])
    response.set_cookie(
        DEVICE_COOKIE,
        signing.dumps(devices, salt=_SALT, compress=True),
        max_age=60 * 60 * 24 * 365,
        secure=settings.SESSION_COOKIE_SECURE,
        httponly=True,
        samesite="Lax",
    )
