"""Configuration from the environment, as an operator starting SecuShare meets it.

Every case starts Django in a subprocess with a crafted environment, so the
settings of the test run itself are never touched.
"""

import base64
import os
import secrets
import stat
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest

ROOT = Path(__file__).resolve().parent.parent
SETUP = "import django; django.setup()"
PRINT_SECRET = SETUP + "; from django.conf import settings; print(settings.SECRET_KEY)"
POSTGRES = "postgres://secushare@db.example.com:5432/secushare"


def secret_key() -> str:
    return secrets.token_urlsafe(40)[:50]


def master_keys() -> str:
    key = base64.urlsafe_b64encode(secrets.token_bytes(32)).rstrip(b"=").decode()
    return f"k1:{key}"


def start(tmp_path, code=SETUP, args=None, **variables):
    """Run Python in a clean environment holding only ``variables``; DATA_DIR is private."""
    environ = {
        "PATH": os.environ["PATH"],
        "HOME": str(tmp_path),
        "DJANGO_SETTINGS_MODULE": "secushare.settings",
        "DATA_DIR": str(tmp_path / "var"),
        **variables,
    }
    command = [sys.executable, *(args or ["-c", code])]
    return subprocess.run(
        command, cwd=ROOT, env=environ, capture_output=True, text=True, timeout=60, check=False
    )


@pytest.mark.parametrize(
    ("variables", "message"),
    [
        ({"DEBUG": "maybe"}, "DEBUG must be true or false, not 'maybe'."),
        ({"PORT": "abc"}, "PORT must be a whole number, not 'abc'."),
        ({"PORT": "70000"}, "PORT must be at most 65535, not 70000."),
        ({"DATABASE_URL": "foo"}, "DATABASE_URL must be a URL starting with postgres://"),
        (
            {"DATABASE_URL": POSTGRES},
            "SECRET_KEY (or SECRET_KEY_FILE) is required when DEBUG is off and DATABASE_URL is set",
        ),
        ({"SECRET_KEY": "too-short"}, "SECRET_KEY must be at least 32 characters long."),
        (
            {"SECRET_KEY": secret_key(), "SECRET_KEY_FILE": "/run/secrets/secret_key"},
            "Set either SECRET_KEY or SECRET_KEY_FILE, not both.",
        ),
        (
            {"SECRET_KEY_FILE": "/nonexistent/secret_key"},
            "SECRET_KEY_FILE: cannot read '/nonexistent/secret_key': No such file or directory",
        ),
        (
            {"EMAIL_HOST": "smtp.example.com", "EMAIL_USE_TLS": "true", "EMAIL_USE_SSL": "true"},
            "EMAIL_USE_TLS and EMAIL_USE_SSL cannot both be true.",
        ),
        (
            {"SITE_URL": "https://example.com/share/"},
            "SITE_URL must be the address of the site without a path",
        ),
        ({"SITE_URL": "https://example.com:https"}, "SITE_URL must be a URL starting with"),
        ({"REDIS_URL": "localhost:6379"}, "REDIS_URL must be a URL starting with redis://"),
        (
            {
                "DATABASE_POOL_SIZE": "0",
                "DATABASE_URL": POSTGRES,
                "SECRET_KEY": secret_key(),
                "MASTER_KEYS": master_keys(),
            },
            "DATABASE_POOL_SIZE must be at least 1, not 0.",
        ),
    ],
    ids=lambda value: next(iter(value)) if isinstance(value, dict) else None,
)
def test_bad_configuration_stops_the_start_with_a_clear_message(tmp_path, variables, message):
    result = start(tmp_path, **variables)

    assert result.returncode != 0
    assert f"ImproperlyConfigured: {message}" in result.stderr


def test_empty_secret_file_is_refused(tmp_path):
    empty = tmp_path / "secret_key"
    empty.write_text("\n")

    result = start(tmp_path, SECRET_KEY_FILE=str(empty))

    assert result.returncode != 0
    assert f"ImproperlyConfigured: SECRET_KEY_FILE: '{empty}' is empty." in result.stderr


def test_secret_key_file_is_read(tmp_path):
    key = secret_key()
    path = tmp_path / "secret_key"
    path.write_text(key + "\n")

    result = start(tmp_path, PRINT_SECRET, SECRET_KEY_FILE=str(path))

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == key
    assert not (tmp_path / "var" / "secret_key").exists()


def test_embedded_default_generates_a_private_secret_key_once(tmp_path):
    first = start(tmp_path, PRINT_SECRET)
    second = start(tmp_path, PRINT_SECRET)

    assert first.returncode == 0, first.stderr
    key = first.stdout.strip()
    assert len(key) >= 50
    assert second.stdout.strip() == key
    stored = tmp_path / "var" / "secret_key"
    assert stored.read_text().strip() == key
    assert stat.S_IMODE(stored.stat().st_mode) == 0o600


def test_sqlite_url_and_extra_hosts_are_understood(tmp_path):
    code = (
        SETUP + "; from django.conf import settings;"
        " print(settings.DATABASES['default']['NAME']); print(settings.ALLOWED_HOSTS)"
    )
    result = start(
        tmp_path,
        code,
        DATABASE_URL=f"sqlite:///{tmp_path}/db.sqlite3",
        SECRET_KEY=secret_key(),
        MASTER_KEYS=master_keys(),
        SITE_URL="https://share.example.com",
        EXTRA_ALLOWED_HOSTS="web, share.internal",
    )

    assert result.returncode == 0, result.stderr
    name, hosts = result.stdout.splitlines()
    assert name == f"{tmp_path}/db.sqlite3"
    assert hosts == "['share.example.com', 'web', 'share.internal']"


POOL_PROBE = """
import threading, django
django.setup()
from django.db import connection
pids, errors = set(), []
def work():
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_backend_pid(), pg_sleep(0.3)")
            pids.add(cursor.fetchone()[0])
    except Exception as e:
        errors.append(repr(e))
    finally:
        connection.close()
threads = [threading.Thread(target=work) for _ in range(12)]
for t in threads: t.start()
for t in threads: t.join()
print(len(pids), errors)
"""


@pytest.mark.skipif(
    not os.environ.get("DATABASE_URL", "").startswith("postgres"),
    reason="needs PostgreSQL (DATABASE_URL), as in CI",
)
def test_postgresql_connections_come_from_a_pool_of_the_configured_size(tmp_path):
    """Twelve threads that query at once share three connections, and all get an answer."""
    server = urlsplit(os.environ["DATABASE_URL"])._replace(path="/postgres")  # always there
    result = start(
        tmp_path,
        POOL_PROBE,
        DATABASE_URL=urlunsplit(server),
        DATABASE_POOL_SIZE="3",
        SECRET_KEY=secret_key(),
        MASTER_KEYS=master_keys(),
    )

    assert result.returncode == 0, result.stderr
    assert result.stdout.split(None, 1) == ["3", "[]\n"]


def test_check_deploy_is_clean_in_production(tmp_path):
    result = start(
        tmp_path,
        args=["manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        SITE_URL="https://share.example.com",
        DATABASE_URL=POSTGRES,
        SECRET_KEY=secret_key(),
        MASTER_KEYS=master_keys(),
        BEHIND_PROXY="true",
        REDIS_URL="redis://redis:6379/0",
    )

    assert result.returncode == 0, result.stderr
    assert "System check identified no issues" in result.stdout
