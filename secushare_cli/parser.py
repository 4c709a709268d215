"""The ``secushare`` command line: every command, option and help text."""

from __future__ import annotations

import argparse
import re

from secushare_cli import __version__
from secushare_cli.errors import EXIT_CODES_HELP

ENVIRONMENT_HELP = """environment:
  SECUSHARE_URL    address of the SecuShare server, e.g. https://share.example.org
  SECUSHARE_TOKEN  a personal API token (make one on the server's "API tokens" page
                   or with: manage.py create_api_token EMAIL)
  XDG_CONFIG_HOME  where the folder secushare/ with keyring-versions.json is kept
                   (default ~/.config): the highest keyring version seen per key"""

SECUPASS_HELP = """SecuPass: levels 3 and 4 are end-to-end encrypted with your SecuPass key. Give
the SecuPass with --secupass-file F (its first line; - reads a line of standard
input) or type it when asked. It never leaves this computer."""

LEVELS_HELP = """security levels: 1 = the recipient confirms the e-mail address; 2 = the
recipient also logs in with a guest account for that address; 3 = as 2, and the
files are end-to-end encrypted for the recipient's SecuPass key; 4 = as 3, and the
message and file names too (the subject is never encrypted)."""

SEND_EPILOG = f"""Each file is encrypted on this computer, chunk by chunk, into the SXF1 format
and uploaded with tus (resumable: a broken connection resumes where it stopped).
At levels 1 and 2 the delivery key goes to the server when the delivery is sent;
the server keeps it only wrapped under its master key.

At levels 3 and 4 the delivery key never reaches the server: it is wrapped for
your own key and for every recipient key you approved (your keyring). A recipient
whose key you have not approved waits until you approve it (secushare approvals);
you are asked at the terminal, or approve with --approve-fingerprint after
comparing the fingerprint with the recipient by phone or in person. If the server
offers a key that differs from the one you approved, nothing is sent (unless
--skip-mismatched: then that recipient is left out). At level 4 the message and
the file names travel only inside the encrypted manifest.

On success the delivery id is printed first, then each recipient's status.

{LEVELS_HELP}

{SECUPASS_HELP}

{ENVIRONMENT_HELP}

{EXIT_CODES_HELP}

examples:
  secushare send --level 2 --to alice@example.org --to bob@example.org \\
      --subject "Contract" --message-file note.txt contract.pdf annex.zip
  secushare send --level 4 --to alice@example.org --secupass-file ~/.secupass \\
      --subject "Board papers" --message "Strictly confidential." minutes.pdf"""

FETCH_EPILOG = f"""LINK is the personal link from the delivery mail. The files are saved in DIR
under the names they were sent with (made safe: no folders, no control
characters); an existing file is never overwritten, the new one gets a suffix
like " (1)". Each file is written to a hidden temporary file first and renamed
when complete. If the server refuses the address or password, nothing is written.
Level 2 to 4 deliveries need the password of the guest account for that address:
give --password - to read it from standard input, or type it when asked.

At levels 3 and 4 the files are decrypted here with your SecuPass key: the
sender's signature is verified with the sender's key (approved before, or shown
with its fingerprint and approved now: on a computer that has not used your
keyring before only after you confirm it, or with --approve-fingerprint), every
file is checked against the signed list of files, and the message is printed
before the saved files. A file that does not verify is not saved.

{SECUPASS_HELP}

environment:
  SECUSHARE_URL    used only when LINK is a bare token instead of a whole link
  XDG_CONFIG_HOME  where secushare/keyring-versions.json is kept (default ~/.config)

{EXIT_CODES_HELP}

example:
  secushare fetch "https://share.example.org/d/AbC..." --email me@example.org -o ~/Downloads"""

KEYS_EPILOG = f"""Senders act with SECUSHARE_URL and SECUSHARE_TOKEN. Recipients (guest accounts
have no API tokens) log in with the link of a delivery they received (level 2 or
higher): --link LINK --email ADDR, and --password - or the password when asked.

create  make your SecuPass key (asks for the SecuPass twice, or --secupass-file)
        and print its fingerprint
show    print your key's address and fingerprint (8 groups of 4 hex digits);
        with --pins, after the SecuPass, also the keys you approved
reset   make a new key with a new SecuPass, after a warning and a question
        (--yes: no question). Deliveries to the old key can be opened again once
        their senders approve the new key; nothing has to be sent again.

A SecuPass has at least 12 characters and must differ from your login password
(checked when you log in with --link; with a token, make sure of it yourself).

{ENVIRONMENT_HELP}

{EXIT_CODES_HELP}

examples:
  secushare keys create --secupass-file ~/.secupass
  secushare keys create --link "https://share.example.org/d/AbC..." --email me@example.org
  secushare keys show"""

