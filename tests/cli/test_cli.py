"""The ``secushare`` command-line client, run as a real program against a live server."""

import contextlib
import hashlib
import os
import re
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from django.core import mail
from django.utils import timezone

from accounts.models import User
from accounts.tokens import issue_token
from deliveries.models import AuditEvent, Delivery, DeliveryFile
from secushare_cli.main import build_parser

PASSWORD = "a guest password that is long enough"
BIG = 3 * 1024 * 1024 + 12345
CLI = [sys.executable, "-m", "secushare_cli"]
ROOT = Path(__file__).resolve().parents[2]


def secushare(*args, env=None, stdin=""):
    return subprocess.run(
        [*CLI, *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
        env={**os.environ, **(env or {})},
        check=False,
    )


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


class CuttingProxy:
    """Forwards TCP to the live server and kills the connection once, in the middle of the
    bytes that pass ``cut_after`` in one direction: "up" (requests, such as an upload's
    PATCH body) or "down" (responses, such as a download)."""

    def __init__(self, upstream_port: int, cut_after: int, direction: str = "up"):
        self.upstream_port = upstream_port
        self.cut_after = cut_after
        self.direction = direction
        self.forwarded = 0
        self.cuts = 0
        self.lock = threading.Lock()
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.listener.getsockname()[1]}"
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                client, _address = self.listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(("127.0.0.1", self.upstream_port))
            for src, dst, way in ((client, upstream, "up"), (upstream, client, "down")):
                args = (src, dst, way == self.direction)
                threading.Thread(target=self._pump, args=args, daemon=True).start()

    def _pump(self, src, dst, counted):
        with contextlib.suppress(OSError):
            while data := src.recv(65536):
                cut = False
                if counted:
                    with self.lock:
                        cut = not self.cuts and self.forwarded + len(data) >= self.cut_after
                        if cut:
                            data = data[: self.cut_after - self.forwarded]
                            self.cuts += 1
                        self.forwarded += len(data)
                dst.sendall(data)
                if cut:
                    break
        for s in (src, dst):
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)
            s.close()

    def close(self):
        self.listener.close()


def port_of(server) -> int:
    return int(server.url.rsplit(":", 1)[1])


