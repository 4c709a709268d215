"""``secushare approvals list|approve``: recipients' keys waiting for the sender's approval.

A recipient who made a key after a level 3/4 delivery went out (or reset theirs) can open it
only once the sender approves the key: the sender compares its fingerprint with the
recipient by another channel and gives it with ``--fingerprint``; the client recomputes the
fingerprint from the public keys and refuses if they differ. Then it unwraps each waiting
delivery's key from the sender's own entry (after checking the sender's own signature on
it), wraps it for the recipient's key, pins the key in the keyring and posts the new entries.
"""

from __future__ import annotations

import json
import sys

from secupass import keys, sxf
from secushare_cli import prompts
from secushare_cli.client import Api
from secushare_cli.errors import REJECTED, UNSAFE, CliError
from secushare_cli.ownkey import (
    KeySession,
    fingerprint_matches,
    full_fingerprint,
    given_fingerprint,
    shown,
)


def pending(api: Api) -> list[dict]:
    answer = api.json("GET", "/api/v1/approvals", retries=2)
    items = answer.get("pending")
    if not isinstance(items, list):
        raise CliError("The server's list of pending keys is not usable.")
    return items


def describe_item(item: dict) -> tuple[str, str]:
    """(address, full fingerprint computed here) of a pending key."""
    email = sxf.normalize_email(item["email"])
    return email, full_fingerprint(email, item["ecdh_public"], item["ecdsa_public"])


def summary(item: dict) -> dict:
    """A pending key as ``approvals list --json`` prints it (the fingerprint computed here)."""
    email, fpr = describe_item(item)
    return {
        "email": email,
        "key_id": item["key_id"],
        "fingerprint": shown(fpr),
        "replaces_key": bool(item.get("replaces_key")),
        "deliveries": [
            {
                "delivery_id": d.get("delivery_id"),
                "subject": d.get("subject"),
                "level": d.get("level"),
                "sent_at": d.get("sent_at"),
                "expires_at": d.get("expires_at"),
                "approvable": bool(d.get("sender_entry")),
            }
            for d in item.get("deliveries", [])
        ],
    }


def run_list(args, api: Api, out=None) -> int:
    out = out or sys.stdout
    items = pending(api)
    if args.json:
        out.write(json.dumps([summary(item) for item in items], indent=2) + "\n")
        return 0
    if not items:
        out.write("No keys are waiting for your approval.\n")
        return 0
    for item in items:
        email, fpr = describe_item(item)
        reported = item.get("fingerprint") or ""
        out.write(f"{email}\n  fingerprint: {shown(fpr)}\n")
        if reported and not sxf.fingerprints_equal(reported, shown(fpr)):
            out.write(
                "  WARNING: the server reports another fingerprint for this key; do not "
                "approve it, tell your administrator.\n"
            )
        if item.get("replaces_key"):
            out.write("  this is a new key: the recipient had another one before (a reset)\n")
        for d in item.get("deliveries", []):
            when = (d.get("sent_at") or "")[:10]
            out.write(f"  waiting: “{d.get('subject', '')}” (level {d.get('level')}, {when})\n")
    out.write(
        "\nCompare each fingerprint with the recipient by phone or in person, then run:\n"
        '  secushare approvals approve ADDR --fingerprint "xxxx xxxx ..."\n'
    )
    return 0


def rewrap(unlocked: keys.Unlocked, item: dict, delivery: dict) -> tuple[dict | None, str]:
    """The recipient's new entry for one waiting delivery, or (None, why not)."""
    subject = delivery.get("subject", "")
    own = delivery.get("sender_entry")
    if not own:
        return None, (
            f"“{subject}” was sent with your previous SecuPass key and cannot be re-encrypted; "
            "send it again if the recipient still needs it."
        )
    did = delivery["delivery_id"]
    try:
        if own.get("key_id") != unlocked.key_id:
            raise sxf.FormatError("the entry is not for your key")
        delivery_key = sxf.unwrap_p256(unlocked.keys.ecdh, own, did)
        valid = keys.verify_delivery(
            unlocked.keys.ecdsa_public,
            sxf.b64u_decode(delivery["signature"]),
            did,
            delivery["level"],
            delivery_key,
            sxf.b64u_decode(delivery["manifest"]),
        )
    except (sxf.SXFError, KeyError, TypeError, ValueError):
        valid = False
    if not valid:
        return None, (
            f"the stored delivery “{subject}” does not carry your valid signature; it was not "
            "approved. Tell your administrator."
        )
    reader = sxf.b64u_decode(item["ecdh_public"])
    return sxf.wrap_p256(reader, item["key_id"], did, delivery_key), ""


def run_approve(args, api: Api, out=None) -> int:
    out = out or sys.stdout
    email = sxf.normalize_email(args.address.strip())
    given = given_fingerprint(args.fingerprint)
    matching = [i for i in pending(api) if sxf.normalize_email(i.get("email", "")) == email]
    if not matching:
        raise CliError(f"No key of {email} is waiting for your approval.", REJECTED)
    item = matching[0]
    _email, fpr = describe_item(item)
    if not fingerprint_matches(given, fpr):
        raise CliError(
            f"Refused: the key of {email} has the fingerprint {shown(fpr)}, not the one you "
            "gave. Do not approve it before you have compared it with the recipient; nothing "
            "was changed.",
            UNSAFE,
        )
    session = KeySession(api)
    session.require()
    unlocked = session.unlock(prompts.secupass(args.secupass_file))
    _version, pins = session.keyring()
    pinned = pins.get(email)
    if pinned and pinned != fpr:
        print(
            f"secushare: the key you approved for {email} before ({shown(pinned)}) is "
            f"replaced by {shown(fpr)}.",
            file=sys.stderr,
        )
    entries, problems = [], []
    for delivery in item.get("deliveries", []):
        entry, problem = rewrap(unlocked, item, delivery)
        if entry is None:
            problems.append(problem)
        else:
            entries.append({"delivery_id": delivery["delivery_id"], "entry": entry})
    for problem in problems:
        print(f"secushare: {problem}", file=sys.stderr)
    session.pin(email, fpr)
    if not entries:
        raise CliError(
            "None of the waiting deliveries can be approved with your current key; the key "
            f"of {email} is approved for your next deliveries.",
            REJECTED,
        )
    answer = api.json(
        "POST", "/api/v1/approvals", json={"key_id": item["key_id"], "entries": entries}
    )
    count = len(answer.get("approved", []))
    out.write(
        f"Approved the key {shown(fpr)} of {email}: {count} "
        f"{'delivery' if count == 1 else 'deliveries'} can now be opened; {email} is told by "
        "mail.\n"
    )
    return 0 if not problems else REJECTED