APPROVALS_EPILOG = f"""list     the recipients' keys waiting for your approval: address, fingerprint
         (computed here from the public keys) and the deliveries waiting for it
approve  approve the waiting key of ADDR. --fingerprint must be the fingerprint
         you compared with the recipient by phone or in person; it must match the
         key, or nothing is changed. Then your SecuPass unlocks your key, the
         delivery key of every waiting delivery is encrypted for the recipient's
         key, the key is approved in your keyring for later deliveries, and the
         recipient is told by mail.

{SECUPASS_HELP}

{ENVIRONMENT_HELP}

{EXIT_CODES_HELP}

example:
  secushare approvals approve alice@example.org --fingerprint "1a2b 3c4d 5e6f ..." """


def positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def address_fingerprint(text: str) -> tuple[str, str]:
    """ADDR=FPR, the fingerprint as shown (32 hex digits in groups) or all 64 digits."""
    from secupass.sxf import normalize_email

    address, sep, fingerprint = text.partition("=")
    digits = "".join(fingerprint.split()).lower()
    if not sep or "@" not in address or not re.fullmatch(r"[0-9a-f]{32}|[0-9a-f]{64}", digits):
        raise argparse.ArgumentTypeError(
            f'{text!r} is not ADDR=FINGERPRINT (e.g. alice@example.org="1a2b 3c4d ...")'
        )
    return normalize_email(address.strip()), digits


def secupass_option(parser, what: str = "unlock your key") -> None:
    parser.add_argument(
        "--secupass-file",
        metavar="F",
        help=f"read the SecuPass that is to {what} from the first line of file F "
        "(- for standard input); without it you are asked",
    )


def approve_option(parser, whose: str) -> None:
    parser.add_argument(
        "--approve-fingerprint",
        action="append",
        type=address_fingerprint,
        metavar="ADDR=FPR",
        help=f"approve the key of {whose} ADDR if its fingerprint is FPR (compared with them "
        "by phone or in person); repeat for several",
    )


def link_options(parser) -> None:
    parser.add_argument(
        "--link",
        metavar="LINK",
        help="log in as a recipient with the link of a delivery you received (level 2+), "
        "instead of SECUSHARE_TOKEN",
    )
    parser.add_argument("--email", metavar="ADDR", help="with --link: the address it was sent to")
    parser.add_argument(
        "--password",
        choices=("-",),
        help="with --link: '-' reads the account's password from the first line of standard "
        "input; without it you are asked",
    )


def sub(commands, name, help_text, description, epilog):
    return commands.add_parser(
        name,
        help=help_text,
        description=description,
        epilog=epilog,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )


def add_send(commands) -> None:
    send = sub(
        commands,
        "send",
        "encrypt, upload and send files",
        "Encrypt FILES, upload them and send them to the recipients.",
        SEND_EPILOG,
    )
    send.add_argument(
        "--level",
        type=int,
        choices=(1, 2, 3, 4),
        required=True,
        help="security level 1, 2, 3 or 4 (see below)",
    )
    send.add_argument(
        "--to",
        action="append",
        required=True,
        metavar="ADDR",
        help="recipient's e-mail address; repeat for several, or give a list separated by "
        "commas or semicolons",
    )
    send.add_argument(
        "--subject",
        help="subject of the mail (never encrypted; default: the file names, at level 4 "
        "only their number)",
    )
    message = send.add_mutually_exclusive_group()
    message.add_argument("--message", metavar="M", help="message to the recipients")
    message.add_argument(
        "--message-file",
        metavar="F",
        help="read the message from file F (UTF-8; - for standard input)",
    )
    send.add_argument(
        "--expires-days",
        type=positive,
        metavar="N",
        help="keep the delivery for N days (default and maximum: set by the server)",
    )
    send.add_argument(
        "--download-limit",
        type=positive,
        metavar="N",
        help="each recipient may download each file at most N times (default: no limit)",
    )
    send.add_argument("--notify", action="store_true", help="mail me when a recipient downloads")
    send.add_argument(
        "--language",
        choices=("de", "en"),
        help="language of the mails to the recipients (default: your account's language)",
    )
    secupass_option(send)
    approve_option(send, "the recipient")
    send.add_argument(
        "--skip-mismatched",
        action="store_true",
        help="levels 3/4: if a recipient's key differs from the one you approved, leave that "
        "recipient out (warned) instead of sending nothing",
    )
    send.add_argument(
        "--json", action="store_true", help="print the sent delivery as JSON instead of text"
    )
    send.add_argument("files", nargs="+", metavar="FILES", help="files to send")


