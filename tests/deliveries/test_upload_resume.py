"""An upload whose connection dies in the middle of a PATCH resumes where the server stopped."""

import http.client
import secrets
import socket
import struct
import time
from urllib.parse import urlsplit

import pytest

from deliveries.models import DeliveryFile
from deliveries.storage import blob_store
from deliveries.uploads_patch import Body
from secupass import sxf
from tests.deliveries import storage_support
from tests.deliveries.test_uploads import URL, api_token, b64, encrypt

pytestmark = pytest.mark.django_db(transaction=True)


class Server:
    def __init__(self, live_server, token):
        parts = urlsplit(live_server.url)
        self.host, self.port = parts.hostname, parts.port
        self.token = token

    def headers(self, **extra):
        return {"Tus-Resumable": "1.0.0", "Authorization": f"Bearer {self.token}", **extra}

    def request(self, method, path, body=b"", **headers):
        conn = http.client.HTTPConnection(self.host, self.port, timeout=10)
        try:
            conn.request(method, path, body=body, headers=self.headers(**headers))
            response = conn.getresponse()
            response.read()
            return response
        finally:
            conn.close()

    def offset(self, url) -> int:
        response = self.request("HEAD", url)
        assert response.status == 200
        return int(response.getheader("Upload-Offset"))

    def broken_patch(self, url, offset, body, sent):
        """Announce the whole body, send ``sent`` bytes of it; return the open socket."""
        head = (
            f"PATCH {url} HTTP/1.1\r\n"
            f"Host: {self.host}:{self.port}\r\n"
            f"Tus-Resumable: 1.0.0\r\n"
            f"Authorization: Bearer {self.token}\r\n"
            f"Content-Type: application/offset+octet-stream\r\n"
            f"Upload-Offset: {offset}\r\n"
            f"Content-Length: {len(body)}\r\n\r\n"
        ).encode()
        sock = socket.create_connection((self.host, self.port))
        sock.sendall(head + body[:sent])
        return sock


def wait_for(measure, at_least, timeout=10.0):
    deadline = time.monotonic() + timeout
    while (value := measure()) < at_least:
        assert time.monotonic() < deadline, f"only {value} after {timeout} s"
        time.sleep(0.02)
    return value


def settled_offset(server, url, at_least=0, timeout=10.0) -> int:
    """The offset once the server has finished with the broken request."""
    deadline = time.monotonic() + timeout
    last, same = -1, 0
    while time.monotonic() < deadline:
        offset = server.offset(url)
        same = same + 1 if offset == last else 0
        if offset >= at_least and same >= 3:
            return offset
        last = offset
        time.sleep(0.05)
    raise AssertionError(f"the offset did not settle (last {last})")


def patch_rest(server, url, blob, offset):
    deadline = time.monotonic() + 10
    while True:
        response = server.request(
            "PATCH",
            url,
            blob[offset:],
            **{"Content-Type": "application/offset+octet-stream", "Upload-Offset": str(offset)},
        )
        if response.status != 423 or time.monotonic() > deadline:
            return response
        time.sleep(0.05)  # the broken request still holds the lock


