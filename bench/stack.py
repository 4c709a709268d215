"""The system under test: SecuShare's embedded default in a temporary folder, served by
gunicorn with deploy/gunicorn.conf.py behind nginx with deploy/nginx.conf, plus a second
nginx server on the same master that gives the baselines (files with sendfile, PUT to disk).

Everything listens on 127.0.0.1 and is removed at the end. The caller's environment is not
passed on (only PATH and the like), so a DATABASE_URL or REDIS_URL set for other purposes
never reaches the benchmark.
"""

import base64
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from io import StringIO
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from bench.http import Client
from bench.nginx import Nginx, free_port, main_config, site_config

ROOT = Path(__file__).resolve().parent.parent
SENDER = "bench-sender@example.org"
RECIPIENT = "bench-recipient@example.org"
PASSWORD = "bench password that is long enough"  # noqa: S105 (a throwaway account)
KEEP_ENV = ("PATH", "HOME", "LANG", "LC_ALL", "LC_CTYPE", "TERM", "USER", "CHROMIUM_PATH")
KEEP_PREFIXES = ("PLAYWRIGHT",)


def clean_environment(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k in KEEP_ENV or k.startswith(KEEP_PREFIXES)}
    env.update(extra)
    return env


class Stack:
    def __init__(self, *, workers: int = 2, threads: int = 64):
        self.tmp = Path(tempfile.mkdtemp(prefix="secushare-bench-"))
        self.data = self.tmp / "data"
        self.static = self.tmp / "static"
        self.plain = self.tmp / "plain"  # baseline files nginx sends directly
        self.put = self.tmp / "put"  # where nginx's PUT baseline writes
        for folder in (self.data / "blobs", self.static, self.plain, self.put):
            folder.mkdir(parents=True)
        self.app_port = free_port()
        self.port = free_port()  # nginx in front of the app
        self.direct_port = free_port()  # nginx alone
        self.env = clean_environment(
            DATA_DIR=str(self.data),
            STATIC_ROOT=str(self.static),
            SITE_URL=f"http://127.0.0.1:{self.port}",
            BEHIND_PROXY="true",
            ACCEL_REDIRECT_PREFIX="/_protected/blobs/",
            LOG_LEVEL="WARNING",
            GUNICORN_BIND=f"127.0.0.1:{self.app_port}",
            GUNICORN_WORKERS=str(workers),
            GUNICORN_THREADS=str(threads),
            PYTHONPATH=str(ROOT),
        )
        self.database = ThrowawayDatabase.from_environment()
        if self.database is not None:
            self.env.update(
                DATABASE_URL=self.database.url,
                SECRET_KEY=secrets.token_urlsafe(48),
                MASTER_KEYS="bench:"
                + base64.urlsafe_b64encode(secrets.token_bytes(32)).rstrip(b"=").decode(),
            )
        self.keep = bool(os.environ.get("BENCH_KEEP"))
        self.gunicorn: subprocess.Popen | None = None
        self.nginx: Nginx | None = None
        self.token = ""

    # -- life cycle -------------------------------------------------------------------------

    def setup_django(self) -> None:
        """This process uses the same database (to read mails and make level 3 records)."""
        os.environ.clear()
        os.environ.update(self.env)
        os.environ["DJANGO_SETTINGS_MODULE"] = "secushare.settings"
        import django

        django.setup()

    def prepare(self, *, collect_static: bool) -> None:
        from django.core.management import call_command

        call_command("migrate", verbosity=0, interactive=False)
        if collect_static:
            call_command("collectstatic", verbosity=0, interactive=False)
        password_file = self.tmp / "password"
        password_file.write_text(PASSWORD + "\n")
        call_command("createsender", SENDER, password_file=password_file, stdout=StringIO())
        out = StringIO()
        call_command("create_api_token", SENDER, name="benchmark", stdout=out)
        self.token = out.getvalue().split()[-1]

    def start(self) -> None:
        with (self.tmp / "gunicorn.log").open("wb") as log:
            self.gunicorn = self._gunicorn(log)
        site = site_config(
            port=self.port,
            upstream=f"127.0.0.1:{self.app_port}",
            static_root=self.static,
            media_root=self.data / "blobs",
            log_dir=self.tmp,
        )
        direct = f"""
server {{
    listen 127.0.0.1:{self.direct_port};
    access_log off;
    sendfile on;
    tcp_nopush on;
    location /plain/ {{ alias {self.plain}/; }}
    location /blobs/ {{ alias {self.data}/blobs/; }}
    location /put/ {{
        alias {self.put}/;
        dav_methods PUT;
        client_max_body_size 0;
        client_body_temp_path {self.put}/.incoming;
    }}
}}
"""
        workdir = self.tmp / "nginx"
        workdir.mkdir()
        config = main_config(workdir, site, workers=os.cpu_count() or 1, extra=direct)
        self.nginx = Nginx(workdir, config, [self.port, self.direct_port]).start()
        deadline = time.monotonic() + 30
        while True:
            try:
                if Client(self.port).request("GET", "/healthz").status == 200:
                    break
            except OSError:
                pass
            if self.gunicorn.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(
                    "gunicorn did not start:\n" + (self.tmp / "gunicorn.log").read_text()[-3000:]
                )
            time.sleep(0.2)

    def _gunicorn(self, log) -> subprocess.Popen:
        """gunicorn with the production configuration; the access log goes to the folder."""
        return subprocess.Popen(
            [
                str(Path(sys.executable).parent / "gunicorn"),
                "-c",
                str(ROOT / "deploy" / "gunicorn.conf.py"),
                "--access-logfile",
                str(self.tmp / "gunicorn.access.log"),
            ],
            cwd=ROOT,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )

    def stop(self) -> None:
        if self.nginx is not None:
            self.nginx.stop()
        if self.gunicorn is not None and self.gunicorn.poll() is None:
            self.gunicorn.send_signal(signal.SIGTERM)
            try:
                self.gunicorn.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.gunicorn.kill()
                self.gunicorn.wait()
        if self.database is not None:
            self.database.drop()
        if not self.keep:
            shutil.rmtree(self.tmp, ignore_errors=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()

    # -- processes --------------------------------------------------------------------------

    def app_pids(self) -> list[int]:
        """gunicorn's master and workers."""
        if self.gunicorn is None:
            return []
        pid = self.gunicorn.pid
        try:
            children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        except OSError:
            children = []
        return [pid, *(int(c) for c in children)]

    # -- clients ----------------------------------------------------------------------------

    def front(self) -> Client:
        """A client of nginx in front of the app."""
        return Client(self.port)

    def direct(self) -> Client:
        """A client of nginx alone."""
        return Client(self.direct_port)

    def api_headers(self) -> dict:
        return {"Authorization": f"Bearer {self.token}"}


class ThrowawayDatabase:
    """``BENCH_DATABASE_URL``: a PostgreSQL server to run on instead of the embedded SQLite.

    The benchmark creates a database of its own there and drops it at the end; the URL's
    database name is not used (it connects to the server's ``postgres`` database, as Django
    does to create a test database).
    """

    def __init__(self, server_url: str):
        import psycopg

        parts = urlsplit(server_url)
        self.server_url = urlunsplit(parts._replace(scheme="postgresql", path="/postgres"))
        self.name = f"secushare_bench_{secrets.token_hex(4)}"
        self.url = urlunsplit(parts._replace(path=f"/{self.name}"))
        with psycopg.connect(self.server_url, autocommit=True) as admin:
            admin.execute(f'CREATE DATABASE "{self.name}"')

    @classmethod
    def from_environment(cls) -> "ThrowawayDatabase | None":
        url = os.environ.get("BENCH_DATABASE_URL", "").strip()
        if not url:
            return None
        if urlsplit(url).scheme not in ("postgres", "postgresql"):
            raise SystemExit(
                f"BENCH_DATABASE_URL must be a postgres:// URL, like "
                f"postgres://postgres@127.0.0.1:5432/postgres, not {url!r}."
            )
        return cls(url)

    def drop(self) -> None:
        import psycopg
        from django.db import connections

        connections.close_all()
        for alias in connections:
            close_pool = getattr(connections[alias], "close_pool", None)
            if close_pool is not None:
                close_pool()
        with psycopg.connect(self.server_url, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')


def b64(value: str) -> str:
    return base64.b64encode(value.encode()).decode()
