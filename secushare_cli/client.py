"""A thin HTTP client for the SecuShare API that turns every failure into a CliError."""

from __future__ import annotations

import secrets
import string
import time
from urllib.parse import urljoin, urlsplit

import requests

from secushare_cli import __version__
from secushare_cli.errors import FAILED, REFUSED, REJECTED, USAGE, CliError

CONNECT_TIMEOUT = 15
READ_TIMEOUT = 600  # sending verifies every blob on the server before it answers
NETWORK_ERRORS = (requests.ConnectionError, requests.Timeout)
RETRY_STATUSES = {502, 503, 504}
CSRF_COOKIE = "csrftoken"
CSRF_ALPHABET = string.ascii_letters + string.digits


def check_base_url(url: str, what: str) -> str:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise CliError(f"{what} must be an http:// or https:// address, not {url!r}.", USAGE)
    return f"{parts.scheme}://{parts.netloc}{parts.path.rstrip('/')}/"


def insecure(url: str) -> bool:
    parts = urlsplit(url)
    return parts.scheme == "http" and parts.hostname not in ("localhost", "127.0.0.1", "::1")


def describe(response: requests.Response) -> str:
    """The server's own words for a refusal, or the HTTP status if it gave none."""
    try:
        data = response.json()
    except ValueError:
        data = None
    if isinstance(data, dict):
        if isinstance(data.get("error"), str):
            return data["error"]
        if isinstance(data.get("errors"), dict):
            lines = []
            for field, messages in data["errors"].items():
                if isinstance(messages, list):
                    messages = " ".join(str(m) for m in messages)
                lines.append(f"{field}: {messages}")
            return "\n".join(lines)
    return f"the server answered HTTP {response.status_code} {response.reason or ''}".strip()


def exit_code_for(status: int) -> int:
    if status in (401, 403, 429):
        return REFUSED
    if status in (400, 404, 409, 410, 413):
        return REJECTED
    return FAILED


class Api:
    def __init__(self, base_url: str, token: str | None = None):
        self.base_url = base_url
        self.session = requests.Session()
        self.session.headers["User-Agent"] = f"secushare-cli/{__version__}"
        if token:
            self.session.headers["Authorization"] = f"Bearer {token}"

    def url(self, path: str) -> str:
        return urljoin(self.base_url, path)

    def use_session_csrf(self) -> None:
        """Authenticate by the session cookie the server set (a link login): changing
        requests then carry the CSRF token, as the server's own pages send it."""
        token = self.session.cookies.get(CSRF_COOKIE)
        if not token:
            # Django accepts a token the client made, as long as cookie and header agree
            # (double submit); a cookie of this server tells the jar which domain to use.
            token = "".join(secrets.choice(CSRF_ALPHABET) for _ in range(32))
            domain = next(
                (c.domain for c in self.session.cookies), urlsplit(self.base_url).hostname
            )
            self.session.cookies.set(CSRF_COOKIE, token, domain=domain, path="/")
        self.session.headers["X-CSRFToken"] = token
        self.session.headers["Referer"] = self.base_url

    def request(self, method: str, path: str, *, retries: int = 0, **kwargs) -> requests.Response:
        """Send one request; network errors and 502-504 are retried ``retries`` times."""
        kwargs.setdefault("timeout", (CONNECT_TIMEOUT, READ_TIMEOUT))
        url = self.url(path)
        for attempt in range(retries + 1):
            try:
                response = self.session.request(method, url, **kwargs)
            except NETWORK_ERRORS as e:
                if attempt == retries:
                    raise CliError(f"Cannot reach {self.base_url}: {_reason(e)}", FAILED) from None
                time.sleep(backoff(attempt))
                continue
            if response.status_code in RETRY_STATUSES and attempt < retries:
                time.sleep(backoff(attempt))
                continue
            return response
        raise AssertionError("unreachable")

    def json(self, method: str, path: str, *, expect=(200,), **kwargs) -> dict:
        response = self.request(method, path, **kwargs)
        if response.status_code not in expect:
            raise CliError(describe(response), exit_code_for(response.status_code))
        if response.status_code == 204:
            return {}
        try:
            return response.json()
        except ValueError:
            raise CliError(
                f"The server's answer to {method} {path} is not JSON; is {self.base_url} "
                "a SecuShare server?",
                FAILED,
            ) from None


def backoff(attempt: int) -> float:
    return min(0.5 * 2**attempt, 15.0)


def _reason(error: Exception) -> str:
    text = str(error)
    if "Connection refused" in text:
        return "connection refused"
    if isinstance(error, requests.Timeout):
        return "no answer in time"
    return text.splitlines()[0][:200] if text else type(error).__name__
