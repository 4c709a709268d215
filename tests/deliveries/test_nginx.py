"""SecuShare behind Debian's nginx, started on loopback with the shipped deploy/nginx.conf
(bench.nginx makes the loopback changes: no TLS, the live server as upstream, tmp folders)."""

import base64
import io
import os
import re
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urljoin, urlsplit

import pytest
import requests
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from accounts.tokens import issue_token
from bench.nginx import SHIPPED, Nginx, free_port, main_config, nginx_binary, site_config
from deliveries.models import DeliveryFile, Download
from secupass import sxf
from tests.deliveries.e2e_receive_support import make_e2e_delivery
from tests.deliveries.e2e_support import PASSWORD, guest, make_key

pytestmark = pytest.mark.django_db(transaction=True)

RITA = "rita@example.org"
HASHED_CSS = "css/app.0123456789ab.css"
OFFSET_STREAM = "application/offset+octet-stream"


@dataclass
class Proxy:
    url: str
    port: int
    nginx: Nginx
    static_root: Path
    log: Path

    def access_log(self, lines: int = 0) -> str:
        """The access log once it has at least ``lines`` lines: nginx writes a request's
        line after its last byte went out, so the client can be a moment ahead of it."""
        deadline = time.monotonic() + 10
        while True:
            text = self.log.read_text(encoding="utf-8")
            if text.count("\n") >= lines or time.monotonic() > deadline:
                return text
            time.sleep(0.05)


@pytest.fixture
def proxy(live_server, make_delivery, settings, tmp_path):
    """nginx on a free loopback port in front of the live server."""
    if nginx_binary() is None:
        pytest.fail("nginx is not installed; run: apt-get install -y nginx-light")
    media_root = Path(settings.MEDIA_ROOT)  # make_delivery's
    media_root.mkdir(parents=True, exist_ok=True)
    static_root = tmp_path / "static"
    (static_root / "css").mkdir(parents=True)
    (static_root / HASHED_CSS).write_text("main { margin: 0 }\n")
    (static_root / "css" / "app.css").write_text("main { margin: 1em }\n")
    workdir = tmp_path / "nginx"
    workdir.mkdir()
    port = free_port()
    live = urlsplit(live_server.url)
    site = site_config(
        port=port,
        upstream=f"127.0.0.1:{live.port}",
        static_root=static_root,
        media_root=media_root,
        log_dir=workdir,
    )
    with Nginx(workdir, main_config(workdir, site), [port]) as nginx:
        yield Proxy(
            url=f"http://127.0.0.1:{port}",
            port=port,
            nginx=nginx,
            static_root=static_root,
            log=workdir / "secushare.access.log",
        )


def test_a_level_1_download_streams_through_nginx_whole_and_in_ranges(proxy, make_delivery):
    data = os.urandom(3 * 1024 * 1024 + 4321)
    made = make_delivery(files={"figures.bin": data})
    token = made.tokens[RITA]
    browser = requests.Session()

    landing = browser.get(f"{proxy.url}/d/{token}", timeout=30)
    assert landing.status_code == 200
    opened = browser.post(
        f"{proxy.url}/api/v1/receive", json={"token": token, "email": RITA}, timeout=30
    )
    assert opened.status_code == 200, opened.text
    url = opened.json()["files"][0]["url"]
    assert url.startswith(proxy.url + "/")  # the app saw the Host the client used

    whole = browser.get(url, timeout=30)
    assert whole.status_code == 200
    assert whole.content == data
    assert whole.headers["Content-Length"] == str(len(data))
    assert whole.headers["X-Content-Type-Options"] == "nosniff"
    assert whole.headers["Content-Disposition"].startswith("attachment")

    part = browser.get(url, headers={"Range": "bytes=1000000-2099999"}, timeout=30)
    assert part.status_code == 206
    assert part.headers["Content-Range"] == f"bytes 1000000-2099999/{len(data)}"
    assert part.content == data[1000000:2100000]

    log = proxy.access_log(lines=4)  # landing, opening, whole, range
    assert token not in log
    assert '"GET /d/[redacted] HTTP/1.1" 200' in log
    assert re.search(r'"GET /r/[0-9a-f-]+/files/[0-9a-f-]+ HTTP/1.1" 206 1100000 ', log)


