"""Failed-login throttling that a stranger cannot use to lock the owner out.

Three budgets, each counted over ``LOGIN_THROTTLE_SECONDS``:

- per client address: one address guessing at many accounts is stopped;
- per account, shared by every client the owner has *not* logged in from before:
  a stranger guessing one account is stopped;
- per account and known device: a browser that logged in to this account before
  carries a signed device cookie and has a budget of its own, so the stranger's
  failures never block the owner's usual browser (OWASP "device cookies").

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


class LoginThrottle:
    def __init__(self, request, email: str):
        self.email = normalize_email(email or "")
        self.account = _digest(self.email)
        self.keys = [
            (f"login:addr:{_digest(client_address(request))}", settings.LOGIN_FAILURES_PER_ADDRESS)
        ]
        device = self._device(request)
        if device:
            self.keys.append(
                (f"login:dev:{self.account}:{device}", settings.LOGIN_FAILURES_PER_ACCOUNT)
            )
        else:
            self.keys.append((f"login:acct:{self.account}", settings.LOGIN_FAILURES_PER_ACCOUNT))

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
            if cache.add(key, 1, settings.LOGIN_THROTTLE_SECONDS):
                continue
            try:
                cache.incr(key)
            except ValueError:  # expired between add and incr
                cache.add(key, 1, settings.LOGIN_THROTTLE_SECONDS)

    def succeeded(self, request, response) -> None:
        """Forget this device's failures and remember the browser for this account."""
        cache.delete_many([key for key, _ in self.keys if not key.startswith("login:acct:")])
        remember_device(request, response, self.email)


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
