"""Template tags for levels 3 and 4: the compose page's SecuPass configuration and the
"waiting for key" state of recipients on the sent page."""

from django import template
from django.urls import reverse
from django.utils.translation import gettext as _

from deliveries.forms import create_key_url
from deliveries.services_e2e import waiting_state

register = template.Library()


@register.simple_tag
def key_waiting(delivery, recipients):
    """{recipient id: "no_key" | "approval"} for recipients who cannot open the delivery yet."""
    return waiting_state(delivery, recipients)


@register.filter
def waiting_reason(waiting, recipient_id):
    """The entry of ``key_waiting``'s answer for one recipient ("" if they can open it)."""
    return waiting.get(recipient_id, "") if waiting else ""


@register.simple_tag
def compose_e2e_config():
    """What static/js/compose_e2e.js needs: the key API and its sentences."""
    return {
        "api": {
            "mine": reverse("keys_api:mine"),
            "pepper": reverse("keys_api:pepper"),
            "keyring": reverse("keys_api:keyring"),
            "lookup": reverse("keys_api:lookup"),
        },
        "createKeyUrl": create_key_url(),
        "approvalsUrl": reverse("sender:approvals"),
        "strings": {
            "secupassMissing": _("Enter your SecuPass: it unlocks your key in this browser."),
            "wrongSecupass": _("Wrong SecuPass. Check it and try again."),
            "unlocking": _("Unlocking your key. This takes a few seconds…"),
            "unlocked": _("Your key is unlocked in this browser until you leave this page."),
            "checkingKeys": _("Checking the recipients' keys…"),
            "noKey": _(
                "Levels 3 and 4 need your SecuPass key, and you have none yet. Create it "
                "first; what you typed here is kept (files must be chosen again)."
            ),
            "rollback": _(
                "The server offered an older version of your keyring than this browser saw "
                "before. Nothing was sent. Contact your administrator."
            ),
            "refusedTitle": _(
                "Refused: the server offers a key that differs from the one you approved."
            ),
            "refused": _(
                "{email}: you approved the key with fingerprint {pinned}, but the server now "
                "offers one with fingerprint {offered}. The files will not be encrypted to it."
            ),
            "refusedHelp": _(
                "If {emails} reset the SecuPass, compare the new fingerprint with them by phone "
                "or in person and approve it on the approvals page after sending. If they did "
                "not, tell your administrator: someone may be trying to read the files."
            ),
            "sendAnyway": _("Send anyway; they wait for your approval"),
            "waitingTitle": _("Some recipients will wait for your approval:"),
            "unapproved": _(
                "{email} has a SecuPass key you have not approved yet (fingerprint {fingerprint})."
            ),
            "withoutKey": _(
                "{email} has no SecuPass key yet and is asked to create one; you get a mail to "
                "approve it."
            ),
            "messageChanged": _(
                "The server stored a different message than the one you typed. Nothing was sent."
            ),
            "keyReplaced": _(
                "Your SecuPass key was replaced meanwhile (a reset). Reload the page and send "
                "again."
            ),
        },
    }
