import hashlib
import secrets
import uuid
from datetime import timedelta

from django.conf import settings
from django.db import models
from django.db.models import F, Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

TOKEN_BYTES = 24  # 192 bits, DESIGN.md section 7 asks for at least 128


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("ascii", "replace")).hexdigest()


def new_token() -> tuple[str, str]:
    """A fresh link token and the hash that is all the database keeps of it."""
    token = secrets.token_urlsafe(TOKEN_BYTES)
    return token, hash_token(token)


class DeliveryQuerySet(models.QuerySet):
    def active(self, now=None):
        now = now or timezone.now()
        return self.filter(status=Delivery.Status.SENT, expires_at__gt=now)

    def expired_unpurged(self, now=None):
        now = now or timezone.now()
        return self.filter(
            Q(status=Delivery.Status.SENT, expires_at__lte=now)
            | Q(status__in=[Delivery.Status.REVOKED, Delivery.Status.EXPIRED]),
            blobs_deleted_at__isnull=True,
        )


class Delivery(models.Model):
    class Level(models.IntegerChoices):
        ADDRESS = 1, _("1 · Confirm the e-mail address")
        ACCOUNT = 2, _("2 · Guest account")
        SECUPASS = 3, _("3 · SecuPass, end-to-end encrypted files")
        SECUPASS_PLUS = 4, _("4 · SecuPass, files, names and message end-to-end encrypted")

    class Status(models.TextChoices):
        DRAFT = "draft", _("draft")
        SENT = "sent", _("sent")
        REVOKED = "revoked", _("revoked")
        EXPIRED = "expired", _("expired")

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    sender = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="deliveries"
    )
    level = models.PositiveSmallIntegerField(_("security level"), choices=Level.choices)
    subject = models.CharField(_("subject"), max_length=200)
    # Plain message at levels 1-3; empty at level 4 (it is inside the manifest).
    message = models.TextField(_("message"), blank=True, max_length=20000)
    message_sha256 = models.CharField(max_length=64, blank=True)
    language = models.CharField(_("language of the mails"), max_length=10)
    status = models.CharField(
        _("status"), max_length=10, choices=Status.choices, default=Status.DRAFT, db_index=True
    )
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    sent_at = models.DateTimeField(_("sent"), null=True, blank=True)
    expires_at = models.DateTimeField(_("expires"))
    revoked_at = models.DateTimeField(_("revoked"), null=True, blank=True)
    blobs_deleted_at = models.DateTimeField(_("files deleted"), null=True, blank=True)
    download_limit = models.PositiveIntegerField(
        _("download limit per recipient and file"), null=True, blank=True
    )
    notify_on_download = models.BooleanField(_("notify me on download"), default=False)
    # When the sender was last told that the delivery expires soon (deliveries.reminders).
    reminded_at = models.DateTimeField(_("expiry reminder sent"), null=True, blank=True)
    # Levels 3 and 4: the encrypted manifest and the sender's signature (DESIGN.md 4).
    manifest = models.BinaryField(null=True, blank=True)
    signature = models.BinaryField(null=True, blank=True)

    objects = DeliveryQuerySet.as_manager()

    class Meta:
        verbose_name = _("delivery")
        verbose_name_plural = _("deliveries")
        ordering = ["-created_at"]

    def __str__(self):
        return f"{self.subject} ({self.get_level_display()})"

    @property
    def server_holds_key(self) -> bool:
        return self.level in (self.Level.ADDRESS, self.Level.ACCOUNT)

    def is_available(self, now=None) -> bool:
        now = now or timezone.now()
        return self.status == self.Status.SENT and self.expires_at > now

    def unavailable_reason(self, now=None) -> str | None:
        """Why a recipient can no longer get the files, in words, or None."""
        now = now or timezone.now()
        if self.status == self.Status.REVOKED:
            return _("The sender has withdrawn this delivery.")
        if self.status == self.Status.EXPIRED or self.expires_at <= now:
            return _("This delivery has expired and its files have been deleted.")
        if self.status != self.Status.SENT:
            return _("This delivery has not been sent yet.")
        return None

    def extend(self, days: int):
        self.expires_at = max(self.expires_at, timezone.now()) + timedelta(days=days)
        self.save(update_fields=["expires_at"])


