"""The tus 1.0 upload server, spoken to as a tus client would: headers in, headers out."""

import base64
import io
import itertools
import re
import secrets
import string
import uuid
from datetime import timedelta
from email.utils import parsedate_to_datetime

import pytest
from django.db import connection
from django.utils import timezone

from accounts.apiauth import TOKEN_PREFIX, hash_api_token
from accounts.models import ApiToken, User
from deliveries import services, upload_lease, uploads_patch
from deliveries.models import DeliveryFile
from deliveries.storage import blob_store
from secupass import sxf
from tests.deliveries import storage_support

URL = "/api/v1/uploads/"
OFFSET_STREAM = "application/offset+octet-stream"


def api_token(user) -> str:
    raw = TOKEN_PREFIX + secrets.token_urlsafe(32)
    ApiToken.objects.create(
        user=user, name="tests", token_hash=hash_api_token(raw), prefix=raw[:12]
    )
    return raw


def encrypt(key, delivery_id, file_id, plaintext: bytes) -> bytes:
    encryptor = sxf.Encryptor(key, delivery_id, file_id, len(plaintext))
    return b"".join(encryptor.encrypt_stream(io.BytesIO(plaintext)))


def b64(value: str) -> str:
    return base64.b64encode(value.encode()).decode()


def stored_bytes() -> list[bytes]:
    return storage_support.stored_bytes()  # files under MEDIA_ROOT, or objects in the bucket