def _metadata(**values) -> str:
    return ",".join(f"{k} {base64.b64encode(v.encode()).decode()}" for k, v in values.items())


def test_a_tus_chunk_far_above_nginx_default_body_limit_reaches_the_app(
    proxy, make_delivery, sender, settings
):
    draft = make_delivery(files={}, sent=False)
    auth = {"Authorization": f"Bearer {issue_token(sender, 'nginx')[1]}", "Tus-Resumable": "1.0.0"}
    plaintext = os.urandom(5 * 1024 * 1024)  # nginx's own default limit is 1 MiB
    created = requests.post(
        f"{proxy.url}/api/v1/uploads/",
        headers={
            **auth,
            "Upload-Length": str(sxf.blob_length(len(plaintext))),
            "Upload-Metadata": _metadata(
                delivery=str(draft.delivery.id), filename="big.bin", size=str(len(plaintext))
            ),
        },
        timeout=30,
    )
    assert created.status_code == 201, created.text
    url = urljoin(proxy.url, created.headers["Location"])
    file_id = url.rsplit("/", 1)[1]
    encryptor = sxf.Encryptor(draft.key, draft.delivery.id, file_id, len(plaintext))
    blob = b"".join(encryptor.encrypt_stream(io.BytesIO(plaintext)))

    patched = requests.patch(
        url,
        data=blob,
        headers={**auth, "Upload-Offset": "0", "Content-Type": OFFSET_STREAM},
        timeout=30,
    )
    assert patched.status_code == 204, patched.text
    assert patched.headers["Upload-Offset"] == str(len(blob))
    f = DeliveryFile.objects.get(pk=file_id)
    assert f.state != DeliveryFile.State.UPLOADING
    assert f.offset == len(blob)
    assert (Path(settings.MEDIA_ROOT) / f.storage_name).read_bytes() == blob


def test_a_body_above_the_tus_chunk_limit_is_refused_before_it_is_sent(proxy, settings):
    too_large = settings.TUS_MAX_CHUNK + 1
    with socket.create_connection(("127.0.0.1", proxy.port), timeout=10) as s:
        s.sendall(
            (
                f"PATCH /api/v1/uploads/{'0' * 32} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                f"Content-Type: {OFFSET_STREAM}\r\nContent-Length: {too_large}\r\n\r\n"
            ).encode()
        )
        status_line = s.makefile("rb").readline()
    assert status_line.startswith(b"HTTP/1.1 413")


def test_static_files_come_from_nginx_with_long_caching_only_for_hashed_names(proxy):
    hashed = requests.get(f"{proxy.url}/static/{HASHED_CSS}", timeout=30)
    assert hashed.status_code == 200
    assert hashed.text == "main { margin: 0 }\n"  # a file only nginx's folder has
    assert hashed.headers["Cache-Control"] == "public, max-age=31536000, immutable"
    assert hashed.headers["Content-Type"] == "text/css"
    assert hashed.headers["X-Content-Type-Options"] == "nosniff"

    plain = requests.get(f"{proxy.url}/static/css/app.css", timeout=30)
    assert plain.text == "main { margin: 1em }\n"
    assert plain.headers["Cache-Control"] == "no-cache"
    assert "immutable" not in plain.headers["Cache-Control"]


def test_the_blob_folder_cannot_be_reached_from_outside(proxy, make_delivery):
    made = make_delivery()
    name = next(iter(made.files.values())).storage_name
    response = requests.get(f"{proxy.url}/_protected/blobs/{name}", timeout=30)
    assert response.status_code == 404