class Recipient(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    delivery = models.ForeignKey(Delivery, on_delete=models.CASCADE, related_name="recipients")
    email = models.EmailField(_("e-mail address"))
    token_hash = models.CharField(max_length=64, unique=True, editable=False)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="received",
        help_text=_("The account that opened the delivery (levels 2 to 4)."),
    )
    mail_sent_at = models.DateTimeField(_("mail sent"), null=True, blank=True)
    opened_at = models.DateTimeField(_("opened"), null=True, blank=True)
    confirmed_at = models.DateTimeField(_("address confirmed"), null=True, blank=True)
    downloaded_at = models.DateTimeField(_("first download"), null=True, blank=True)
    revoked_at = models.DateTimeField(_("revoked"), null=True, blank=True)

    class Meta:
        verbose_name = _("recipient")
        verbose_name_plural = _("recipients")
        ordering = ["email"]
        constraints = [
            models.UniqueConstraint(fields=["delivery", "email"], name="one_link_per_address")
        ]

    def __str__(self):
        return self.email

    @classmethod
    def by_token(cls, token: str):
        """The recipient for a link token, or None.

        The lookup is by SHA-256 of the token through a unique index, so timing tells
        nothing about stored tokens (no secret is compared byte by byte).
        """
        if not token or len(token) > 100:
            return None
        return (
            cls.objects.select_related("delivery", "delivery__sender")
            .filter(token_hash=hash_token(token))
            .first()
        )

    def unavailable_reason(self, now=None):
        if self.revoked_at:
            return _("The sender has withdrawn this delivery.")
        return self.delivery.unavailable_reason(now)


class DeliveryFile(models.Model):
    """One SXF1 blob of a delivery; also the tus upload resource while it arrives."""

    class State(models.TextChoices):
        UPLOADING = "uploading", _("uploading")
        COMPLETE = "complete", _("uploaded")
        VERIFIED = "verified", _("verified")

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    delivery = models.ForeignKey(Delivery, on_delete=models.CASCADE, related_name="files")
    # Empty at level 4: names are only in the encrypted manifest.
    name = models.CharField(_("name"), max_length=255, blank=True)
    content_type = models.CharField(_("type"), max_length=255, blank=True)
    size = models.PositiveBigIntegerField(_("size"))
    blob_size = models.PositiveBigIntegerField(_("stored size"))
    offset = models.PositiveBigIntegerField(_("bytes received"), default=0)
    state = models.CharField(
        _("state"), max_length=10, choices=State.choices, default=State.UPLOADING
    )
    storage_name = models.CharField(max_length=255, editable=False)
    # Backend state of an unfinished upload (S3 multipart id and parts).
    upload_state = models.JSONField(default=dict, blank=True, editable=False)
    # The tus PATCH writing this upload now, until when (deliveries.upload_lease).
    lease_token = models.CharField(max_length=32, blank=True, default="", editable=False)
    lease_until = models.DateTimeField(null=True, blank=True, editable=False)
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    completed_at = models.DateTimeField(_("completed"), null=True, blank=True)
    # Last upload activity: unfinished uploads untouched for UPLOAD_EXPIRY_HOURS expire.
    touched_at = models.DateTimeField(
        _("last upload activity"), default=timezone.now, db_index=True, editable=False
    )

    class Meta:
        verbose_name = _("file")
        verbose_name_plural = _("files")
        ordering = ["created_at", "name"]

    def __str__(self):
        return self.name or str(self.id)


