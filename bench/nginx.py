"""Debian's nginx on loopback with the shipped ``deploy/nginx.conf``.

The tests and the benchmark run the very file an admin installs. :func:`site_config` makes
the few changes a loopback run needs (no TLS, no redirect from port 80, the upstream, the
folders, the logs), and fails loudly when the shipped file no longer has the lines it
replaces, so the two cannot drift apart silently.
"""

import os
import random
import re
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

SHIPPED = Path(__file__).resolve().parent.parent / "deploy" / "nginx.conf"
MIME_TYPES = Path("/etc/nginx/mime.types")
_REDIRECT_SERVER = re.compile(r"\nserver \{\n    listen 80;\n.*?\n\}\n", re.DOTALL)
_TLS_LINE = re.compile(r"^ *ssl_[a-z_]+ .*;\n", re.MULTILINE)


class NginxError(Exception):
    pass


def nginx_binary() -> str | None:
    return shutil.which("nginx") or next(
        (p for p in ("/usr/sbin/nginx", "/usr/local/sbin/nginx") if os.access(p, os.X_OK)), None
    )


def free_port() -> int:
    """A free loopback port; from the range in SECUSHARE_TEST_PORTS ("18000-18099") if set."""
    spec = os.environ.get("SECUSHARE_TEST_PORTS", "")
    if spec:
        low, high = (int(part) for part in spec.split("-"))
        candidates = list(range(low, high + 1))
        random.shuffle(candidates)
    else:
        candidates = [0]
    for port in candidates:
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return s.getsockname()[1]
    raise NginxError(f"no free port in {spec}")


def _replace(text: str, old: str, new: str, count: int = 1) -> str:
    found = text.count(old)
    if found != count:
        raise NginxError(
            f"{SHIPPED} has {found} times {old!r}, expected {count}: update bench/nginx.py"
        )
    return text.replace(old, new)


def site_config(
    *,
    port: int,
    upstream: str,
    static_root: Path,
    media_root: Path,
    log_dir: Path,
) -> str:
    """The shipped server configuration, served over plain HTTP on 127.0.0.1:``port``."""
    text = SHIPPED.read_text(encoding="utf-8")
    text, dropped = _REDIRECT_SERVER.subn("\n", text)
    if dropped != 1:
        raise NginxError(f"{SHIPPED}: no server block for port 80 found: update bench/nginx.py")
    text = _replace(
        text,
        "    listen 443 ssl http2;\n    listen [::]:443 ssl http2;\n",
        f"    listen 127.0.0.1:{port};\n",
    )
    text, tls = _TLS_LINE.subn("", text)
    if tls < 2:
        raise NginxError(f"{SHIPPED}: no ssl_certificate lines found: update bench/nginx.py")
    text = _replace(text, "    server web:8000;\n", f"    server {upstream};\n")
    text = _replace(text, "alias /app/staticfiles/;", f"alias {static_root}/;")
    text = _replace(text, "alias /data/blobs/;", f"alias {media_root}/;")
    text = _replace(text, "/var/log/nginx/", f"{log_dir}/", count=2)
    return text


def main_config(workdir: Path, site: str, *, workers: int = 1, extra: str = "") -> str:
    """A whole nginx.conf: the site plus ``extra`` server blocks, everything under workdir."""
    user = ""
    if os.geteuid() == 0:
        # Blobs are mode 0600 and owned by the app's user: nginx's workers run as that user.
        user = "user root root;"
    temp = "\n".join(
        f"    {kind}_temp_path {workdir}/temp/{kind};"
        for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    return f"""daemon off;
pid {workdir}/nginx.pid;
error_log {workdir}/error.log warn;
worker_processes {workers};
{user}
events {{
    worker_connections 2048;
}}
http {{
    include {MIME_TYPES};
    default_type application/octet-stream;
    access_log {workdir}/other.access.log;
{temp}
{site}
{extra}
}}
"""


class Nginx:
    """An nginx master process on loopback, stopped by :meth:`stop` (or as a context)."""

    def __init__(self, workdir: Path, config: str, ports: list[int]):
        self.workdir = Path(workdir)
        self.config = config
        self.ports = ports
        self.process: subprocess.Popen | None = None

    def start(self, timeout: float = 10) -> "Nginx":
        binary = nginx_binary()
        if binary is None:
            raise NginxError("nginx is not installed: apt-get install nginx-light")
        (self.workdir / "temp").mkdir(parents=True, exist_ok=True)
        conf = self.workdir / "nginx.conf"
        conf.write_text(self.config, encoding="utf-8")
        command = [binary, "-p", str(self.workdir), "-e", str(self.workdir / "error.log")]
        check = subprocess.run(
            [*command, "-t", "-q", "-c", str(conf)], capture_output=True, text=True
        )
        if check.returncode != 0:
            raise NginxError(f"nginx refuses the configuration:\n{check.stderr}")
        self.process = subprocess.Popen(
            [*command, "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        deadline = time.monotonic() + timeout
        for port in self.ports:
            while not _listening(port):
                if self.process.poll() is not None or time.monotonic() > deadline:
                    self.stop()
                    raise NginxError(f"nginx did not start: {self.error_log()}")
                time.sleep(0.05)
        return self

    def error_log(self) -> str:
        path = self.workdir / "error.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def worker_pids(self) -> list[int]:
        if self.process is None:
            return []
        children = Path(f"/proc/{self.process.pid}/task/{self.process.pid}/children")
        try:
            return [int(pid) for pid in children.read_text().split()]
        except OSError:
            return []

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)  # fast shutdown: open transfers end
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


def _listening(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.2)
        return s.connect_ex(("127.0.0.1", port)) == 0