def test_level_3_ciphertext_is_sent_by_nginx_after_the_app_said_yes(proxy, sender, settings):
    settings.ACCEL_REDIRECT_PREFIX = "/_protected/blobs/"
    rita = make_key(guest(RITA))
    made = make_e2e_delivery(make_key(sender), readers=[rita], files={"scan.bin": 300_000})
    f = made.files["scan.bin"]
    stored = (Path(settings.MEDIA_ROOT) / f.storage_name).read_bytes()
    browser = requests.Session()
    opened = browser.post(
        f"{proxy.url}/api/v1/receive",
        json={"token": made.tokens[RITA], "email": RITA, "password": PASSWORD},
        timeout=30,
    )
    assert opened.status_code == 200, opened.text
    url = f"{proxy.url}/r/{made.recipients[RITA].pk}/blobs/{f.id}"

    whole = browser.get(url, timeout=30)
    assert whole.status_code == 200
    assert whole.content == stored
    assert "X-Accel-Redirect" not in whole.headers
    mtime = (Path(settings.MEDIA_ROOT) / f.storage_name).stat().st_mtime
    assert whole.headers["ETag"] == f'"{int(mtime):x}-{len(stored):x}"'  # nginx's own
    assert whole.headers["Content-Disposition"].startswith("attachment")
    assert whole.headers["X-Content-Type-Options"] == "nosniff"
    assert whole.headers["Content-Security-Policy"] == "sandbox; default-src 'none'"
    assert whole.headers["Cache-Control"] == "no-store"
    assert Download.objects.get(recipient=made.recipients[RITA], file=f).count == 1

    rest = browser.get(url, headers={"Range": "bytes=100000-"}, timeout=30)
    assert rest.status_code == 206
    assert rest.headers["Content-Range"] == f"bytes 100000-{len(stored) - 1}/{len(stored)}"
    assert rest.content == stored[100000:]
    assert Download.objects.get(recipient=made.recipients[RITA], file=f).count == 1

    stranger = requests.get(url, timeout=30)
    assert stranger.status_code == 404


def test_an_accel_prefix_that_is_not_a_path_stops_the_start(tmp_path):
    done = subprocess.run(
        [sys.executable, "-c", "import django; django.setup()"],
        cwd=Path(__file__).resolve().parents[2],
        env={
            "PATH": os.environ["PATH"],
            "DJANGO_SETTINGS_MODULE": "secushare.settings",
            "DATA_DIR": str(tmp_path / "var"),
            "ACCEL_REDIRECT_PREFIX": "_protected/blobs",
        },
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode != 0
    assert "ACCEL_REDIRECT_PREFIX must be a path that starts and ends with a slash" in done.stderr


def _self_signed(folder: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "share.example.com")])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    chain, private = folder / "fullchain.pem", folder / "privkey.pem"
    chain.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    private.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return chain, private


def test_the_shipped_configuration_with_tls_is_accepted_by_debians_nginx(tmp_path):
    if nginx_binary() is None:
        pytest.fail("nginx is not installed; run: apt-get install -y nginx-light")
    chain, private = _self_signed(tmp_path)
    site = SHIPPED.read_text(encoding="utf-8")
    for old, new in (
        ("/etc/nginx/certs/fullchain.pem", str(chain)),
        ("/etc/nginx/certs/privkey.pem", str(private)),
        ("/var/log/nginx/", f"{tmp_path}/"),
        ("server web:8000;", "server 127.0.0.1:8000;"),  # "web" resolves only in compose
    ):
        assert old in site
        site = site.replace(old, new)
    conf = tmp_path / "nginx.conf"
    conf.write_text(main_config(tmp_path, site))
    (tmp_path / "temp").mkdir()
    checked = subprocess.run(
        [
            nginx_binary(),
            "-t",
            "-p",
            str(tmp_path),
            "-e",
            str(tmp_path / "error.log"),
            "-c",
            str(conf),
        ],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert checked.returncode == 0, checked.stderr
    assert "test is successful" in checked.stderr
