"""Downloads at levels 1 and 2: decrypted while streaming, with Range, safe headers."""

import io
import os
import zipfile
from email.message import EmailMessage

import pytest
from django.core import mail
from django.db import connection

from deliveries import downloads
from deliveries.models import AuditEvent, Download, Recipient
from deliveries.storage import blob_store
from outbox.models import OutgoingMail
from secupass import sxf
from tests.deliveries import storage_support
from tests.deliveries.conftest import store_blob
from tests.deliveries.receive_support import (
    body,
    events,
    file_url,
    open_and_confirm,
    sha256,
    zip_url,
)

CHUNK = 1 << 16


@pytest.fixture
def big(make_delivery, client):
    """A confirmed recipient of a 3-chunk-and-a-bit file whose bytes all differ."""
    data = os.urandom(3 * CHUNK + 1234)
    made = make_delivery(files={"data.bin": data})
    open_and_confirm(client, made)
    return made


def filename_of(header: str) -> str:
    message = EmailMessage()
    message["Content-Disposition"] = header
    return message.get_filename()


@pytest.mark.usefixtures("blob_backend")
def test_every_file_comes_back_byte_identical(client, make_delivery):
    files = {
        "empty.txt": b"",
        "one.txt": b"1",
        "chunk.bin": os.urandom(CHUNK),
        "chunk-plus-one.bin": os.urandom(CHUNK + 1),
        "large.bin": os.urandom(2_500_000),
    }
    made = make_delivery(files=files)
    open_and_confirm(client, made)

    for name, data in files.items():
        response = client.get(file_url(made, name))
        assert response.status_code == 200
        assert int(response["Content-Length"]) == len(data)
        assert sha256(body(response)) == sha256(data), name


@pytest.mark.usefixtures("blob_backend")
def test_the_stream_never_holds_more_than_about_a_mebibyte(client, make_delivery):
    data = os.urandom(5 * 1024 * 1024 + 7)
    made = make_delivery(files={"five.bin": data}, recipients=["rita@example.org"])
    open_and_confirm(client, made)

    pieces = list(client.get(file_url(made, "five.bin")).streaming_content)

    assert b"".join(pieces) == data
    assert len(pieces) > 4
    assert max(len(p) for p in pieces) <= downloads.PIECE + CHUNK


@pytest.mark.django_db(transaction=True)
def test_a_download_in_progress_holds_no_database_connection(client, make_delivery):
    """A recipient may read a download for an hour, and PostgreSQL allows 100 connections:
    the connection goes back before the first byte (secushare.middleware)."""
    data = os.urandom(3 * CHUNK + 5)
    made = make_delivery(files={"slow.bin": data, "other.txt": b"second file"})
    open_and_confirm(client, made)

    response = client.get(file_url(made, "slow.bin"))
    assert response.status_code == 200
    assert connection.connection is None
    pieces = iter(response.streaming_content)
    first = next(pieces)
    assert connection.connection is None
    assert first + b"".join(pieces) == data
    assert Download.objects.filter(recipient__email="rita@example.org").count() == 1

    archive = client.get(zip_url(made))
    assert archive.status_code == 200
    assert connection.connection is None
    with zipfile.ZipFile(io.BytesIO(b"".join(archive.streaming_content))) as opened:
        assert opened.read("slow.bin") == data
        assert opened.read("other.txt") == b"second file"


def test_a_page_keeps_its_database_connection_inside_a_transaction(client, make_delivery):
    """The release leaves a connection alone while a transaction is open on it."""
    made = make_delivery(files={"data.bin": b"x" * 10})
    open_and_confirm(client, made)

    response = client.get(file_url(made, "data.bin"))

    assert body(response) == b"x" * 10
    assert connection.in_atomic_block
    assert Download.objects.count() == 1


def test_download_headers_make_it_an_inert_attachment(client, make_delivery):
    made = make_delivery(files={})
    f = store_blob(made.delivery, made.key, "page.html", b"<script>alert(1)</script>", "text/html")
    made.files["page.html"] = f
    open_and_confirm(client, made)

    response = client.get(file_url(made, "page.html"))

    assert response.status_code == 200
    assert response["Content-Type"] == "application/octet-stream"
    assert response["Content-Disposition"].startswith("attachment; ")
    assert filename_of(response["Content-Disposition"]) == "page.html"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Content-Security-Policy"] == "sandbox; default-src 'none'"
    assert "no-store" in response["Cache-Control"]
    assert response["Accept-Ranges"] == "bytes"
    assert body(response) == b"<script>alert(1)</script>"