class Tus:
    """A minimal tus client over Django's test client."""

    def __init__(self, client, token=None):
        self.client = client
        self.token = token

    def headers(self, **extra):
        headers = {"Tus-Resumable": "1.0.0"}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        headers.update({k.replace("_", "-"): v for k, v in extra.items()})
        return headers

    def create(self, delivery, size, name="report.pdf", filetype="application/pdf", **extra):
        fields = {"delivery": str(delivery.id), "size": str(size), "filetype": filetype}
        if name is not None:
            fields["filename"] = name
        extra.setdefault("Upload_Length", str(sxf.blob_length(size)))
        extra.setdefault("Upload_Metadata", ",".join(f"{k} {b64(v)}" for k, v in fields.items()))
        return self.client.generic("POST", URL, b"", headers=self.headers(**extra))

    def patch(self, url, offset, data, content_type=OFFSET_STREAM, **extra):
        headers = self.headers(Upload_Offset=str(offset), **extra)
        return self.client.generic("PATCH", url, data, content_type=content_type, headers=headers)

    def head(self, url, **extra):
        return self.client.head(url, headers=self.headers(**extra))

    def delete(self, url, **extra):
        return self.client.delete(url, headers=self.headers(**extra))

    def upload(self, made, plaintext, name="report.pdf", pieces=1):
        """Create, encrypt for the new file id, and PATCH; return (url, blob)."""
        response = self.create(made.delivery, len(plaintext), name=name)
        assert response.status_code == 201, response.content
        url = response["Location"]
        blob = encrypt(made.key, made.delivery.id, url.rsplit("/", 1)[1], plaintext)
        step = -(-len(blob) // pieces)
        for offset in range(0, len(blob), step):
            response = self.patch(url, offset, blob[offset : offset + step])
            assert response.status_code == 204, response.content
        return url, blob


@pytest.fixture
def draft(make_delivery):
    return make_delivery(files={}, sent=False)


@pytest.fixture
def tus(client, sender):
    return Tus(client, api_token(sender))


def file_of(url) -> DeliveryFile:
    return DeliveryFile.objects.get(pk=url.rsplit("/", 1)[1])


def test_options_tells_version_extensions_and_limit(client, sender, settings):
    settings.MAX_FILE_SIZE = 1000
    response = client.options(URL)
    assert response.status_code == 204
    assert response["Tus-Version"] == "1.0.0"
    assert set(response["Tus-Extension"].split(",")) == {"creation", "termination", "expiration"}
    assert response["Tus-Max-Size"] == str(sxf.blob_length(1000))
    assert response["Tus-Resumable"] == "1.0.0"
    assert response["Cache-Control"] == "no-store"


@pytest.mark.usefixtures("blob_backend")
def test_whole_upload_in_pieces_with_head_between(tus, draft):
    plaintext = secrets.token_bytes(200_000)  # four SXF1 chunks
    response = tus.create(draft.delivery, len(plaintext))
    assert response.status_code == 201
    assert response["Tus-Resumable"] == "1.0.0"
    assert response["Cache-Control"] == "no-store"
    url = response["Location"]
    file_id = url.removeprefix(URL)
    assert uuid.UUID(file_id)
    expires = parsedate_to_datetime(response["Upload-Expires"])
    assert timedelta(hours=23) < expires - timezone.now() <= timedelta(hours=24)

    blob = encrypt(draft.key, draft.delivery.id, file_id, plaintext)
    head = tus.head(url)
    assert head.status_code == 200
    assert head["Upload-Offset"] == "0"
    assert head["Upload-Length"] == str(len(blob))
    assert head["Cache-Control"] == "no-store"
    assert "size " + b64(str(len(plaintext))) in head["Upload-Metadata"]

    cuts = [0, 50, 100_000, 170_001, len(blob)]  # the first piece is shorter than the header
    for start, end in itertools.pairwise(cuts):
        response = tus.patch(url, start, blob[start:end])
        assert response.status_code == 204, response.content
        assert response["Upload-Offset"] == str(end)
        assert tus.head(url)["Upload-Offset"] == str(end)
        if end < len(blob):
            assert "Upload-Expires" in response

    f = file_of(url)
    assert f.state == DeliveryFile.State.COMPLETE
    assert f.completed_at is not None
    assert (f.name, f.content_type, f.size) == ("report.pdf", "application/pdf", len(plaintext))
    with blob_store().open(f.storage_name) as stored:
        assert stored.read() == blob
    with blob_store().open(f.storage_name) as stored:
        decrypted = b"".join(
            sxf.decrypt_stream(
                draft.key,
                stored,
                delivery_id=draft.delivery.id,
                file_id=f.id,
                blob_length=f.blob_size,
            )
        )
    assert decrypted == plaintext
    services.verify_files(draft.delivery, draft.key)
    assert file_of(url).state == DeliveryFile.State.VERIFIED


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("blob_backend")
def test_a_patch_holds_no_database_connection_while_its_body_arrives(tus, draft, monkeypatch):
    """On a slow line one PATCH takes minutes; the upload's lease, not a connection, keeps
    it, so a handful of slow senders cannot take every connection of the pool."""
    holding = []
    read = uploads_patch.Body.read

    def watched(body, n):
        holding.append(connection.connection is not None)
        return read(body, n)

    monkeypatch.setattr(uploads_patch.Body, "PIECE", 16 * 1024)
    monkeypatch.setattr(uploads_patch.Body, "read", watched)
    monkeypatch.setattr(upload_lease, "RENEW_AFTER", 0.0)  # renew the lease at every piece
    plaintext = secrets.token_bytes(150_000)

    url, blob = tus.upload(draft, plaintext, pieces=2)

    assert len(holding) > 8
    assert not any(holding)
    f = file_of(url)
    assert (f.state, f.offset, f.lease_token) == (DeliveryFile.State.COMPLETE, len(blob), "")
    with blob_store().open(f.storage_name) as stored:
        assert stored.read() == blob


def test_offset_mismatch_is_409_and_stores_nothing(tus, draft):
    url = tus.create(draft.delivery, 1000)["Location"]
    blob = encrypt(draft.key, draft.delivery.id, url.removeprefix(URL), b"x" * 1000)
    assert tus.patch(url, 0, blob[:500]).status_code == 204
    for wrong in (0, 400, 600):
        response = tus.patch(url, wrong, blob[wrong : wrong + 100])
        assert response.status_code == 409
        assert "HEAD" in response.json()["error"]
        assert response["Upload-Offset"] == "500"
    assert blob_store().size(file_of(url).storage_name) == 500
    assert tus.head(url)["Upload-Offset"] == "500"


def test_a_second_writer_is_told_to_wait(tus, draft):
    url = tus.create(draft.delivery, 1000)["Location"]
    name = file_of(url).storage_name
    with blob_store().locked(name):  # as a PATCH still receiving would hold it
        response = tus.patch(url, 0, b"\0" * 100)
    assert response.status_code == 423
    assert "right now" in response.json()["error"]
    assert blob_store().size(name) == 0 and file_of(url).offset == 0


def test_bytes_a_dead_writer_left_unrecorded_are_replaced(tus, draft):
    plaintext = secrets.token_bytes(3000)
    url = tus.create(draft.delivery, len(plaintext))["Location"]
    blob = encrypt(draft.key, draft.delivery.id, url.removeprefix(URL), plaintext)
    assert tus.patch(url, 0, blob[:1000]).status_code == 204
    name = file_of(url).storage_name
    blob_store().append(name, 1000, io.BytesIO(b"junk" * 100).read, 400)  # never recorded
    assert tus.head(url)["Upload-Offset"] == "1000"
    assert tus.patch(url, 1000, blob[1000:]).status_code == 204
    with blob_store().open(name) as stored:
        assert stored.read() == blob


@pytest.mark.parametrize("version", [None, "0.2.2", "1.0"])
def test_wrong_protocol_version_is_412(tus, draft, version):
    headers = {"Tus_Resumable": version} if version else {}
    tus_headers = tus.headers(**headers)
    if version is None:
        del tus_headers["Tus-Resumable"]
    response = tus.client.generic("POST", URL, b"", headers=tus_headers)
    assert response.status_code == 412
    assert response["Tus-Version"] == "1.0.0"
    assert not DeliveryFile.objects.exists()


def test_wrong_content_type_is_415(tus, draft):
    url = tus.create(draft.delivery, 10)["Location"]
    response = tus.patch(url, 0, b"\0" * 50, content_type="application/octet-stream")
    assert response.status_code == 415
    assert OFFSET_STREAM in response.json()["error"]
    assert blob_store().size(file_of(url).storage_name) == 0


def test_too_large_chunk_is_413_before_anything_is_stored(tus, draft, settings):
    settings.TUS_MAX_CHUNK = 64 * 1024
    plaintext = secrets.token_bytes(100_000)
    url = tus.create(draft.delivery, len(plaintext))["Location"]
    blob = encrypt(draft.key, draft.delivery.id, url.removeprefix(URL), plaintext)
    response = tus.patch(url, 0, blob[: 64 * 1024 + 1])
    assert response.status_code == 413
    assert "64" in response.json()["error"]
    assert blob_store().size(file_of(url).storage_name) == 0
    assert tus.head(url)["Upload-Offset"] == "0"


def test_patch_past_the_announced_length_is_refused(tus, draft):
    url = tus.create(draft.delivery, 10)["Location"]
    response = tus.patch(url, 0, b"\0" * (sxf.blob_length(10) + 1))
    assert response.status_code == 413
    assert blob_store().size(file_of(url).storage_name) == 0


@pytest.mark.usefixtures("blob_backend")
def test_too_large_file_is_refused_at_creation(tus, draft, settings):
    settings.MAX_FILE_SIZE = 1024 * 1024
    response = tus.create(draft.delivery, 1024 * 1024 + 1, name="video.mp4")
    assert response.status_code == 413
    message = response.json()["error"]
    assert "video.mp4" in message and "1.0\xa0MB" in message
    assert not DeliveryFile.objects.exists()
    assert stored_bytes() == []


def test_quota_counts_every_kept_file_of_the_sender(tus, make_delivery, settings):
    make_delivery(files={"old.bin": b"o" * 6000})  # sent, still stored: counts
    make_delivery(files={"gone.bin": b"g" * 9000}, blobs_deleted_at=timezone.now())  # doesn't
    draft = make_delivery(files={}, sent=False)
    settings.USER_QUOTA = 10_000
    response = tus.create(draft.delivery, 4001)
    assert response.status_code == 413
    message = response.json()["error"]
    assert "quota" in message and "5.9\xa0KB" in message and "9.8\xa0KB" in message
    assert not draft.delivery.files.exists()
    assert tus.create(draft.delivery, 4000).status_code == 201


def test_file_count_limit(tus, draft, settings):
    settings.MAX_FILES_PER_DELIVERY = 2
    assert tus.create(draft.delivery, 10, name="a.txt").status_code == 201
    assert tus.create(draft.delivery, 10, name="b.txt").status_code == 201
    response = tus.create(draft.delivery, 10, name="c.txt")
    assert response.status_code == 403
    assert "at most 2 files" in response.json()["error"]
    assert draft.delivery.files.count() == 2


def test_upload_length_must_match_the_encrypted_size(tus, draft):
    response = tus.create(draft.delivery, 1000, Upload_Length="1000")
    assert response.status_code == 400
    assert str(sxf.blob_length(1000)) in response.json()["error"]
    assert not DeliveryFile.objects.exists()


def test_larger_chunk_sizes_are_accepted(tus, draft):
    length = sxf.blob_length(300_000, 18)
    assert tus.create(draft.delivery, 300_000, Upload_Length=str(length)).status_code == 201


@pytest.mark.parametrize(
    ("metadata", "words"),
    [
        ("delivery !!!,size MTA=", "not Base64"),
        ("size MTA=,size MTA=", "twice"),
        ("size MTA=", "id of a delivery"),
        ("delivery {d},size LTE=", "whole number"),
        ("delivery {d},size MTA=,filename /w==", "not UTF-8"),
        ("delivery {d}", "size"),
        ("delivery {d},size MTA=", "filename"),
        (",,", "pairs"),
    ],
)
def test_malformed_creation_metadata(tus, draft, metadata, words):
    metadata = metadata.format(d=b64(str(draft.delivery.id)))
    response = tus.create(
        draft.delivery, 10, Upload_Metadata=metadata, Upload_Length=str(sxf.blob_length(10))
    )
    assert response.status_code == 400
    assert words in response.json()["error"]
    assert not DeliveryFile.objects.exists()


@pytest.mark.parametrize("length", [None, "-5", "12abc", "١٢"])
def test_bad_upload_length(tus, draft, length):
    headers = tus.headers(Upload_Metadata=f"delivery {b64(str(draft.delivery.id))},size MTA=")
    if length is not None:
        headers["Upload-Length"] = length
    response = tus.client.generic("POST", URL, b"", headers=headers)
    assert response.status_code == 400
    assert "Upload-Length" in response.json()["error"]


def test_only_the_sender_of_a_draft_can_touch_its_uploads(tus, draft, client):
    plaintext = b"secret figures " * 1000
    response = tus.create(draft.delivery, len(plaintext))
    url = response["Location"]
    blob = encrypt(draft.key, draft.delivery.id, url.removeprefix(URL), plaintext)
    assert tus.patch(url, 0, blob[:1000]).status_code == 204

    other = User.objects.create_user("mallory@example.org", "pw-mallory-123", name="Mallory")
    mallory = Tus(client, api_token(other))
    assert mallory.head(url).status_code == 404
    assert mallory.patch(url, 1000, blob[1000:2000]).status_code == 404
    assert mallory.delete(url).status_code == 404
    response = mallory.create(draft.delivery, 10)
    assert response.status_code == 404
    assert response.json()["error"] == "There is no such delivery."

    anonymous = Tus(client)
    for response in (
        anonymous.head(url),
        anonymous.patch(url, 1000, blob[1000:2000]),
        anonymous.delete(url),
        anonymous.create(draft.delivery, 10),
    ):
        assert response.status_code == 401
        assert response["Tus-Resumable"] == "1.0.0"
    bad_token = Tus(client, TOKEN_PREFIX + "not-a-real-token")
    assert bad_token.head(url).status_code == 401

    f = file_of(url)
    assert f.offset == 1000 and blob_store().size(f.storage_name) == 1000
    assert draft.delivery.files.count() == 1
    assert tus.head(url)["Upload-Offset"] == "1000"


def test_session_requests_need_the_csrf_token(sender, draft):
    from django.test import Client

    browser = Client(enforce_csrf_checks=True)
    browser.force_login(sender)
    session = Tus(browser)
    response = session.create(draft.delivery, 10)
    assert response.status_code == 403
    assert "CSRF" in response.json()["error"]
    token = "".join(secrets.choice(string.ascii_letters + string.digits) for _ in range(32))
    browser.cookies["csrftoken"] = token
    response = session.create(draft.delivery, 10, X_CSRFToken=token)
    assert response.status_code == 201
    url = response["Location"]
    # A GET that says it is a DELETE is a DELETE, so it is CSRF-checked like one.
    response = browser.get(url, headers=session.headers(X_HTTP_Method_Override="DELETE"))
    assert response.status_code == 403
    assert draft.delivery.files.count() == 1


def test_termination_removes_row_and_blob(tus, draft):
    response = tus.create(draft.delivery, 5000)
    url = response["Location"]
    name = file_of(url).storage_name
    assert tus.patch(url, 0, b"\0" * 40).status_code == 204
    response = tus.delete(url)
    assert response.status_code == 204
    assert response["Tus-Resumable"] == "1.0.0"
    assert not DeliveryFile.objects.exists()
    assert not blob_store().path(name).exists()
    assert tus.head(url).status_code == 404
    assert tus.patch(url, 40, b"\0" * 10).status_code == 404
    assert tus.delete(url).status_code == 404


def test_method_override_is_the_method(tus, draft):
    url = tus.create(draft.delivery, 5000)["Location"]
    head = tus.client.generic("POST", url, b"", headers=tus.headers(X_HTTP_Method_Override="HEAD"))
    assert head.status_code == 200 and head["Upload-Offset"] == "0"
    response = tus.client.generic(
        "POST", url, b"", headers=tus.headers(X_HTTP_Method_Override="DELETE")
    )
    assert response.status_code == 204
    assert not DeliveryFile.objects.exists()


def test_files_of_a_sent_delivery_cannot_change(tus, make_delivery):
    made = make_delivery(files={"a.txt": b"hello"})
    url = f"{URL}{made.files['a.txt'].id}"
    head = tus.head(url)
    assert head.status_code == 200 and head["Upload-Offset"] == head["Upload-Length"]
    assert "Upload-Expires" not in head
    response = tus.delete(url)
    assert response.status_code == 403
    assert "sent already" in response.json()["error"]
    assert tus.create(made.delivery, 10).status_code == 403
    assert made.delivery.files.count() == 1


def test_a_header_for_another_file_is_refused_and_removed(tus, draft):
    plaintext = secrets.token_bytes(5000)
    url = tus.create(draft.delivery, len(plaintext), name="figures.xlsx")["Location"]
    name = file_of(url).storage_name
    blob = encrypt(draft.key, draft.delivery.id, uuid.uuid4(), plaintext)
    response = tus.patch(url, 0, blob)
    assert response.status_code == 422
    message = response.json()["error"]
    assert "figures.xlsx" in message and "another file" in message and "again" in message
    assert not DeliveryFile.objects.exists()
    assert not blob_store().path(name).exists()
    assert tus.head(url).status_code == 404


@pytest.mark.usefixtures("blob_backend")
def test_junk_is_refused_as_soon_as_the_header_is_in(tus, draft):
    url = tus.create(draft.delivery, 10_000)["Location"]
    assert tus.patch(url, 0, b"PK\x03\x04" + b"\0" * 50).status_code == 204  # not 80 bytes yet
    response = tus.patch(url, 54, b"\0" * 100)
    assert response.status_code == 422
    assert "not an SXF1 file" in response.json()["error"]
    assert not DeliveryFile.objects.exists()


@pytest.mark.usefixtures("blob_backend")
def test_a_header_with_another_length_is_refused(tus, draft):
    url = tus.create(draft.delivery, 1000)["Location"]
    # A header whose plaintext length is not the announced size.
    blob = encrypt(draft.key, draft.delivery.id, url.removeprefix(URL), b"a" * 1000)
    forged = bytearray(blob)
    forged[72:80] = (999).to_bytes(8, "big")
    response = tus.patch(url, 0, bytes(forged[:100]))
    assert response.status_code == 422
    assert not DeliveryFile.objects.exists()


@pytest.mark.usefixtures("blob_backend")
def test_blob_store_never_holds_plaintext(tus, draft):
    marker = b"PLAINTEXT-MARKER-4711 "
    plaintext = marker * 20_000
    tus.upload(draft, plaintext, name="marker.txt", pieces=3)
    stored = stored_bytes()
    assert len(stored) == 1 and len(stored[0]) == sxf.blob_length(len(plaintext))
    assert all(marker[:12] not in data for data in stored)


@pytest.mark.parametrize(
    ("raw", "shown"),
    [
        ("../x", "x"),
        ("..\\..\\windows\\system32\\evil.dll", "evil.dll"),
        ("/etc/passwd", "passwd"),
        ("report\r\nSet-Cookie: a=b.pdf", "report Set-Cookie_ a=b.pdf"),
        ("invoice\u202egnp.exe", "invoicegnp.exe"),
        ("\u200fabc\u200e.txt", "abc.txt"),
        ("..", "file"),
        ("CON.txt", "_CON.txt"),
        ('a<b>c:"d"|e?f*.txt', "a_b_c__d__e_f_.txt"),
        ("Cafe\u0301.txt", "Café.txt"),
        ("trailing dots... ", "trailing dots"),
    ],
)
def test_hostile_file_names_are_cleaned(tus, draft, raw, shown):
    url, _blob = tus.upload(draft, b"data", name=raw)
    f = file_of(url)
    assert f.name == shown
    assert f.storage_name == f"{draft.delivery.id}/{f.id}.sxf"
    assert blob_store().path(f.storage_name).is_file()
    assert "filename " + b64(shown) in tus.head(url)["Upload-Metadata"]


def test_long_names_are_cut_to_255_bytes_keeping_the_extension(tus, draft):
    url, _blob = tus.upload(draft, b"data", name="ü" * 300 + ".pdf")
    name = file_of(url).name
    assert name.endswith(".pdf") and name.startswith("üüü")
    assert len(name.encode()) <= 255
    assert set(name.removesuffix(".pdf")) == {"ü"}


@pytest.mark.usefixtures("blob_backend")
def test_level_4_stores_no_file_name(tus, make_delivery):
    made = make_delivery(level=4, files={}, sent=False)
    url, _blob = tus.upload(made, b"secret", name="secret-plans.pdf")
    assert file_of(url).name == ""
    assert "filename" not in tus.head(url)["Upload-Metadata"]


def test_file_types_are_kept_only_when_well_formed(tus, draft):
    ok = tus.create(draft.delivery, 10, filetype="Text/Plain; charset=utf-8")
    odd = tus.create(draft.delivery, 10, filetype="text/html\r\nX: y")
    assert file_of(ok["Location"]).content_type == "text/plain"
    assert file_of(odd["Location"]).content_type == "application/octet-stream"


def test_an_expired_upload_is_gone(tus, draft, settings):
    url = tus.create(draft.delivery, 5000)["Location"]
    assert tus.patch(url, 0, b"\0" * 10).status_code == 204
    DeliveryFile.objects.update(
        touched_at=timezone.now() - timedelta(hours=settings.UPLOAD_EXPIRY_HOURS, seconds=1)
    )
    for response in (tus.head(url), tus.patch(url, 10, b"\0" * 10)):
        assert response.status_code == 410
    assert "expired" in tus.patch(url, 10, b"\0").json()["error"]
    assert blob_store().size(file_of(url).storage_name) == 10


def test_each_patch_extends_the_expiry(tus, draft):
    url = tus.create(draft.delivery, 5000)["Location"]
    DeliveryFile.objects.update(touched_at=timezone.now() - timedelta(hours=20))
    response = tus.patch(url, 0, b"\0" * 10)
    expires = parsedate_to_datetime(response["Upload-Expires"])
    assert expires - timezone.now() > timedelta(hours=23)


def test_unknown_methods_and_ids(tus):
    response = tus.client.put(URL, b"", headers=tus.headers())
    assert response.status_code == 405
    assert "POST" in response["Allow"]
    for url in (f"{URL}not-a-uuid", f"{URL}{uuid.uuid4()}"):
        response = tus.head(url)
        assert response.status_code == 404
        assert "Upload-Offset" not in response
        assert response["Tus-Resumable"] == "1.0.0"


def test_patch_without_offset_or_length(tus, draft):
    url = tus.create(draft.delivery, 10)["Location"]
    headers = tus.headers()
    response = tus.client.generic("PATCH", url, b"abc", content_type=OFFSET_STREAM, headers=headers)
    assert response.status_code == 400
    assert "Upload-Offset" in response.json()["error"]


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("blob_backend")
def test_standard_tus_client_uploads_a_blob_that_verifies(live_server, make_delivery, sender):
    from tusclient import client as tusclient

    made = make_delivery(files={}, sent=False)
    plaintext = secrets.token_bytes(300_000)
    tc = tusclient.TusClient(
        live_server.url + URL, headers={"Authorization": f"Bearer {api_token(sender)}"}
    )
    metadata = {
        "delivery": str(made.delivery.id),
        "filename": "tus-client.bin",
        "filetype": "application/octet-stream",
        "size": str(len(plaintext)),
    }
    blob_length = sxf.blob_length(len(plaintext))
    creator = tc.uploader(file_stream=io.BytesIO(bytes(blob_length)), metadata=metadata)
    url = creator.create_url()
    assert re.fullmatch(rf"{re.escape(live_server.url + URL)}[0-9a-f-]{{36}}", url)
    blob = encrypt(made.key, made.delivery.id, url.rsplit("/", 1)[1], plaintext)
    uploader = tc.uploader(file_stream=io.BytesIO(blob), url=url, chunk_size=100_000)
    uploader.upload()
    assert uploader.offset == len(blob)
    services.verify_files(made.delivery, made.key)
    f = made.delivery.files.get()
    assert (f.state, f.name, f.size) == (DeliveryFile.State.VERIFIED, "tus-client.bin", 300_000)
