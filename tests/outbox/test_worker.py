"""The outbox with real prefork Celery workers over Redis, sharing the test database.

The workers' broker is Redis database 11 (of the Redis in REDIS_URL, or the local
one), emptied before and after each test, with a queue named for the test.  The
test process publishes there through a second Celery app made current for the
test, so these tests work the same with and without REDIS_URL (without it, the
project's own app would use the embedded file broker).  A worker gets the test
database as DATABASE_URL and writes its mails as .eml files to EMAIL_FILE_PATH.
"""

import email
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from email import policy
from pathlib import Path
from urllib.parse import quote, urlsplit

import pytest
import redis
from celery import Celery, current_app
from django.conf import settings
from django.db import connection, transaction

from outbox import services
from outbox.models import OutgoingMail
from outbox.tasks import sweep_outbox

pytestmark = [pytest.mark.celery_worker, pytest.mark.django_db(transaction=True)]

WAIT_SECONDS = 30
WORKER_REDIS_DB = 11
CELERY = Path(sys.executable).with_name("celery")
LINK = "https://secushare.example/accounts/reset/MQ/c4t-0123456789abcdef/"


@dataclass
class Broker:
    url: str
    queue: str
    app: Celery
    redis: redis.Redis

    def queued(self) -> int:
        return self.redis.llen(self.queue)


def worker_broker_url() -> str:
    parts = urlsplit(settings.REDIS_URL or "redis://127.0.0.1:6379/0")
    if parts.scheme not in ("redis", "rediss"):
        parts = urlsplit("redis://127.0.0.1:6379/0")
    return parts._replace(path=f"/{WORKER_REDIS_DB}", query="").geturl()


def database_url_for_worker() -> str:
    db = connection.settings_dict
    if db["ENGINE"] == "django.db.backends.sqlite3":
        return f"sqlite:///{Path(db['NAME']).resolve()}"
    credentials = quote(db["USER"], safe="")
    if db["PASSWORD"]:
        credentials += ":" + quote(db["PASSWORD"], safe="")
    host = db["HOST"] + (f":{db['PORT']}" if db["PORT"] else "")
    return f"postgres://{credentials}@{host}/{quote(db['NAME'], safe='')}"


def wait_for(condition, what, logs=()):
    deadline = time.monotonic() + WAIT_SECONDS
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.1)
    tails = "\n".join(f"--- {p.name}\n{p.read_text(errors='replace')[-4000:]}" for p in logs)
    pytest.fail(f"waited {WAIT_SECONDS} s for {what}\n{tails}")


def status(row) -> str:
    return OutgoingMail.objects.values_list("status", flat=True).get(pk=row.pk)


def queue_reset(to):
    return services.queue_mail(
        to, "password_reset", {"name": "Ada", "secret_link": LINK}, language="en"
    )


def read_mails(folder: Path):
    return [
        email.message_from_bytes(p.read_bytes(), policy=policy.default)
        for p in sorted(folder.glob("*.eml"))
    ]


@pytest.fixture
def broker():
    url = worker_broker_url()
    client = redis.Redis.from_url(url)
    client.flushdb()
    queue = f"outbox-test-{secrets.token_hex(4)}"
    app = Celery("secushare-test", set_as_current=False)
    app.config_from_object("django.conf:settings", namespace="CELERY")
    app.conf.update(
        broker_url=url,
        broker_transport_options={"visibility_timeout": 3600},
        task_default_queue=queue,
        task_always_eager=False,
    )
    previous = current_app._get_current_object()
    app.set_current()
    yield Broker(url=url, queue=queue, app=app, redis=client)
    previous.set_current()
    app.close()
    client.flushdb()
    client.close()


@pytest.fixture
def mail_dir(tmp_path):
    folder = tmp_path / "mail"
    folder.mkdir()
    return folder