@pytest.fixture
def server(live_server, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "blobs"
    settings.SITE_URL = live_server.url
    settings.CELERY_TASK_ALWAYS_EAGER = True
    return live_server


@pytest.fixture
def token(server, sender):
    return issue_token(sender, "cli test")[1]


@pytest.fixture
def guest(server):
    return User.objects.create_guest("rita@example.org", PASSWORD, email_verified_at=timezone.now())


@pytest.fixture
def files(tmp_path):
    folder = tmp_path / "outgoing"
    folder.mkdir()
    big = folder / "Quartalszahlen 2026 (final).bin"
    big.write_bytes(os.urandom(BIG))
    empty = folder / "empty.txt"
    empty.write_bytes(b"")
    return [big, empty]


def link_from_mail(server, to):
    [message] = [m for m in mail.outbox if m.to == [to]]
    return re.search(rf"{re.escape(server.url)}/\S+", message.body).group(0)


def test_send_level_2_then_fetch_back_byte_identical(server, token, guest, files, tmp_path):
    proxy = CuttingProxy(port_of(server), cut_after=BIG // 2)
    try:
        sent = secushare(
            "send",
            "--level=2",
            "--to",
            "Rita@Example.org",
            "--subject",
            "Figures",
            "--message",
            "Both files, one of them empty.",
            "--download-limit",
            "2",
            *map(str, files),
            env={"SECUSHARE_URL": proxy.url, "SECUSHARE_TOKEN": token},
        )
    finally:
        proxy.close()

    assert sent.returncode == 0, sent.stderr
    assert proxy.cuts == 1  # the upload lost its connection once and resumed
    lines = sent.stdout.splitlines()
    delivery = Delivery.objects.get(pk=lines[0])
    assert delivery.status == Delivery.Status.SENT
    assert delivery.level == 2
    assert delivery.download_limit == 2
    assert "rita@example.org: mail sent" in sent.stdout
    stored = {f.name: f for f in delivery.files.all()}
    assert set(stored) == {f.name for f in files}
    assert {f.state for f in stored.values()} == {DeliveryFile.State.VERIFIED}
    link = link_from_mail(server, "rita@example.org")

    out = tmp_path / "incoming"
    fetched = secushare(
        "fetch",
        link,
        "--email",
        "RITA@example.org",
        "--password",
        "-",
        "-o",
        str(out),
        stdin=PASSWORD + "\n",
    )

    assert fetched.returncode == 0, fetched.stderr
    assert sorted(p.name for p in out.iterdir()) == sorted(f.name for f in files)
    for original in files:
        assert sha256(out / original.name) == sha256(original)
    assert fetched.stdout.splitlines() == [str(out / f.name) for f in files]
    events = set(AuditEvent.objects.filter(delivery=delivery).values_list("kind", flat=True))
    assert {"created", "sent", "address_confirmed", "logged_in", "downloaded"} <= events

    again = secushare(
        "fetch",
        link,
        "--email",
        "rita@example.org",
        "--password",
        "-",
        "-o",
        str(out),
        stdin=PASSWORD + "\n",
    )
    assert again.returncode == 0, again.stderr
    big = files[0]
    copy = out / "Quartalszahlen 2026 (final) (1).bin"
    assert sha256(copy) == sha256(big)  # a second copy, the first one untouched
    assert sha256(out / big.name) == sha256(big)
    assert not [p for p in out.iterdir() if p.name.startswith(".")]


def test_a_refused_address_exits_non_zero_and_writes_nothing(server, token, guest, tmp_path):
    note = tmp_path / "note.txt"
    note.write_text("hello")
    sent = secushare(
        "send",
        "--level",
        "1",
        "--to",
        "rita@example.org",
        str(note),
        env={"SECUSHARE_URL": server.url, "SECUSHARE_TOKEN": token},
    )
    assert sent.returncode == 0, sent.stderr
    link = link_from_mail(server, "rita@example.org")
    out = tmp_path / "nothing-here"

    refused = secushare("fetch", link, "--email", "mallory@example.org", "-o", str(out))

    assert refused.returncode == 3
    assert "This is not the address the delivery was sent to." in refused.stderr
    assert not out.exists()
    assert refused.stdout == ""

    fetched = secushare("fetch", link, "--email", "rita@example.org", "-o", str(out))
    assert fetched.returncode == 0, fetched.stderr
    assert (out / "note.txt").read_text() == "hello"


def test_a_broken_download_resumes_where_it_stopped(server, token, tmp_path):
    original = tmp_path / "big.bin"
    original.write_bytes(os.urandom(BIG))
    sent = secushare(
        "send",
        "--level",
        "1",
        "--to",
        "rita@example.org",
        str(original),
        env={"SECUSHARE_URL": server.url, "SECUSHARE_TOKEN": token},
    )
    assert sent.returncode == 0, sent.stderr
    link = link_from_mail(server, "rita@example.org")
    proxy = CuttingProxy(port_of(server), cut_after=BIG // 2, direction="down")
    out = tmp_path / "incoming"
    try:
        fetched = secushare(
            "fetch",
            link.replace(server.url, proxy.url),
            "--email",
            "rita@example.org",
            "-o",
            str(out),
        )
    finally:
        proxy.close()

    assert fetched.returncode == 0, fetched.stderr
    assert proxy.cuts == 1
    assert sha256(out / "big.bin") == sha256(original)
    assert [p.name for p in out.iterdir()] == ["big.bin"]


def test_send_explains_refusals(server, token, tmp_path):
    note = tmp_path / "note.txt"
    note.write_text("hello")
    env = {"SECUSHARE_URL": server.url, "SECUSHARE_TOKEN": token}

    invalid = secushare("send", "--level", "1", "--to", "not-an-address", str(note), env=env)
    assert invalid.returncode == 4
    assert "“not-an-address” is not a valid e-mail address." in invalid.stderr

    bad_token = secushare(
        "send",
        "--level",
        "1",
        "--to",
        "rita@example.org",
        str(note),
        env={**env, "SECUSHARE_TOKEN": "ssk_nope"},
    )
    assert bad_token.returncode == 3
    assert "The API token is invalid or has been revoked." in bad_token.stderr

    missing = secushare(
        "send", "--level", "1", "--to", "rita@example.org", str(tmp_path / "gone.pdf"), env=env
    )
    assert missing.returncode == 2
    assert "gone.pdf" in missing.stderr
    assert not Delivery.objects.exists()


def option_strings(command: str) -> list[str]:
    parser = build_parser()
    sub = next(a for a in parser._subparsers._group_actions if a.choices)
    options = []
    for action in sub.choices[command]._actions:
        options.extend(action.option_strings or [action.metavar])
    return options


@pytest.mark.parametrize("command", ["send", "fetch"])
def test_help_documents_every_option(command):
    result = secushare(command, "--help")
    assert result.returncode == 0
    for option in option_strings(command):
        assert option in result.stdout, f"{option} is not in `secushare {command} --help`"
    assert "exit status" in result.stdout
    if command == "send":
        assert "SECUSHARE_URL" in result.stdout
        assert "SECUSHARE_TOKEN" in result.stdout


def test_version_and_no_django():
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys; from secushare_cli import main, send, fetch, tus; "
            "import secupass.sxf; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] == 'django'))",
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"},
        check=True,
    )
    assert result.stdout.strip() == "[]"
    version = secushare("--version")
    assert re.fullmatch(r"secushare \d+\.\d+\.\d+\S*\n", version.stdout)


def test_without_configuration_send_says_what_to_set(tmp_path):
    note = tmp_path / "note.txt"
    note.write_text("x")
    env = {k: v for k, v in os.environ.items() if not k.startswith("SECUSHARE_")}
    result = subprocess.run(
        [*CLI, "send", "--level", "1", "--to", "a@example.org", str(note)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert "Set SECUSHARE_URL" in result.stderr
