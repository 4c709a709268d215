"""gunicorn for SecuShare in production: ``gunicorn -c deploy/gunicorn.conf.py``.

gthread workers: a download holds one thread while it streams (levels 1 and 2 are decrypted
on the fly), waiting on the network most of the time, so many threads per process are cheap
and keep pages quick while large files go out. Level 3/4 ciphertext behind nginx leaves the
thread at once (X-Accel-Redirect).

Environment (all optional):
  GUNICORN_BIND       where to listen                  default HOST:PORT, else 127.0.0.1:8000
  GUNICORN_WORKERS    processes (decryption runs in parallel across them)
                                                       default: the number of CPUs (at least 2)
  GUNICORN_THREADS    threads per process = concurrent requests each    default 64
"""

import os


def _positive(name: str, default: int) -> int:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    if not raw.isdigit() or int(raw) < 1:
        raise SystemExit(f"{name} must be a whole number of at least 1, not {raw!r}.")
    return int(raw)


wsgi_app = "secushare.wsgi:application"
bind = [
    os.environ.get("GUNICORN_BIND")
    or f"{os.environ.get('HOST', '127.0.0.1')}:{os.environ.get('PORT', '8000')}"
]
worker_class = "gthread"
workers = _positive("GUNICORN_WORKERS", max(2, os.cpu_count() or 1))
threads = _positive("GUNICORN_THREADS", 64)
# Idle keep-alive connections (they hold no thread). Longer than nginx's upstream
# keepalive_timeout (30 s), so nginx never sends a request on a connection being closed.
keepalive = 75
worker_connections = 1000

# Timeouts. `timeout` is the worker's heartbeat: with gthread it is not a limit on a
# request, so a multi-GB transfer may take as long as it takes. A restart lets running
# transfers finish for `graceful_timeout`; those still running are cut and resume (tus
# uploads from their offset, downloads with Range).
timeout = 60
graceful_timeout = 120

# Logs on standard output and error; the access log redacts personal links and tokens.
accesslog = "-"
errorlog = "-"
logger_class = "secushare.logs.AccessLogger"
access_log_format = '%(h)s "%(r)s" %(s)s %(B)s %(M)sms "%(a)s"'

# No control socket (gunicorn >= 23 makes one in $HOME): manage the server with signals
# (HUP reloads, TERM stops), so several servers on one machine cannot collide on it.
control_socket_disable = True

# Heartbeat files in memory, not on a container's overlay disk.
if os.path.isdir("/dev/shm"):  # noqa: S108 (gunicorn's own advice; only heartbeats)
    worker_tmp_dir = "/dev/shm"  # noqa: S108
