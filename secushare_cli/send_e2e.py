"""``secushare send --level 3|4``: the server gets only ciphertext, key entries and a signature.

The sender's key is unlocked with the SecuPass; the keyring says which recipient keys the
sender approved. The delivery key is wrapped for the sender's own key and for every
recipient whose key has exactly the approved fingerprint; a key that differs from its pin is
never encrypted to. The files are encrypted while uploading, their digests go into the
manifest (at level 4 with the message and the names, none of which reach the server in the
clear), which is sealed and signed. Recipients without an approved key wait until the
sender approves their key (``secushare approvals``).
"""

from __future__ import annotations

import hashlib
import secrets
import sys
from dataclasses import dataclass, field
from urllib.parse import quote

from secupass import keys, sxf
from secushare_cli import prompts
from secushare_cli.client import Api, describe, exit_code_for
from secushare_cli.errors import UNSAFE, CliError
from secushare_cli.ownkey import KeySession, fingerprint_matches, full_fingerprint, shown
from secushare_cli.send import (
    check_files,
    delete_draft,
    draft_body,
    plural,
    read_message,
    report,
    upload_file,
)


@dataclass
class Reader:
    email: str
    key_id: str
    ecdh_public: bytes


@dataclass
class Plan:
    """The recipients sorted by what their keys allow."""

    readers: list[Reader] = field(default_factory=list)
    without_key: list[str] = field(default_factory=list)
    unapproved: dict[str, str] = field(default_factory=dict)  # email -> offered fingerprint
    mismatched: dict[str, tuple[str, str]] = field(default_factory=dict)  # (pinned, offered)

    def notes(self) -> dict[str, str]:
        notes = {email: "waiting for a SecuPass key" for email in self.without_key}
        for email, fpr in self.unapproved.items():
            notes[email] = f"waiting for your approval of the key {shown(fpr)}"
        for email, (_pinned, offered) in self.mismatched.items():
            notes[email] = f"NOT encrypted to: the offered key {shown(offered)} is not the approved"
        return notes


def lookup(api: Api, email: str) -> dict | None:
    response = api.request("GET", f"/api/v1/keys/lookup?email={quote(email)}", retries=2)
    if response.status_code == 404:
        return None
    if response.status_code != 200:
        raise CliError(describe(response), exit_code_for(response.status_code))
    return response.json()


def classify(
    api: Api, session: KeySession, emails: list[str], approved: dict[str, str], *, ask: bool
) -> Plan:
    """Look up every recipient's key and compare its fingerprint, computed here, with the pin."""
    _version, pins = session.keyring()
    plan = Plan()
    for email in emails:
        email = sxf.normalize_email(email)
        key = lookup(api, email)
        if key is None:
            plan.without_key.append(email)
            continue
        offered = full_fingerprint(email, key["ecdh_public"], key["ecdsa_public"])
        reader = Reader(email, key["key_id"], sxf.b64u_decode(key["ecdh_public"]))
        pinned = pins.get(email)
        given = approved.get(email)
        if pinned == offered:
            plan.readers.append(reader)
        elif given is not None:
            if not fingerprint_matches(given, offered):
                raise CliError(
                    f"Refused: the key the server offers for {email} has the fingerprint "
                    f"{shown(offered)}, not the one you gave with --approve-fingerprint. "
                    "Nothing was sent.",
                    UNSAFE,
                )
            if pinned:
                print(
                    f"secushare: replacing the approved key of {email} ({shown(pinned)}) by "
                    f"{shown(offered)}.",
                    file=sys.stderr,
                )
            session.pin(email, offered)
            plan.readers.append(reader)
        elif pinned:
            plan.mismatched[email] = (pinned, offered)
        elif ask and ask_approval(email, offered):
            session.pin(email, offered)
            plan.readers.append(reader)
        else:
            plan.unapproved[email] = offered
    return plan


def ask_approval(email: str, offered: str) -> bool:
    if not prompts.interactive():
        return False
    print(
        f"{email} has a SecuPass key you have not approved yet. Its fingerprint is\n"
        f"    {shown(offered)}",
        file=sys.stderr,
    )
    return bool(
        prompts.confirm(f"Did you compare it with {email} by phone or in person, and approve it?")
    )