@pytest.mark.parametrize("reset", [False, True], ids=["closed", "reset"])
def test_interrupted_patch_resumes_to_an_identical_blob(live_server, make_delivery, sender, reset):
    made = make_delivery(files={}, sent=False)
    server = Server(live_server, api_token(sender))
    plaintext = secrets.token_bytes(3_500_000)
    metadata = (
        f"delivery {b64(str(made.delivery.id))},filename {b64('big.bin')},"
        f"size {b64(str(len(plaintext)))}"
    )
    response = server.request(
        "POST",
        URL,
        **{"Upload-Length": str(sxf.blob_length(len(plaintext))), "Upload-Metadata": metadata},
    )
    assert response.status == 201
    url = response.getheader("Location")
    blob = encrypt(made.key, made.delivery.id, url.rsplit("/", 1)[1], plaintext)

    f = DeliveryFile.objects.get(pk=url.rsplit("/", 1)[1])
    sent = 2_654_321  # mid-chunk, mid-body
    sock = server.broken_patch(url, 0, blob, sent)
    if reset:
        # Once the server has stored what it read so far, reset the connection (RST, as
        # when a laptop drops off Wi-Fi); the piece it was still waiting for is lost.
        stored = wait_for(lambda: blob_store().size(f.storage_name), at_least=sent - Body.PIECE)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        sock.close()
        offset = settled_offset(server, url, at_least=1)
        assert stored <= offset <= sent
    else:
        sock.close()
        offset = settled_offset(server, url, at_least=sent)
        assert offset == sent  # everything that arrived was kept
    assert f.state == DeliveryFile.State.UPLOADING
    assert blob_store().size(f.storage_name) == offset

    response = patch_rest(server, url, blob, offset)
    assert response.status == 204
    assert response.getheader("Upload-Offset") == str(len(blob))
    assert server.offset(url) == len(blob)

    f.refresh_from_db()
    assert f.state == DeliveryFile.State.COMPLETE
    with blob_store().open(f.storage_name) as stored:
        assert stored.read() == blob
    with blob_store().open(f.storage_name) as stored:
        decrypted = b"".join(
            sxf.decrypt_stream(
                made.key,
                stored,
                delivery_id=made.delivery.id,
                file_id=f.id,
                blob_length=f.blob_size,
            )
        )
    assert decrypted == plaintext


def lease_released(f) -> bool:
    """The interrupted PATCH has finished with the upload (recorded what it kept, or not)."""
    return DeliveryFile.objects.filter(pk=f.pk, lease_token="").exists()


@pytest.mark.parametrize("blob_backend", ["s3"], indirect=True)
@pytest.mark.parametrize("reset", [False, True], ids=["closed", "reset"])
def test_interrupted_patch_resumes_on_s3(live_server, make_delivery, sender, blob_backend, reset):
    """On S3 the bytes of a broken PATCH wait in memory, then in a small tail object that
    the next PATCH continues; the finished blob is one object, byte for byte."""
    made = make_delivery(files={}, sent=False)
    server = Server(live_server, api_token(sender))
    plaintext = secrets.token_bytes(3_500_000)
    metadata = (
        f"delivery {b64(str(made.delivery.id))},filename {b64('big.bin')},"
        f"size {b64(str(len(plaintext)))}"
    )
    response = server.request(
        "POST",
        URL,
        **{"Upload-Length": str(sxf.blob_length(len(plaintext))), "Upload-Metadata": metadata},
    )
    assert response.status == 201
    url = response.getheader("Location")
    blob = encrypt(made.key, made.delivery.id, url.rsplit("/", 1)[1], plaintext)
    f = DeliveryFile.objects.get(pk=url.rsplit("/", 1)[1])

    sent = 2_654_321
    sock = server.broken_patch(url, 0, blob, sent)
    wait_for(lambda: int(not lease_released(f)), at_least=1)  # the PATCH is being served
    if reset:
        time.sleep(0.3)  # let the server read what it can, then drop the connection
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()
    wait_for(lambda: int(lease_released(f)), at_least=1)
    offset = server.offset(url)
    if reset:
        assert 0 < offset <= sent  # what the server had read before the reset was kept
    else:
        assert offset == sent  # everything that arrived was kept
    f.refresh_from_db()
    assert f.state == DeliveryFile.State.UPLOADING
    if offset:
        assert storage_support.tails_of(f.storage_name)  # kept in the bucket, not on disk
    assert storage_support.local_files() == []

    response = patch_rest(server, url, blob, offset)
    assert response.status == 204
    assert server.offset(url) == len(blob)
    f.refresh_from_db()
    assert f.state == DeliveryFile.State.COMPLETE
    assert storage_support.object_keys() == [f.storage_name]
    assert storage_support.multipart_uploads() == []
    with blob_store().open(f.storage_name) as stored:
        assert stored.read() == blob
