"""deploy/gunicorn.conf.py, as an operator starts it: gthread, sizes from the environment."""

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
GUNICORN = str(Path(sys.executable).parent / "gunicorn")


def config(**variables) -> subprocess.CompletedProcess:
    environ = {"PATH": os.environ["PATH"], "HOME": os.environ.get("HOME", "/tmp"), **variables}
    return subprocess.run(
        [GUNICORN, "-c", "deploy/gunicorn.conf.py", "--print-config"],
        cwd=ROOT,
        env=environ,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def settings_of(output: str) -> dict:
    values = {}
    for line in output.splitlines():
        name, sep, value = line.partition("=")
        if sep:
            values[name.strip()] = value.strip()
    return values


def test_production_entry_uses_gthread_with_sizes_from_the_environment():
    done = config(GUNICORN_BIND="0.0.0.0:8000", GUNICORN_WORKERS="3", GUNICORN_THREADS="24")
    assert done.returncode == 0, done.stderr
    values = settings_of(done.stdout)
    assert values["worker_class"] == "gthread"
    assert values["workers"] == "3"
    assert values["threads"] == "24"
    assert values["bind"] == "['0.0.0.0:8000']"
    assert values["logger_class"] == "secushare.logs.AccessLogger"
    assert values["wsgi_app"] == "secushare.wsgi:application"
    # Longer than nginx's upstream keepalive_timeout (30 s in deploy/nginx.conf).
    assert int(values["keepalive"]) > 30


def test_without_settings_it_listens_where_make_run_does():
    values = settings_of(config(HOST="127.0.0.1", PORT="9000").stdout)
    assert values["bind"] == "['127.0.0.1:9000']"
    assert int(values["workers"]) >= 2
    assert values["threads"] == "64"


def test_a_bad_size_stops_the_start_with_a_clear_message():
    done = config(GUNICORN_THREADS="many")
    assert done.returncode != 0
    assert "GUNICORN_THREADS must be a whole number of at least 1, not 'many'." in done.stderr
