"""Server-side storage of users' SecuPass keys (DESIGN.md section 4, "User key").

The server keeps the public keys, the fingerprint, the KDF parameters, the private record
(encrypted under a key derived from the SecuPass and the pepper), the keyring (encrypted
likewise) and the pepper, wrapped under the current master key. It never sees a SecuPass,
a private key, or a pin in the clear.
"""

import secrets
import uuid
from datetime import timedelta

from django.conf import settings
from django.db import IntegrityError, models, transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from secupass import keys, masterkeys, sxf
from secupass.signals import key_created, key_reset

# An issued key must be registered within this time; a user may have a few outstanding
# (several open tabs), the oldest are discarded beyond that.
ISSUED_LIFETIME = timedelta(days=1)
MAX_ISSUED = 5


class KeyStateError(Exception):
    """The key is not in a state that allows this (a message for the user)."""


class UserKeyQuerySet(models.QuerySet):
    def active(self):
        return self.filter(status=UserKey.Status.ACTIVE)

    def registrable(self, now=None):
        now = now or timezone.now()
        return self.filter(status=UserKey.Status.ISSUED, created_at__gt=now - ISSUED_LIFETIME)


def _as_bytes(value) -> bytes:
    """BinaryField values are memoryview on PostgreSQL and bytes on SQLite."""
    return bytes(value) if value is not None else b""