class Workers:
    """Celery worker processes over the test's broker, on the test database."""

    def __init__(self, broker: Broker, mail_dir: Path, log_dir: Path):
        self.broker = broker
        self.mail_dir = mail_dir
        self.log_dir = log_dir
        self.processes: list[subprocess.Popen] = []
        self.logs: list[Path] = []

    def environment(self, overrides: dict) -> dict:
        env = {k: v for k, v in os.environ.items() if not k.startswith("EMAIL_")}
        env.update(
            DJANGO_SETTINGS_MODULE="secushare.settings",
            DATABASE_URL=database_url_for_worker(),
            REDIS_URL=self.broker.url,
            EMAIL_FILE_PATH=str(self.mail_dir),
            PYTHONUNBUFFERED="1",
        )
        # With DATABASE_URL set the worker does not generate these; it gets the
        # test process's own.
        for variable, value in (
            ("SECRET_KEY", settings.SECRET_KEY),
            ("MASTER_KEYS", settings.MASTER_KEYS_SPEC),
        ):
            if variable not in env and f"{variable}_FILE" not in env:
                env[variable] = value
        env.update(overrides)
        return env

    def start(self, **env_overrides) -> subprocess.Popen:
        """Start a worker and wait until it answers a ping."""
        index = len(self.processes)
        name = f"{self.broker.queue}-{index}@{socket.gethostname()}"
        log = self.log_dir / f"worker-{index}.log"
        with log.open("wb") as out:
            process = subprocess.Popen(
                [
                    str(CELERY),
                    "-A",
                    "secushare",
                    "worker",
                    "--pool=prefork",
                    "--concurrency=1",
                    "--loglevel=INFO",
                    "-Q",
                    self.broker.queue,
                    "-n",
                    name,
                    "--without-heartbeat",
                    "--without-gossip",
                    "--without-mingle",
                ],
                cwd=settings.BASE_DIR,
                env=self.environment(env_overrides),
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group, with its pool
            )
        self.processes.append(process)
        self.logs.append(log)

        def ready():
            if process.poll() is not None:
                pytest.fail(f"worker {name} exited\n{log.read_text(errors='replace')[-4000:]}")
            return self.broker.app.control.ping(destination=[name], timeout=0.5)

        wait_for(ready, f"worker {name} to start", self.logs)
        return process

    @staticmethod
    def kill(process: subprocess.Popen) -> None:
        """SIGKILL the worker and its pool process: no warm shutdown, no acknowledgement."""
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)

    def stop_all(self) -> None:
        for process in self.processes:
            if process.poll() is not None:
                continue
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.kill(process)


@pytest.fixture
def workers(broker, mail_dir, tmp_path):
    workers = Workers(broker, mail_dir, tmp_path)
    yield workers
    workers.stop_all()


def test_a_queued_mail_is_sent_exactly_once(broker, workers, mail_dir):
    workers.start()
    row = queue_reset("ada@example.org")

    wait_for(lambda: status(row) == OutgoingMail.Status.SENT, "the mail", workers.logs)
    row.refresh_from_db()
    assert row.attempts == 1
    assert row.context == {"name": "Ada"}
    [message] = read_mails(mail_dir)
    assert message["To"] == "ada@example.org"
    assert message["Message-ID"] == row.message_id
    assert LINK in message.get_body(("plain",)).get_content()
    assert broker.queued() == 0
    assert sweep_outbox() == 0


def test_mail_of_a_killed_worker_is_sent_after_the_sweep(settings, broker, workers, mail_dir):
    """The first worker is killed while it waits for an SMTP server that never answers.

    The row stays claimed (sending); its message stays unacknowledged in Redis and
    would come back only after the visibility timeout of an hour.  The sweep hands
    the row to the second worker.  Exactly one mail arrives because the first
    worker died before any SMTP server accepted the mail: a worker killed after
    that, and before marking the row sent, is the one case that sends it twice.
    """
    with socket.create_server(("127.0.0.1", 0)) as silent_smtp_server:
        port = silent_smtp_server.getsockname()[1]
        first = workers.start(EMAIL_HOST="127.0.0.1", EMAIL_PORT=str(port), EMAIL_TIMEOUT="120")
        row = queue_reset("slow@example.org")
        wait_for(
            lambda: status(row) == OutgoingMail.Status.SENDING,
            "the first worker to claim the mail",
            workers.logs,
        )
        workers.kill(first)
    # acks_late: the message of the task that died is not acknowledged.
    assert broker.redis.hlen("unacked") == 1
    row.refresh_from_db()
    assert (row.status, row.attempts) == (OutgoingMail.Status.SENDING, 1)
    assert read_mails(mail_dir) == []

    workers.start()
    settings.OUTBOX_STUCK_SECONDS = 0
    assert sweep_outbox() == 1

    wait_for(lambda: status(row) == OutgoingMail.Status.SENT, "the mail", workers.logs)
    row.refresh_from_db()
    assert row.attempts == 2
    [message] = read_mails(mail_dir)
    assert message["To"] == "slow@example.org"


def test_mail_lost_with_redis_is_sent_after_the_sweep(settings, broker, workers, mail_dir):
    row = queue_reset("ada@example.org")
    assert broker.queued() == 1
    broker.redis.flushdb()
    assert broker.queued() == 0

    workers.start()
    settings.OUTBOX_STUCK_SECONDS = 0
    assert sweep_outbox() == 1

    wait_for(lambda: status(row) == OutgoingMail.Status.SENT, "the mail", workers.logs)
    row.refresh_from_db()
    assert row.attempts == 1
    [message] = read_mails(mail_dir)
    assert message["To"] == "ada@example.org"


def test_rolled_back_transaction_sends_nothing(broker, workers, mail_dir):
    workers.start()
    with pytest.raises(RuntimeError), transaction.atomic():
        queue_reset("rolled-back@example.org")
        raise RuntimeError("the change that caused the mail failed")
    assert not OutgoingMail.objects.exists()
    assert broker.queued() == 0

    # A mail committed afterwards goes out, so the worker had its chance.
    row = queue_reset("committed@example.org")
    wait_for(lambda: status(row) == OutgoingMail.Status.SENT, "the mail", workers.logs)
    assert [m["To"] for m in read_mails(mail_dir)] == ["committed@example.org"]
    assert OutgoingMail.objects.count() == 1
