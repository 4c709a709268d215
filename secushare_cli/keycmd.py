"""``secushare keys create|show|reset``: the user's SecuPass key, made on this computer.

The server issues a key id and a pepper; the key pairs are generated here, the private
record is sealed under a key derived from the SecuPass (PBKDF2-SHA256) and the pepper, and
only public keys and sealed data are registered. Senders act with their API token; recipients
(whose guest accounts have no tokens) log in with a delivery link, address and password.
"""

from __future__ import annotations

import sys

from secupass import keys, sxf
from secushare_cli import prompts
from secushare_cli.client import Api
from secushare_cli.errors import FAILED, REJECTED, USAGE, WAITING, CliError
from secushare_cli.login import link_login, token_api
from secushare_cli.ownkey import KeySession, full_fingerprint, shown

RESET_WARNING = """Resetting makes a new key pair with a new SecuPass:
  - deliveries encrypted to your current key cannot be opened with the new one until
    their senders approve your new key (they are asked by mail; nothing is sent again);
  - your list of approved keys (the keyring) starts empty: you will compare the
    fingerprints of senders and recipients again.
If you still know your SecuPass, keep your key instead."""


def account(args, env_base: str | None) -> tuple[Api, str | None]:
    """The API as the user (token, or a link login) and the login password if it is known."""
    if args.link:
        if not args.email:
            raise CliError("--link needs --email, the address the delivery was sent to.", USAGE)
        login = link_login(args, env_base)
        if (login.received.get("delivery") or {}).get("level", 1) < 2:
            raise CliError(
                "This link does not log you in (level 1 deliveries need no account). Use the "
                "link of a level 2, 3 or 4 delivery.",
                USAGE,
            )
        login.api.use_session_csrf()
        return login.api, login.password
    if args.email or args.password:
        raise CliError("--email and --password belong to --link.", USAGE)
    return token_api(env_base), None


def make_key(api: Api, session: KeySession, secupass: str) -> dict:
    """Issue, create and register a new key; returns GET mine of the new key."""
    issued = api.json("POST", "/api/v1/keys/issue", json={}, expect=(200, 201))
    iterations = issued.get("iterations") or keys.DEFAULT_ITERATIONS
    if not isinstance(iterations, int) or iterations > keys.MAX_ITERATIONS:
        raise CliError("The server asks for an unusable number of iterations.", FAILED)
    iterations = max(iterations, keys.DEFAULT_ITERATIONS)
    try:
        unlocked, body = keys.create_key(
            secupass, issued["key_id"], issued["pepper"], iterations=iterations
        )
    except (sxf.SXFError, KeyError, TypeError) as e:
        raise CliError(f"The server's answer cannot be used to make a key: {e}.", FAILED) from None
    registered = api.json(
        "POST", f"/api/v1/keys/{unlocked.key_id}/register", json=body, expect=(200, 201)
    )
    session.seen.note(unlocked.key_id, 1)
    info = session.require()
    if info["key_id"] != unlocked.key_id or info["ecdh_public"] != body["ecdh_public"]:
        raise CliError("The server did not keep the new key; try again.", FAILED)
    fpr = full_fingerprint(info["email"], body["ecdh_public"], body["ecdsa_public"])
    reported = registered.get("fingerprint") or ""
    if reported and not sxf.fingerprints_equal(reported, shown(fpr)):
        raise CliError("The server reports another fingerprint for your new key.", FAILED)
    return info


def print_ready(info: dict, out) -> None:
    fpr = full_fingerprint(info["email"], info["ecdh_public"], info["ecdsa_public"])
    out.write(
        f"Your SecuPass key for {info['email']} is ready. Its fingerprint:\n"
        f"    {shown(fpr)}\n"
        "Senders compare it before they approve your key. If one asks you for it, read it "
        "out by phone or in person, never in reply to a mail.\n"
    )


def run_create(args, env_base: str | None, out=None) -> int:
    out = out or sys.stdout
    api, password = account(args, env_base)
    session = KeySession(api)
    info = session.fetch()
    if info is not None:
        fpr = full_fingerprint(info["email"], info["ecdh_public"], info["ecdsa_public"])
        raise CliError(
            f"You already have a SecuPass key (fingerprint {shown(fpr)}). To replace it, "
            "run: secushare keys reset",
            REJECTED,
        )
    secupass = prompts.secupass(args.secupass_file, new=True, login_password=password)
    print_ready(make_key(api, session, secupass), out)
    return 0


def run_reset(args, env_base: str | None, out=None) -> int:
    out = out or sys.stdout
    api, password = account(args, env_base)
    session = KeySession(api)
    if session.fetch() is None:
        raise CliError("You have no SecuPass key; create one with: secushare keys create", REJECTED)
    print(RESET_WARNING, file=sys.stderr)
    if not args.yes:
        answer = prompts.confirm("Reset your SecuPass key now?")
        if answer is None:
            raise CliError("Nothing was changed. Give --yes to reset without being asked.", USAGE)
        if not answer:
            raise CliError("Nothing was changed.", REJECTED)
    secupass = prompts.secupass(args.secupass_file, new=True, login_password=password)
    print_ready(make_key(api, session, secupass), out)
    return 0


def run_show(args, env_base: str | None, out=None) -> int:
    out = out or sys.stdout
    api, _password = account(args, env_base)
    session = KeySession(api)
    info = session.fetch()
    if info is None:
        raise CliError(
            "You have no SecuPass key yet; create one with: secushare keys create", WAITING
        )
    session.info = info
    fpr = full_fingerprint(info["email"], info["ecdh_public"], info["ecdsa_public"])
    reported = info.get("fingerprint") or ""
    out.write(f"address:     {info['email']}\n")
    out.write(f"fingerprint: {shown(fpr)}\n")
    out.write(f"key id:      {info['key_id']}\n")
    out.write(f"created:     {(info.get('created_at') or '?')[:19].replace('T', ' ')}\n")
    if reported and not sxf.fingerprints_equal(reported, shown(fpr)):
        out.write("WARNING: the server reports another fingerprint for this key.\n")
    if args.pins:
        session.unlock(prompts.secupass(args.secupass_file))
        version, pins = session.keyring()
        out.write(f"keyring:     version {version}, {len(pins)} approved\n")
        for email, pinned in sorted(pins.items()):
            out.write(f"  {email}: {shown(pinned)}\n")
    return 0