@pytest.mark.parametrize(
    ("header", "first", "last"),
    [
        (f"bytes={CHUNK + 100}-{CHUNK + 109}", CHUNK + 100, CHUNK + 109),  # inside a chunk
        (f"bytes={CHUNK - 5}-{2 * CHUNK + 5}", CHUNK - 5, 2 * CHUNK + 5),  # across chunks
        ("bytes=0-0", 0, 0),
        (f"bytes={2 * CHUNK}-", 2 * CHUNK, 3 * CHUNK + 1233),  # resume from a chunk start
        ("bytes=-100", 3 * CHUNK + 1134, 3 * CHUNK + 1233),  # the last 100 bytes
        ("bytes=-999999999", 0, 3 * CHUNK + 1233),
        ("bytes=5-999999999", 5, 3 * CHUNK + 1233),
    ],
)
@pytest.mark.usefixtures("blob_backend")
def test_a_range_returns_exactly_those_bytes(client, big, header, first, last):
    size = 3 * CHUNK + 1234

    response = client.get(file_url(big, "data.bin"), HTTP_RANGE=header)

    assert response.status_code == 206
    assert response["Content-Range"] == f"bytes {first}-{last}/{size}"
    assert int(response["Content-Length"]) == last - first + 1
    assert body(response) == big.plaintexts["data.bin"][first : last + 1]


@pytest.mark.parametrize("header", [f"bytes={3 * CHUNK + 1234}-", "bytes=-0"])
def test_an_unsatisfiable_range_is_416_and_counts_nothing(client, big, header):
    response = client.get(file_url(big, "data.bin"), HTTP_RANGE=header)

    assert response.status_code == 416
    assert response["Content-Range"] == f"bytes */{3 * CHUNK + 1234}"
    assert not Download.objects.exists()


@pytest.mark.parametrize("header", ["bytes=0-1,5-6", "bytes=9-3", "lines=1-2", "bytes=x-"])
def test_ranges_it_does_not_serve_give_the_whole_file(client, big, header):
    response = client.get(file_url(big, "data.bin"), HTTP_RANGE=header)

    assert response.status_code == 200
    assert body(response) == big.plaintexts["data.bin"]


@pytest.mark.usefixtures("blob_backend")
def test_if_range_resumes_only_the_same_file(client, big):
    first = client.get(file_url(big, "data.bin"))
    body(first)
    etag, modified = first["ETag"], first["Last-Modified"]

    for validator in (etag, modified):
        same = client.get(
            file_url(big, "data.bin"), HTTP_RANGE="bytes=10-", HTTP_IF_RANGE=validator
        )
        assert same.status_code == 206
        assert body(same) == big.plaintexts["data.bin"][10:]
    other = client.get(file_url(big, "data.bin"), HTTP_RANGE="bytes=10-", HTTP_IF_RANGE='"x"')
    assert other.status_code == 200
    assert body(other) == big.plaintexts["data.bin"]


def test_head_tells_the_size_without_counting_a_download(client, big):
    response = client.head(file_url(big, "data.bin"))

    assert response.status_code == 200
    assert response["Content-Length"] == str(3 * CHUNK + 1234)
    assert response["Accept-Ranges"] == "bytes"
    assert not Download.objects.exists()
    assert not events(AuditEvent.Kind.DOWNLOADED)


@pytest.mark.usefixtures("blob_backend")
def test_a_download_is_recorded_with_file_and_size(client, big):
    f = big.files["data.bin"]

    body(client.get(file_url(big, "data.bin")))
    body(client.get(file_url(big, "data.bin"), HTTP_RANGE="bytes=100-199"))

    recipient = Recipient.objects.get(pk=big.recipients["rita@example.org"].pk)
    assert recipient.downloaded_at is not None
    whole, part = events(AuditEvent.Kind.DOWNLOADED)
    assert whole.detail == {"file": str(f.id), "size": f.size, "bytes": f.size}
    assert part.detail["range"] == "100-199" and part.detail["bytes"] == 100
    assert whole.recipient == recipient and whole.address == "127.0.0.1"