def refuse_mismatched(plan: Plan, skip: bool) -> None:
    for email, (pinned, offered) in plan.mismatched.items():
        print(
            f"secushare: WARNING: the server offers a key for {email} with the fingerprint "
            f"{shown(offered)}, but you approved {shown(pinned)}. They may have reset their "
            "SecuPass, or someone is trying to slip you another key. Nothing is encrypted to "
            f"it. Compare the new fingerprint with {email} by phone or in person; if it is "
            f'theirs, give --approve-fingerprint "{email}={shown(offered)}".',
            file=sys.stderr,
        )
    if plan.mismatched and not skip:
        raise CliError(
            "Refused: a recipient's key differs from the one you approved ("
            + ", ".join(plan.mismatched)
            + "). Nothing was sent. Give --skip-mismatched to send to the others only.",
            UNSAFE,
        )


def e2e_draft_body(args, files) -> tuple[dict, str]:
    """The draft's JSON, and the message that goes into the manifest (level 4) or is hashed."""
    body = draft_body(args)
    message = read_message(args).strip()
    if args.level == 4:
        body["message"] = ""  # it travels only inside the sealed manifest
        if args.subject is None:  # the default subject would name the files
            body["subject"] = f"Encrypted delivery ({plural(len(files), 'file')})"
    else:
        body["message"] = message
    return body, message


def run(args, api: Api, out) -> int:
    files = check_files(args.files)
    approved = dict(args.approve_fingerprint or [])
    session = KeySession(api)
    session.require()
    unlocked = session.unlock(prompts.secupass(args.secupass_file))
    session.keyring()  # an older keyring is refused before anything is made
    body, message = e2e_draft_body(args, files)
    delivery = api.json("POST", "/api/v1/deliveries", json=body, expect=(201,))
    did = delivery["id"]
    sent = False
    try:
        emails = [r["email"] for r in delivery.get("recipients", [])]
        refuse_mismatched(classify(api, session, emails, approved, ask=True), args.skip_mismatched)
        if args.level == 3 and delivery.get("message") != message:
            raise CliError("The server changed the message while storing it; not sent.")
        delivery_key = secrets.token_bytes(sxf.KEY_LEN)
        items = []
        for local in files:
            digest = sxf.BlobDigest()
            file_id = upload_file(
                api, delivery, delivery_key, local, named=args.level == 3, digest=digest
            )
            items.append(
                {
                    "file_id": file_id,
                    "name": local.name,
                    "type": local.content_type,
                    "size": local.size,
                    "digest": digest.hexdigest(),
                }
            )
        if args.level == 3:
            # The server shows these names to the recipients, who check them against the
            # manifest: sign the names as the server stored them (it makes hostile ones safe).
            stored = api.json("GET", f"/api/v1/deliveries/{did}")
            names = {f["id"]: f["name"] for f in stored.get("files", [])}
            for item in items:
                item["name"] = names.get(item["file_id"]) or item["name"]
        # Keys may have changed while the files were uploading: look again just before.
        plan = classify(api, session, emails, approved, ask=False)
        refuse_mismatched(plan, args.skip_mismatched)
        if session.require()["key_id"] != unlocked.key_id:
            raise CliError("Your SecuPass key was replaced meanwhile; nothing was sent.")
        payload = send_body(unlocked, did, args.level, delivery_key, plan, items, message)
        delivery = api.json("POST", f"/api/v1/deliveries/{did}/send", json=payload)
        sent = True
    finally:
        if not sent:
            delete_draft(api, delivery)
    report(delivery, files, out, as_json=args.json, notes=plan.notes())
    return 0


def send_body(
    unlocked: keys.Unlocked,
    delivery_id: str,
    level: int,
    delivery_key: bytes,
    plan: Plan,
    items: list[dict],
    message: str,
) -> dict:
    """Entries for the sender's own key and each approved reader, the sealed manifest and
    the sender's signature."""
    entries = [sxf.wrap_p256(unlocked.keys.ecdh_public, unlocked.key_id, delivery_id, delivery_key)]
    done = {unlocked.key_id}
    for reader in plan.readers:
        if reader.key_id not in done:
            done.add(reader.key_id)
            entries.append(
                sxf.wrap_p256(reader.ecdh_public, reader.key_id, delivery_id, delivery_key)
            )
    manifest: dict = {"files": items}
    message_sha256 = hashlib.sha256(message.encode()).hexdigest()
    if level == 4:
        manifest["message"] = message
    else:
        manifest["message_sha256"] = message_sha256
    sealed = keys.seal_manifest(manifest, delivery_key, delivery_id)
    signature = keys.sign_delivery(unlocked.keys.ecdsa, delivery_id, level, delivery_key, sealed)
    body = {
        "entries": entries,
        "manifest": sxf.b64u_encode(sealed),
        "signature": sxf.b64u_encode(signature),
    }
    if level == 3:
        body["message_sha256"] = message_sha256
    return body
