import json

from django.contrib import admin, messages
from django.contrib.auth import get_permission_codename
from django.utils.translation import gettext, ngettext
from django.utils.translation import gettext_lazy as _

from outbox import services
from outbox.models import OutgoingMail


@admin.register(OutgoingMail)
class OutgoingMailAdmin(admin.ModelAdmin):
    list_display = ("created_at", "to", "template", "language", "status", "attempts", "sent_at")
    list_filter = ("status", "template", "language")
    search_fields = ("to",)
    date_hierarchy = "created_at"
    actions = ["send_again"]
    fields = (
        "to",
        "language",
        "template",
        "shown_context",
        "status",
        "scrubbed",
        "attempts",
        "last_error",
        "created_at",
        "next_attempt_at",
        "claimed_at",
        "sent_at",
        "message_id",
    )
    readonly_fields = fields

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        # Rows are written by the outbox only; the admin shows them.
        return False

    def has_send_permission(self, request):
        """Sending again changes the row, so it takes the change permission on outgoing mail."""
        codename = get_permission_codename("change", self.opts)
        return request.user.has_perm(f"{self.opts.app_label}.{codename}")

    @admin.display(description=_("context"))
    def shown_context(self, obj):
        # A waiting password reset link would let whoever reads it take over the account.
        hidden = gettext("(hidden)")
        context = {
            k: hidden if k.startswith(services.SCRUB_PREFIX) else v for k, v in obj.context.items()
        }
        return json.dumps(context, indent=2, ensure_ascii=False)

    @admin.action(description=_("Send again"), permissions=["send"])
    def send_again(self, request, queryset):
        queued = busy = scrubbed = 0
        for mail in queryset:
            if services.send_again(mail):
                queued += 1
            elif mail.status == OutgoingMail.Status.SENDING:
                busy += 1
            else:
                scrubbed += 1
        if queued:
            self.message_user(
                request,
                ngettext(
                    "%(count)d mail was queued again.", "%(count)d mails were queued again.", queued
                )
                % {"count": queued},
                messages.SUCCESS,
            )
        if scrubbed:
            self.message_user(
                request,
                ngettext(
                    "%(count)d mail was not queued again: it was sent and its links "
                    "with tokens were removed. Ask for a new mail instead "
                    "(for example a new password reset).",
                    "%(count)d mails were not queued again: they were sent and their links "
                    "with tokens were removed. Ask for new mails instead "
                    "(for example a new password reset).",
                    scrubbed,
                )
                % {"count": scrubbed},
                messages.WARNING,
            )
        if busy:
            self.message_user(
                request,
                ngettext(
                    "%(count)d mail is being sent right now and was left alone.",
                    "%(count)d mails are being sent right now and were left alone.",
                    busy,
                )
                % {"count": busy},
                messages.WARNING,
            )