class UserKey(models.Model):
    """One SecuPass key of a user: issued by the server, active once registered,
    retired when a reset replaces it. A user has at most one active key."""

    class Status(models.TextChoices):
        ISSUED = "issued", _("issued, not yet registered")
        ACTIVE = "active", _("active")
        RETIRED = "retired", _("retired")

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        related_name="secupass_keys",
        verbose_name=_("user"),
    )
    status = models.CharField(
        _("status"), max_length=10, choices=Status.choices, default=Status.ISSUED
    )
    ecdh_public = models.BinaryField(_("ECDH public key"), max_length=65, null=True, blank=True)
    ecdsa_public = models.BinaryField(_("ECDSA public key"), max_length=65, null=True, blank=True)
    # The full SHA-256 fingerprint in hex; clients recompute it and never trust this copy.
    fingerprint = models.CharField(_("fingerprint"), max_length=64, blank=True)
    kdf = models.CharField(_("key derivation"), max_length=30, blank=True)
    iterations = models.PositiveIntegerField(_("iterations"), null=True, blank=True)
    salt = models.BinaryField(null=True, blank=True)
    private_record = models.BinaryField(null=True, blank=True)
    # The pepper wrapped under a master key ({"kek_id", "nonce", "ct", ...}); never the raw one.
    pepper = models.JSONField(null=True, blank=True, editable=False)
    pepper_kek_id = models.CharField(_("master key of the pepper"), max_length=64, blank=True)
    keyring = models.BinaryField(null=True, blank=True)
    keyring_version = models.PositiveBigIntegerField(_("keyring version"), default=0)
    created_at = models.DateTimeField(_("issued"), default=timezone.now)
    activated_at = models.DateTimeField(_("created"), null=True, blank=True)
    changed_at = models.DateTimeField(_("SecuPass changed"), null=True, blank=True)
    retired_at = models.DateTimeField(_("retired"), null=True, blank=True)

    objects = UserKeyQuerySet.as_manager()

    class Meta:
        verbose_name = _("SecuPass key")
        verbose_name_plural = _("SecuPass keys")
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["user", "status"], name="userkey_user_status")]
        constraints = [
            models.UniqueConstraint(
                fields=["user"], condition=Q(status="active"), name="one_active_key_per_user"
            )
        ]

    def __str__(self):
        return f"{self.user} {self.shown_fingerprint or self.id}"

    # -- values ------------------------------------------------------------------------------

    @property
    def ecdh_public_bytes(self) -> bytes:
        return _as_bytes(self.ecdh_public)

    @property
    def ecdsa_public_bytes(self) -> bytes:
        return _as_bytes(self.ecdsa_public)

    @property
    def shown_fingerprint(self) -> str:
        """8 groups of 4 hex digits, as people compare it."""
        if len(self.fingerprint) != 64:
            return ""
        return sxf.format_fingerprint(bytes.fromhex(self.fingerprint))

    def public_json(self) -> dict:
        return {
            "key_id": str(self.id),
            "email": self.user.email,
            "status": self.status,
            "ecdh_public": sxf.b64u_encode(self.ecdh_public_bytes),
            "ecdsa_public": sxf.b64u_encode(self.ecdsa_public_bytes),
            "fingerprint": self.shown_fingerprint,
            "fingerprint_hex": self.fingerprint,
            "created_at": self.activated_at.isoformat() if self.activated_at else None,
        }

    def owner_json(self) -> dict:
        """Everything the owner's client needs to unlock (all of it encrypted or public)."""
        return {
            **self.public_json(),
            "kdf": self.kdf,
            "iterations": self.iterations,
            "salt": sxf.b64u_encode(_as_bytes(self.salt)),
            "private_record": sxf.b64u_encode(_as_bytes(self.private_record)),
            "keyring": sxf.b64u_encode(_as_bytes(self.keyring)),
            "keyring_version": self.keyring_version,
        }

    # -- the pepper --------------------------------------------------------------------------

    def set_pepper(self, pepper: bytes) -> None:
        kek_id = masterkeys.current_kek_id()
        self.pepper = keys.wrap_pepper(settings.MASTER_KEYS[kek_id], kek_id, self.id, pepper)
        self.pepper_kek_id = kek_id

    def pepper_bytes(self) -> bytes:
        """The raw pepper, for its owner's client only (never log or store it)."""
        if not self.pepper:
            raise KeyStateError(_("This key has no pepper any more."))
        try:
            master = settings.MASTER_KEYS[self.pepper_kek_id]
        except KeyError:
            raise sxf.SXFError(
                f"master key {self.pepper_kek_id!r} is not configured (MASTER_KEYS)"
            ) from None
        return keys.unwrap_pepper(master, self.pepper, self.id)

    # -- life cycle --------------------------------------------------------------------------

    @classmethod
    def issue(cls, user) -> tuple["UserKey", bytes]:
        """Start a new key for ``user``: a fresh key_id and pepper (returned raw, once)."""
        now = timezone.now()
        with transaction.atomic():
            stale = cls.objects.filter(user=user, status=cls.Status.ISSUED)
            stale.filter(created_at__lte=now - ISSUED_LIFETIME).delete()
            outstanding = list(
                stale.order_by("-created_at").values_list("pk", flat=True)[MAX_ISSUED - 1 :]
            )
            if outstanding:
                cls.objects.filter(pk__in=outstanding).delete()
            key = cls(user=user, created_at=now)
            pepper = secrets.token_bytes(keys.PEPPER_LEN)
            key.set_pepper(pepper)
            key.save()
        return key, pepper

    def register(
        self,
        *,
        ecdh_public: bytes,
        ecdsa_public: bytes,
        kdf: str,
        iterations: int,
        salt: bytes,
        private_record: bytes,
        keyring: bytes,
        keyring_version: int,
    ) -> "UserKey | None":
        """Make this issued key the user's active key; the previous one (if any) is retired.

        Returns the retired key (a reset) or None (the user's first key). Sends
        ``key_created`` or ``key_reset`` in the same transaction.
        """
        from accounts.models import User

        now = timezone.now()
        try:
            with transaction.atomic():
                # One registration per user at a time.
                User.objects.select_for_update().filter(pk=self.user_id).first()
                fresh = UserKey.objects.select_for_update().filter(pk=self.pk).first()
                if fresh is None or fresh.status != UserKey.Status.ISSUED:
                    raise KeyStateError(_("This key is already registered; start again."))
                if fresh.created_at <= now - ISSUED_LIFETIME:
                    raise KeyStateError(_("This key was started too long ago; start again."))
                old = UserKey.objects.active().filter(user_id=self.user_id).first()
                if old is not None:
                    old.retire(now)
                self.ecdh_public = ecdh_public
                self.ecdsa_public = ecdsa_public
                self.fingerprint = sxf.fingerprint(self.user.email, ecdh_public, ecdsa_public).hex()
                self.kdf = kdf
                self.iterations = iterations
                self.salt = salt
                self.private_record = private_record
                self.keyring = keyring
                self.keyring_version = keyring_version
                self.pepper, self.pepper_kek_id = fresh.pepper, fresh.pepper_kek_id
                self.status = UserKey.Status.ACTIVE
                self.activated_at = now
                self.save()
                if old is None:
                    key_created.send(sender=UserKey, user=self.user, key=self)
                else:
                    key_reset.send(sender=UserKey, user=self.user, old_key=old, new_key=self)
        except IntegrityError:
            raise KeyStateError(_("Another key was registered at the same time; reload.")) from None
        return old

    def retire(self, now=None) -> None:
        """Take the key out of use. Its public keys stay (old signatures can still be
        verified); the private record, keyring and pepper are erased."""
        self.status = UserKey.Status.RETIRED
        self.retired_at = now or timezone.now()
        self.private_record = None
        self.keyring = None
        self.pepper = None
        self.pepper_kek_id = ""
        self.save(
            update_fields=[
                "status",
                "retired_at",
                "private_record",
                "keyring",
                "pepper",
                "pepper_kek_id",
            ]
        )

    def change_secupass(
        self,
        *,
        kdf: str,
        iterations: int,
        salt: bytes,
        private_record: bytes,
        keyring: bytes,
        keyring_version: int,
    ) -> bool:
        """Store the record and keyring re-encrypted under a new SecuPass (same key pair,
        key_id and pepper). False if the key is no longer active or the keyring version
        went back."""
        now = timezone.now()
        changed = (
            UserKey.objects.active()
            .filter(pk=self.pk, keyring_version__lte=keyring_version)
            .update(
                kdf=kdf,
                iterations=iterations,
                salt=salt,
                private_record=private_record,
                keyring=keyring,
                keyring_version=keyring_version,
                changed_at=now,
            )
        )
        return changed == 1

    def store_keyring(self, keyring: bytes, version: int) -> bool:
        """Replace the keyring if ``version`` is newer than the stored one (atomic)."""
        changed = (
            UserKey.objects.active()
            .filter(pk=self.pk, keyring_version__lt=version)
            .update(keyring=keyring, keyring_version=version)
        )
        return changed == 1


def rewrap_peppers(batch: int = 500) -> int:
    """Re-wrap every stored pepper under the current master key; returns how many."""
    current = masterkeys.current_kek_id()
    pending = UserKey.objects.filter(pepper__isnull=False).exclude(pepper_kek_id=current)
    missing = set(pending.values_list("pepper_kek_id", flat=True)) - set(settings.MASTER_KEYS)
    if missing:
        raise sxf.SXFError(
            "these master keys still wrap peppers but are not configured in MASTER_KEYS: "
            + ", ".join(sorted(missing))
        )
    done = 0
    while True:
        with transaction.atomic():
            rows = list(pending.select_for_update(skip_locked=True).order_by("pk")[:batch])
            if not rows:
                return done
            for row in rows:
                row.set_pepper(row.pepper_bytes())
                row.save(update_fields=["pepper", "pepper_kek_id"])
            done += len(rows)