class Download(models.Model):
    """How often one recipient started downloading one file (the limit's counter)."""

    recipient = models.ForeignKey(Recipient, on_delete=models.CASCADE, related_name="downloads")
    file = models.ForeignKey(DeliveryFile, on_delete=models.CASCADE, related_name="downloads")
    count = models.PositiveIntegerField(default=0)
    first_at = models.DateTimeField(auto_now_add=True)
    last_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["recipient", "file"], name="one_counter_per_file")
        ]

    def __str__(self):
        return f"{self.recipient} · {self.file} x {self.count}"

    @classmethod
    def take(cls, recipient: Recipient, files, limit: int | None) -> bool:
        """Count one download of each file, atomically; False (and nothing counted) if
        any of them has reached the limit."""
        from django.db import transaction

        with transaction.atomic():
            for f in files:
                cls.objects.get_or_create(recipient=recipient, file=f)
            counters = cls.objects.filter(recipient=recipient, file__in=files)
            if limit is not None:
                counters = counters.filter(count__lt=limit)
            taken = counters.update(count=F("count") + 1, last_at=timezone.now())
            if taken != len(files):
                transaction.set_rollback(True)
                return False
        return True


class KeyEntry(models.Model):
    """How a delivery key reaches a reader (DESIGN.md section 4): a server entry
    wrapped under a master key (levels 1, 2) or a public-key entry (levels 3, 4)."""

    class Kind(models.TextChoices):
        KEK = "kek", _("server key")
        P256 = "p256", _("public key")

    delivery = models.ForeignKey(Delivery, on_delete=models.CASCADE, related_name="key_entries")
    kind = models.CharField(max_length=10, choices=Kind.choices)
    # kek_id for server entries, the reader's key_id for public-key entries.
    key_ref = models.CharField(max_length=64)
    data = models.JSONField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("key entry")
        verbose_name_plural = _("key entries")
        constraints = [
            models.UniqueConstraint(
                fields=["delivery", "kind", "key_ref"], name="one_entry_per_key"
            )
        ]

    def __str__(self):
        return f"{self.kind}:{self.key_ref}"


class AuditEvent(models.Model):
    """Append-only trail of everything that happens to a delivery (DESIGN.md section 7)."""

    class Kind(models.TextChoices):
        CREATED = "created", _("delivery created")
        SENT = "sent", _("delivery sent")
        MAIL_SENT = "mail_sent", _("mail sent")
        OPENED = "opened", _("link opened")
        ADDRESS_CONFIRMED = "address_confirmed", _("address confirmed")
        ADDRESS_REFUSED = "address_refused", _("wrong address entered")
        LOGGED_IN = "logged_in", _("recipient logged in")
        DOWNLOADED = "downloaded", _("downloaded")
        REVOKED = "revoked", _("revoked")
        RECIPIENT_REVOKED = "recipient_revoked", _("recipient revoked")
        EXTENDED = "extended", _("expiry extended")
        EXPIRED = "expired", _("expired")
        KEY_CREATED = "key_created", _("key created")
        KEY_APPROVED = "key_approved", _("key approved")
        KEY_RESET = "key_reset", _("key reset")
        KEY_UNLOCKED = "key_unlocked", _("SecuPass key unlocked")

    at = models.DateTimeField(_("time"), default=timezone.now, db_index=True)
    kind = models.CharField(_("event"), max_length=30, choices=Kind.choices)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True
    )
    delivery = models.ForeignKey(
        Delivery, on_delete=models.SET_NULL, null=True, blank=True, related_name="events"
    )
    recipient = models.ForeignKey(
        Recipient, on_delete=models.SET_NULL, null=True, blank=True, related_name="events"
    )
    address = models.GenericIPAddressField(_("client address"), null=True, blank=True)
    detail = models.JSONField(_("detail"), default=dict, blank=True)

    class Meta:
        verbose_name = _("audit event")
        verbose_name_plural = _("audit events")
        ordering = ["-at"]

    def __str__(self):
        return f"{self.at:%Y-%m-%d %H:%M:%S} {self.kind}"

    def save(self, *args, **kwargs):
        if not self._state.adding:
            raise ValueError("Audit events are never changed.")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise ValueError("Audit events are never deleted.")
