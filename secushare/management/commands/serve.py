"""Serve SecuShare with gunicorn and run the background jobs beside it.

This is what ``make run`` calls: one command for a working installation.  The
web server is gunicorn (WSGI, gthread workers, as in production); the jobs run in
a Celery worker with its scheduler embedded, over Redis when REDIS_URL is set and
over a broker kept in files under ``var/`` otherwise.
"""

import os
import signal
import subprocess
import sys
import time

from django.conf import settings
from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = "Serve the web application and run background jobs (mail, cleanup) beside it."

    def add_arguments(self, parser):
        parser.add_argument("--host", default=settings.HOST)
        parser.add_argument("--port", type=int, default=settings.PORT)
        parser.add_argument("--workers", type=int, default=2, help="gunicorn worker processes")
        parser.add_argument("--threads", type=int, default=8, help="threads per worker")
        parser.add_argument("--no-jobs", action="store_true", help="do not start the job runner")

    def handle(self, *args, host, port, workers, threads, no_jobs, **options):
        bindir = os.path.dirname(sys.executable)
        children = []
        if not no_jobs:
            (settings.DATA_DIR / "broker" / "queue").mkdir(parents=True, exist_ok=True)
            (settings.DATA_DIR / "broker" / "processed").mkdir(parents=True, exist_ok=True)
            children.append(
                subprocess.Popen(
                    [
                        os.path.join(bindir, "celery"),
                        "-A",
                        "secushare",
                        "worker",
                        "--beat",
                        "--pool=threads",
                        "--concurrency=2",
                        "--loglevel=WARNING",
                        "--schedule",
                        settings.CELERY_BEAT_SCHEDULE_FILENAME,
                    ]
                )
            )
        children.append(
            subprocess.Popen(
                [
                    os.path.join(bindir, "gunicorn"),
                    "secushare.wsgi",
                    "--worker-class",
                    "gthread",
                    "--workers",
                    str(workers),
                    "--threads",
                    str(threads),
                    "--bind",
                    f"{host}:{port}",
                    "--access-logfile",
                    "-",
                    "--logger-class",
                    "secushare.logs.AccessLogger",
                    # No control socket under the user's home: one server, nothing to steer.
                    "--no-control-socket",
                    "--timeout",
                    "120",
                    "--graceful-timeout",
                    "20",
                ]
            )
        )
        self.stdout.write(f"SecuShare is serving on {settings.SITE_URL}/ (Ctrl+C stops it)")

        def stop(*_):
            for child in children:
                if child.poll() is None:
                    child.terminate()

        signal.signal(signal.SIGTERM, stop)
        try:
            while all(child.poll() is None for child in children):
                time.sleep(0.5)
        except KeyboardInterrupt:
            pass
        finally:
            stop()
            for child in children:
                try:
                    child.wait(timeout=25)
                except subprocess.TimeoutExpired:
                    child.kill()
        failed = [c for c in children if c.returncode not in (0, -signal.SIGTERM, -signal.SIGINT)]
        if failed:
            sys.exit(1)
