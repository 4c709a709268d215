"""SecuPass keys in the admin: looked at, never edited (deleting follows the user's
deletion). Only public values are shown; the private record, keyring and pepper never."""

from django.contrib import admin
from django.utils.translation import gettext_lazy as _

from secupass.models import UserKey


@admin.register(UserKey)
class UserKeyAdmin(admin.ModelAdmin):
    list_display = ("user", "status", "shown_fingerprint", "activated_at", "retired_at")
    list_filter = ("status",)
    search_fields = ("user__email", "fingerprint")
    list_select_related = ("user",)
    date_hierarchy = "created_at"
    fields = (
        "id",
        "user",
        "status",
        "shown_fingerprint",
        "kdf",
        "iterations",
        "keyring_version",
        "pepper_kek_id",
        "created_at",
        "activated_at",
        "changed_at",
        "retired_at",
    )
    readonly_fields = fields

    @admin.display(description=_("fingerprint"))
    def shown_fingerprint(self, obj):
        return obj.shown_fingerprint or "—"

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False
