from datetime import timedelta

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _


def _lost_before(now):
    return now - timedelta(seconds=settings.OUTBOX_STUCK_SECONDS)


class OutgoingMailQuerySet(models.QuerySet):
    def due(self, now=None):
        """Waiting rows whose time has come: what a worker may claim."""
        return self.filter(
            status=OutgoingMail.Status.PENDING, next_attempt_at__lte=now or timezone.now()
        )

    def stuck(self, now=None):
        """Rows claimed more than OUTBOX_STUCK_SECONDS ago: their worker died or hangs."""
        return self.filter(
            status=OutgoingMail.Status.SENDING,
            claimed_at__lt=_lost_before(now or timezone.now()),
        )

    def overdue(self, now=None):
        """Waiting rows due more than OUTBOX_STUCK_SECONDS ago: their task message was lost.

        The grace period keeps the sweep from queueing a second task for every row
        whose first task is still on its way to a worker.
        """
        return self.filter(
            status=OutgoingMail.Status.PENDING,
            next_attempt_at__lt=_lost_before(now or timezone.now()),
        )


class OutgoingMail(models.Model):
    class Status(models.TextChoices):
        PENDING = "pending", _("waiting")
        SENDING = "sending", _("sending")
        SENT = "sent", _("sent")
        FAILED = "failed", _("failed")

    to = models.EmailField(_("recipient"))
    language = models.CharField(_("language"), max_length=10)
    template = models.CharField(_("template"), max_length=100)
    context = models.JSONField(_("context"), default=dict, blank=True)
    status = models.CharField(
        _("status"), max_length=10, choices=Status.choices, default=Status.PENDING, db_index=True
    )
    scrubbed = models.BooleanField(
        _("links removed"),
        default=False,
        help_text=_(
            "Links with tokens were removed from the context once the mail was sent, "
            "so it cannot be sent again."
        ),
    )
    attempts = models.PositiveIntegerField(_("attempts"), default=0)
    last_error = models.TextField(_("last error"), blank=True)
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    next_attempt_at = models.DateTimeField(_("next attempt"), default=timezone.now)
    claimed_at = models.DateTimeField(_("claimed"), null=True, blank=True)
    sent_at = models.DateTimeField(_("sent"), null=True, blank=True)
    message_id = models.CharField(_("message ID"), max_length=255, blank=True)

    objects = OutgoingMailQuerySet.as_manager()

    class Meta:
        verbose_name = _("outgoing mail")
        verbose_name_plural = _("outgoing mails")
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["status", "next_attempt_at"])]

    def __str__(self):
        return f"{self.template} → {self.to}"
