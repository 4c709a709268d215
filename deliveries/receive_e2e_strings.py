"""The sentences ``static/js/receive_e2e.js`` shows, translated on the server.

Placeholders in braces (``{email}``) are filled in by the script.
"""

from django.template.defaultfilters import filesizeformat
from django.utils.translation import gettext as _


def page_strings(memory_limit: int) -> dict:
    do_not_trust = _("Do not open the files, and tell the sender by phone or in person.")
    return {
        "secupassMissing": _("Enter your SecuPass."),
        "unlocking": _("Unlocking your key. This takes a few seconds…"),
        "checking": _("Checking the sender's signature…"),
        "wrongSecupass": _("Wrong SecuPass. Check it and try again."),
        "networkError": _("The server cannot be reached. Check your connection and try again."),
        "serverError": _("The server answered with an error ({status}). Try again later."),
        "failed": _("This did not work: {message}"),
        "unsupported": _(
            "Your browser cannot do the decryption this page needs. Use a current browser."
        ),
        "keyChanged": _(
            "Your SecuPass key is not the one this delivery was opened for (was it reset?). "
            "Reload the page."
        ),
        "entryBroken": _(
            "Your key cannot open this delivery: its key entry is damaged or meant for "
            "another key. "
        )
        + do_not_trust,
        "keyringRollback": _(
            "Stop: the server offered an older version of your keyring (the fingerprints you "
            "confirmed) than this browser has seen before. Someone may be tampering with the "
            "server. "
        )
        + do_not_trust,
        "keyringBroken": _(
            "Stop: your keyring (the fingerprints you confirmed) does not open; it was changed. "
        )
        + do_not_trust,
        "noSenderKey": _(
            "Stop: this delivery does not come with its sender's key, so it cannot be checked. "
        )
        + do_not_trust,
        "pinMismatch": _(
            "Stop: this delivery is not signed with the key you confirmed for {email}. "
            "Confirmed fingerprint: {pinned}. This delivery: {shown}. Unless the sender told "
            "you that they reset their key, someone may be trying to deceive you. "
        )
        + do_not_trust,
        "newKeyPinned": _(
            "The new key of {email} is now remembered instead of the one you confirmed before."
        ),
        "pinChanged": _(
            "Stop: the fingerprint confirmed for this sender changed while this page was open. "
        )
        + do_not_trust,
        "badSignature": _(
            "Stop: the sender's signature does not match this delivery; it was changed after "
            "it was sent. "
        )
        + do_not_trust,
        "manifestBroken": _(
            "Stop: the list of files the sender signed does not match this delivery ({error}). "
        )
        + do_not_trust,
        "messageChanged": _(
            "Stop: the message shown on this page is not the one the sender signed; it was "
            "changed on the server. "
        )
        + do_not_trust,
        "askPin": _(
            "This is the first delivery from {email} opened in this browser. Below is the "
            "fingerprint of the sender's key. If you can, compare it with the sender by phone "
            "or in person. Continue only if it matches or you trust this delivery: it is then "
            "remembered, and you will be warned if it ever changes."
        ),
        "firstFrom": _(
            "The fingerprint of {email}'s key is now remembered; you will be warned if it "
            "ever changes."
        ),
        "pinCancelled": _("The files stay locked. Reload the page when you want to continue."),
        "pinFailed": _(
            "The sender's fingerprint could not be remembered ({message}); it will be shown "
            "again next time."
        ),
        "messageVerified": _("The message matches the sender's signature."),
        "save": _("Save"),
        "saving": _("Decrypting and saving… {percent} ({done})"),
        "saved": _("Saved and verified."),
        "leftOne": _("1 download left"),
        "leftMany": _("{left} downloads left"),
        "memoryNote": _(
            "This browser keeps the file in memory until it is complete (possible up to %(limit)s)."
        )
        % {"limit": filesizeformat(memory_limit)},
        "tooLarge": _(
            "This browser cannot save a file this large directly (more than %(limit)s). "
            "Use a current Chrome or Edge, or the SecuShare command-line client: "
            "“secushare fetch” with the link from your mail."
        )
        % {"limit": filesizeformat(memory_limit)},
        "tampered": _(
            "The file was changed or damaged on the server and failed the integrity check; "
            "nothing was saved ({error})."
        ),
        "digestMismatch": _(
            "The file is not the one the sender signed; nothing was saved. Tell the sender."
        ),
        "gone": _(
            "This file can no longer be downloaded: the delivery expired or was withdrawn, or "
            "you have used up the downloads the sender allowed."
        ),
        "notFound": _("This file is not available. Reload the page."),
        "networkFailed": _(
            "The connection broke off again and again; nothing was saved. Try again later."
        ),
        "cancelled": _("Cancelled; nothing was saved."),
    }
