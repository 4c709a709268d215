from celery import shared_task

from outbox import services
from outbox.models import OutgoingMail


@shared_task(acks_late=True, ignore_result=True)
def send_mail_task(pk: int) -> str:
    result = services.deliver(pk)
    if result == "retry":
        mail = OutgoingMail.objects.get(pk=pk)
        send_mail_task.apply_async((pk,), eta=mail.next_attempt_at)
    return result


@shared_task(ignore_result=True)
def sweep_outbox() -> int:
    """Re-queue rows whose message was lost (Redis flushed) or whose worker died."""
    pks = list(OutgoingMail.objects.due().values_list("pk", flat=True)[:500])
    for pk in pks:
        send_mail_task.delay(pk)
    return len(pks)