def test_a_tampered_blob_cuts_the_stream_instead_of_serving_wrong_bytes(client, big):
    f = big.files["data.bin"]
    path = blob_store().path(f.storage_name)
    with open(path, "r+b") as blob:
        blob.seek(sxf.HEADER_LEN + 2 * (CHUNK + 16) + 5)  # inside chunk 2
        byte = blob.read(1)
        blob.seek(-1, os.SEEK_CUR)
        blob.write(bytes([byte[0] ^ 1]))

    response = client.get(file_url(big, "data.bin"))
    assert response.status_code == 200
    received = []
    with pytest.raises(sxf.AuthenticationError):
        for piece in response.streaming_content:
            received.append(piece)

    got = b"".join(received)
    assert len(got) < int(response["Content-Length"])
    assert big.plaintexts["data.bin"].startswith(got)  # only authenticated chunks went out


def test_a_damaged_header_is_a_clear_error_before_any_byte(client, big):
    f = big.files["data.bin"]
    with open(blob_store().path(f.storage_name), "r+b") as blob:
        blob.write(b"XXXX")

    response = client.get(file_url(big, "data.bin"))

    assert response.status_code == 500
    assert not response.streaming
    assert "cannot be opened" in response.text
    assert not Download.objects.exists()


def test_the_sender_gets_one_receipt_per_file_not_per_range(
    client, make_delivery, settings, django_capture_on_commit_callbacks
):
    settings.CELERY_TASK_ALWAYS_EAGER = True
    made = make_delivery(notify_on_download=True, files={"a.txt": b"a" * 1000, "b.txt": b"b" * 10})
    open_and_confirm(client, made)

    with django_capture_on_commit_callbacks(execute=True):
        body(client.get(file_url(made, "a.txt"), HTTP_RANGE="bytes=0-99"))
    body(client.get(file_url(made, "a.txt"), HTTP_RANGE="bytes=100-"))
    body(client.get(file_url(made, "a.txt")))

    receipt = OutgoingMail.objects.get(template="download_receipt")
    assert receipt.to == "sender@example.org"
    context = receipt.context
    assert context["recipient_email"] == "rita@example.org"
    assert context["subject"] == "Quarterly figures"
    assert context["file_names"] == ["a.txt"] and context["file_count"] == 1
    assert context["delivery_url"].endswith(f"/sent/{made.delivery.id}/")
    assert context["downloaded_at"]
    (sent,) = mail.outbox
    assert sent.to == ["sender@example.org"]
    assert "rita@example.org" in sent.body and "a.txt" in sent.body
    body(client.get(file_url(made, "b.txt")))
    assert OutgoingMail.objects.filter(template="download_receipt").count() == 2


def test_no_receipt_unless_the_sender_asked(client, big):
    body(client.get(file_url(big, "data.bin")))

    assert not OutgoingMail.objects.filter(template="download_receipt").exists()


def test_an_unknown_file_id_is_404(client, big, make_delivery):
    other = make_delivery(recipients=["otto@example.org"])
    url = file_url(big, "data.bin").rsplit("/", 1)[0] + f"/{other.files['report.pdf'].pk}"

    assert client.get(url).status_code == 404


@pytest.mark.parametrize("blob_backend", ["s3"], indirect=True)
def test_a_tampered_object_on_s3_cuts_the_stream_too(client, blob_backend, big):
    f = big.files["data.bin"]
    storage_support.flip_byte(f.storage_name, sxf.HEADER_LEN + 2 * (CHUNK + 16) + 5)

    response = client.get(file_url(big, "data.bin"), HTTP_RANGE=f"bytes={CHUNK}-")
    assert response.status_code == 206
    received = []
    with pytest.raises(sxf.AuthenticationError):
        for piece in response.streaming_content:
            received.append(piece)

    got = b"".join(received)
    assert len(got) < int(response["Content-Length"])
    assert big.plaintexts["data.bin"][CHUNK:].startswith(got)


@pytest.mark.parametrize("blob_backend", ["s3"], indirect=True)
def test_a_damaged_header_on_s3_is_a_clear_error_before_any_byte(client, blob_backend, big):
    storage_support.flip_byte(big.files["data.bin"].storage_name, 0)

    response = client.get(file_url(big, "data.bin"))

    assert response.status_code == 500
    assert not response.streaming
    assert "cannot be opened" in response.text
    assert not Download.objects.exists()
