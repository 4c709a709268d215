from django.contrib import admin, messages
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from outbox.models import OutgoingMail


@admin.register(OutgoingMail)
class OutgoingMailAdmin(admin.ModelAdmin):
    list_display = ("created_at", "to", "template", "language", "status", "attempts", "sent_at")
    list_filter = ("status", "template", "language")
    search_fields = ("to",)
    date_hierarchy = "created_at"
    actions = ["send_again"]
    readonly_fields = [f.name for f in OutgoingMail._meta.fields]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    @admin.action(description=_("Send again"), permissions=["view"])
    def send_again(self, request, queryset):
        for mail in queryset:
            mail.send_again()
        self.message_user(
            request,
            ngettext("%d mail queued again.", "%d mails queued again.", len(queryset))
            % len(queryset),
            messages.SUCCESS,
        )
