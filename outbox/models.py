from datetime import timedelta

from django.conf import settings
from django.db import models, transaction
from django.utils import timezone
from django.utils.translation import gettext_lazy as _


class OutgoingMailQuerySet(models.QuerySet):
    def due(self, now=None):
        """Rows a sweep should hand to a worker: waiting and due, or stuck in sending."""
        now = now or timezone.now()
        stuck = now - timedelta(seconds=settings.OUTBOX_STUCK_SECONDS)
        return self.filter(
            models.Q(status=OutgoingMail.Status.PENDING, next_attempt_at__lte=now)
            | models.Q(status=OutgoingMail.Status.SENDING, claimed_at__lt=stuck)
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

    def send_again(self):
        """Queue this row once more, whatever happened to it before (admin action)."""
        OutgoingMail.objects.filter(pk=self.pk).update(
            status=self.Status.PENDING, next_attempt_at=timezone.now(), attempts=0, last_error=""
        )
        from outbox.tasks import send_mail_task

        transaction.on_commit(lambda: send_mail_task.delay(self.pk))