def add_fetch(commands) -> None:
    fetch = sub(
        commands,
        "fetch",
        "download a delivery sent to you",
        "Open a delivery with its personal LINK and save its files.",
        FETCH_EPILOG,
    )
    fetch.add_argument("link", metavar="LINK", help="the personal link from the delivery mail")
    fetch.add_argument(
        "--email",
        required=True,
        metavar="ADDR",
        help="the e-mail address the delivery was sent to",
    )
    fetch.add_argument(
        "--password",
        choices=("-",),
        help="'-': read the guest account's password (levels 2-4) from the first line of "
        "standard input; without it you are asked when needed",
    )
    secupass_option(fetch)
    approve_option(fetch, "the sender")
    fetch.add_argument(
        "-o",
        "--output",
        default=".",
        metavar="DIR",
        help="folder to save the files in (created if needed; default: the current folder)",
    )


def add_keys(commands) -> None:
    keys = sub(
        commands,
        "keys",
        "create, show or reset your SecuPass key",
        "Your SecuPass key for levels 3 and 4.",
        KEYS_EPILOG,
    )
    actions = keys.add_subparsers(dest="action", metavar="ACTION", required=True)
    create = sub(
        actions, "create", "make your SecuPass key", "Make your SecuPass key.", KEYS_EPILOG
    )
    show = sub(actions, "show", "print your key's fingerprint", "Show your key.", KEYS_EPILOG)
    reset = sub(
        actions, "reset", "replace your key by a new one", "Reset your SecuPass key.", KEYS_EPILOG
    )
    for action in (create, show, reset):
        link_options(action)
    secupass_option(create, "protect the new key")
    secupass_option(reset, "protect the new key")
    secupass_option(show, "unlock your key (with --pins)")
    show.add_argument(
        "--pins", action="store_true", help="also list the keys you approved (needs the SecuPass)"
    )
    reset.add_argument("--yes", action="store_true", help="reset without asking")


def add_approvals(commands) -> None:
    approvals = sub(
        commands,
        "approvals",
        "list and approve recipients' keys",
        "Recipients' SecuPass keys waiting for your approval (levels 3 and 4).",
        APPROVALS_EPILOG,
    )
    actions = approvals.add_subparsers(dest="action", metavar="ACTION", required=True)
    listing = sub(
        actions,
        "list",
        "show the keys waiting for your approval",
        "List the keys waiting for your approval.",
        APPROVALS_EPILOG,
    )
    listing.add_argument("--json", action="store_true", help="print the list as JSON")
    approve = sub(
        actions,
        "approve",
        "approve the waiting key of ADDR",
        "Approve the waiting key of ADDR.",
        APPROVALS_EPILOG,
    )
    approve.add_argument("address", metavar="ADDR", help="the recipient's e-mail address")
    approve.add_argument(
        "--fingerprint",
        required=True,
        metavar="FPR",
        help="the fingerprint you compared with the recipient (case and spaces do not matter)",
    )
    secupass_option(approve)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="secushare",
        description="Send and fetch SecuShare deliveries: files are encrypted on this "
        "computer and uploaded resumably; each recipient gets a personal link.",
        epilog="Run 'secushare COMMAND --help' for details.\n\n"
        f"{LEVELS_HELP}\n\n{ENVIRONMENT_HELP}\n\n{EXIT_CODES_HELP}",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    add_send(commands)
    add_fetch(commands)
    add_keys(commands)
    add_approvals(commands)
    return parser
