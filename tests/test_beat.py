from django.conf import settings

from secushare.celery import app


def test_every_periodic_job_is_a_task_the_worker_knows():
    app.loader.import_default_modules()
    scheduled = {entry["task"] for entry in settings.CELERY_BEAT_SCHEDULE.values()}
    assert {
        "outbox.tasks.sweep_outbox",
        "deliveries.tasks.expire_deliveries",
        "deliveries.tasks.remove_abandoned_uploads",
        "deliveries.reminders.remind_expiring",
    } <= scheduled
    assert scheduled <= set(app.tasks)
