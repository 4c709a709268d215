"""Who the client acts for: a sender's API token, or a recipient's delivery link.

Senders set ``SECUSHARE_URL`` and ``SECUSHARE_TOKEN``. Recipients (guest accounts have no
API tokens) open their personal link with ``POST /api/v1/receive``: the address, and from
level 2 on the account's password; the session cookie the server sets then authorises the
recipient's own key and that delivery, as it does in a browser.
"""

from __future__ import annotations

import getpass
import os
import sys
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import requests

from secushare_cli import prompts
from secushare_cli.client import Api, check_base_url, describe, insecure
from secushare_cli.client import exit_code_for as code_for
from secushare_cli.errors import FAILED, USAGE, CliError


def warn_insecure(base: str, what: str) -> None:
    if insecure(base):
        print(
            f"secushare: warning: {base} is not https; {what} travel unprotected.",
            file=sys.stderr,
        )


def token_api(base: str | None) -> Api:
    """The API as the sender whose token is in SECUSHARE_TOKEN."""
    token = os.environ.get("SECUSHARE_TOKEN", "").strip()
    if not base:
        raise CliError("Set SECUSHARE_URL to the address of your SecuShare server.", USAGE)
    if not token:
        raise CliError(
            "Set SECUSHARE_TOKEN to a personal API token (see the server's API tokens page).",
            USAGE,
        )
    warn_insecure(base, "the token and the delivery key")
    return Api(base, token)


def parse_link(link: str, fallback_base: str | None) -> tuple[str, str]:
    """The server's base address and the link token from a link in a delivery mail."""
    link = link.strip()
    parts = urlsplit(link)
    if parts.scheme in ("http", "https") and parts.netloc:
        segments = [s for s in parts.path.split("/") if s]
        if not segments:
            raise CliError(f"{link!r} does not look like a delivery link.", USAGE)
        return check_base_url(f"{parts.scheme}://{parts.netloc}", "The link"), segments[-1]
    if "/" in link or not link:
        raise CliError(f"{link!r} does not look like a delivery link.", USAGE)
    if not fallback_base:
        raise CliError("Give the whole link, or set SECUSHARE_URL for a bare token.", USAGE)
    return fallback_base, link


class Refused(CliError):
    def __init__(self, response: requests.Response):
        super().__init__(describe(response), code_for(response.status_code))
        self.response = response

    @property
    def needs_password(self) -> bool:
        try:
            data = self.response.json()
        except ValueError:
            return False
        return isinstance(data, dict) and bool(data.get("password_required"))


def open_delivery(api: Api, token: str, email: str, password: str | None) -> dict:
    body = {"token": token, "email": email}
    if password is not None:
        body["password"] = password
    response = api.request("POST", "/api/v1/receive", json=body, retries=2)
    if response.status_code == 200:
        try:
            return response.json()
        except ValueError:
            raise CliError("The server's answer is not JSON.", FAILED) from None
    raise Refused(response)


def ask_password(args) -> str | None:
    if getattr(args, "password", None) is not None:  # "-", the only value the parser accepts
        return prompts.stdin_line("--password -: the password")
    return None


@dataclass
class LinkLogin:
    api: Api
    received: dict
    password: str | None = field(default=None, repr=False)


def link_login(args, env_base: str | None) -> LinkLogin:
    """Open ``args.link`` as ``args.email`` (asking for the password when needed); the
    returned API carries the session of the recipient's account."""
    base, token = parse_link(args.link, env_base)
    api = Api(base)
    password = ask_password(args)
    try:
        received = open_delivery(api, token, args.email, password)
    except Refused as refused:
        if not (refused.needs_password and password is None and prompts.interactive()):
            raise
        password = getpass.getpass(f"Password of the account {args.email}: ")
        received = open_delivery(api, token, args.email, password)
    return LinkLogin(api, received, password)
