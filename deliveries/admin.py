"""Deliveries in the admin: looked at, not edited.

Rows are written by the app's workflows (which also write the audit trail); the
admin shows them, storage use included, and can revoke a delivery through the same
workflow. Audit events can be neither changed nor deleted, not even by a superuser.
Key entries show only which key wraps them, never the wrapped key.
"""

import json

from django.contrib import admin, messages
from django.contrib.auth import get_permission_codename
from django.db.models import OuterRef, Subquery, Sum
from django.db.models.functions import Coalesce
from django.template.defaultfilters import filesizeformat
from django.utils.html import format_html
from django.utils.translation import gettext, ngettext
from django.utils.translation import gettext_lazy as _

from deliveries import services
from deliveries.models import AuditEvent, Delivery, DeliveryFile, KeyEntry, Recipient
from deliveries.sender_views import state_of


class ReadOnlyMixin:
    """View permission only: no adding, changing or deleting through the admin."""

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


def stored_bytes(**match):
    """Bytes held in the blob store by the files matching ``match`` (an OuterRef)."""
    files = (
        DeliveryFile.objects.filter(delivery__blobs_deleted_at__isnull=True, **match)
        .order_by()
        .values(*match.keys())
        .annotate(total=Sum("offset"))
        .values("total")
    )
    return Coalesce(Subquery(files), 0)


class RecipientInline(ReadOnlyMixin, admin.TabularInline):
    model = Recipient
    fields = (
        "email",
        "user",
        "mail_sent_at",
        "opened_at",
        "confirmed_at",
        "downloaded_at",
        "revoked_at",
    )
    readonly_fields = fields
    extra = 0
    show_change_link = True


class FileInline(ReadOnlyMixin, admin.TabularInline):
    model = DeliveryFile
    fields = ("name", "content_type", "size", "blob_size", "offset", "state", "completed_at")
    readonly_fields = fields
    extra = 0
    show_change_link = True


class KeyEntryInline(ReadOnlyMixin, admin.TabularInline):
    model = KeyEntry
    verbose_name_plural = _("key entries (the wrapped keys are not shown)")
    fields = ("kind", "key_ref", "created_at")
    readonly_fields = fields
    extra = 0


@admin.register(Delivery)
class DeliveryAdmin(ReadOnlyMixin, admin.ModelAdmin):
    list_display = (
        "subject",
        "sender",
        "level",
        "shown_status",
        "created_at",
        "expires_at",
        "storage",
        "sender_storage",
    )
    list_filter = ("status", "level", "language", "notify_on_download", "created_at")
    search_fields = ("subject", "sender__email", "recipients__email")
    date_hierarchy = "created_at"
    list_select_related = ("sender",)
    inlines = (RecipientInline, FileInline, KeyEntryInline)
    actions = ["revoke"]
    fields = (
        "id",
        "sender",
        "level",
        "subject",
        "message",
        "language",
        "status",
        "created_at",
        "sent_at",
        "expires_at",
        "reminded_at",
        "revoked_at",
        "blobs_deleted_at",
        "download_limit",
        "notify_on_download",
        "storage",
    )
    readonly_fields = fields

    def get_queryset(self, request):
        return (
            super()
            .get_queryset(request)
            .annotate(
                stored_bytes=stored_bytes(delivery=OuterRef("pk")),
                sender_bytes=stored_bytes(delivery__sender=OuterRef("sender")),
            )
        )

    @admin.display(description=_("status"), ordering="status")
    def shown_status(self, obj):
        return state_of(obj).label

    @admin.display(description=_("storage used"), ordering="stored_bytes")
    def storage(self, obj):
        if obj.blobs_deleted_at:
            return gettext("deleted")
        return format_html(
            '<span title="{}">{}</span>',
            ngettext("%(n)d byte", "%(n)d bytes", obj.stored_bytes) % {"n": obj.stored_bytes},
            filesizeformat(obj.stored_bytes),
        )

    @admin.display(description=_("sender's storage"), ordering="sender_bytes")
    def sender_storage(self, obj):
        return filesizeformat(obj.sender_bytes)

    def has_revoke_permission(self, request):
        """Revoking changes the delivery, so it takes the change permission on deliveries."""
        codename = get_permission_codename("change", self.opts)
        return request.user.has_perm(f"{self.opts.app_label}.{codename}")

    @admin.action(description=_("Revoke (recipients are told by mail)"), permissions=["revoke"])
    def revoke(self, request, queryset):
        revoked = 0
        for delivery in queryset.select_related("sender"):
            if state_of(delivery).key == "active":
                services.revoke(delivery, actor=request.user, request=request)
                revoked += 1
        self.message_user(
            request,
            ngettext(
                "%(count)d delivery was revoked.", "%(count)d deliveries were revoked.", revoked
            )
            % {"count": revoked},
            messages.SUCCESS if revoked else messages.WARNING,
        )


@admin.register(Recipient)
class RecipientAdmin(ReadOnlyMixin, admin.ModelAdmin):
    list_display = (
        "email",
        "delivery",
        "mail_sent_at",
        "opened_at",
        "confirmed_at",
        "downloaded_at",
        "revoked_at",
    )
    list_filter = ("delivery__level", "delivery__status")
    search_fields = ("email", "delivery__subject")
    list_select_related = ("delivery",)
    fields = (
        "id",
        "delivery",
        "email",
        "user",
        "mail_sent_at",
        "opened_at",
        "confirmed_at",
        "downloaded_at",
        "revoked_at",
    )
    readonly_fields = fields


@admin.register(DeliveryFile)
class DeliveryFileAdmin(ReadOnlyMixin, admin.ModelAdmin):
    list_display = ("__str__", "delivery", "size", "blob_size", "state", "created_at")
    list_filter = ("state", "delivery__level")
    search_fields = ("name", "delivery__subject", "delivery__sender__email")
    list_select_related = ("delivery",)
    fields = (
        "id",
        "delivery",
        "name",
        "content_type",
        "size",
        "blob_size",
        "offset",
        "state",
        "storage_name",
        "created_at",
        "completed_at",
    )
    readonly_fields = fields


@admin.register(AuditEvent)
class AuditEventAdmin(ReadOnlyMixin, admin.ModelAdmin):
    list_display = ("at", "kind", "delivery", "recipient", "actor", "address")
    list_filter = ("kind", "at")
    search_fields = ("delivery__subject", "recipient__email", "actor__email", "address")
    date_hierarchy = "at"
    list_select_related = ("delivery", "recipient", "actor")
    fields = ("at", "kind", "actor", "delivery", "recipient", "address", "shown_detail")
    readonly_fields = fields

    @admin.display(description=_("detail"))
    def shown_detail(self, obj):
        return json.dumps(obj.detail, indent=2, ensure_ascii=False)
