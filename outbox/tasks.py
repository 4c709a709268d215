from celery import shared_task

from outbox import services
from outbox.models import OutgoingMail


@shared_task(acks_late=True, ignore_result=True)
def send_mail_task(pk: int) -> str:
    """Send one outbox row; after an SMTP error, come back when its backoff is over.

    Any extra copy of this task (from the sweep, or Redis redelivering a countdown
    longer than its visibility timeout) is harmless: only a worker that claims the
    row sends it.
    """
    result = services.deliver(pk)
    if result == "retry":
        next_attempt_at = (
            OutgoingMail.objects.filter(pk=pk).values_list("next_attempt_at", flat=True).first()
        )
        if next_attempt_at is not None:
            send_mail_task.apply_async((pk,), eta=next_attempt_at)
    return result


@shared_task(ignore_result=True)
def sweep_outbox() -> int:
    """Periodic (CELERY_BEAT_SCHEDULE): send rows whose message was lost or whose worker died."""
    return services.sweep()
