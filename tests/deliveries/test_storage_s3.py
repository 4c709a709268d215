"""Blobs on S3 (moto's S3 API on loopback): tus chunks as a multipart upload, ranged reads,
presigned URLs, cleanup, the settings an operator writes; and the database lease that keeps
one writer per upload on every store."""

import copy
import io
import os
import runpy
import secrets
from datetime import timedelta
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from django.core.exceptions import ImproperlyConfigured
from django.utils import timezone
from storages.backends.s3 import S3Storage

from deliveries import services, storage_s3
from deliveries.models import DeliveryFile, Download
from deliveries.storage import Missing, blob_name, blob_store
from deliveries.storage_s3 import MiB, tail_key
from deliveries.tasks import remove_abandoned_uploads
from secupass import sxf
from tests.deliveries import storage_support as s3
from tests.deliveries.conftest import store_blob
from tests.deliveries.e2e_receive_support import make_e2e_delivery
from tests.deliveries.e2e_support import guest, make_key
from tests.deliveries.test_receive_e2e import blob_url, signed_in
from tests.deliveries.test_uploads import URL, Tus, api_token, encrypt, file_of

on_s3 = pytest.mark.parametrize("blob_backend", ["s3"], indirect=True)


@pytest.fixture
def draft(make_delivery):
    return make_delivery(files={}, sent=False)


@pytest.fixture
def tus(client, sender):
    return Tus(client, api_token(sender))


def multipart(url) -> dict:
    return file_of(url).upload_state.get("multipart")


def new_upload(tus, draft, size):
    """Create an upload for ``size`` random plaintext bytes; return (url, name, blob)."""
    url = tus.create(draft.delivery, size)["Location"]
    blob = encrypt(draft.key, draft.delivery.id, url.removeprefix(URL), secrets.token_bytes(size))
    return url, file_of(url).storage_name, blob


# -- tus PATCHes become one multipart upload ------------------------------------------------


@on_s3
def test_patches_of_any_size_become_parts_of_at_least_5_mib_and_one_object(
    tus, draft, blob_backend
):
    url, name, blob = new_upload(tus, draft, 20 * MiB)
    state = multipart(url)
    assert state["id"] and state["etags"] == [] and s3.multipart_uploads() == [(name, state["id"])]

    def patch(start, end):
        response = tus.patch(url, start, blob[start:end])
        assert response.status_code == 204, response.content
        assert tus.head(url)["Upload-Offset"] == str(end)
        return multipart(url)

    state = patch(0, 3 * MiB)  # shorter than a part: waits as a tail
    assert state["etags"] == [] and state["tail"] == [0, 3 * MiB]
    assert s3.object_keys() == [tail_key(name, 0, 3 * MiB)]

    state = patch(3 * MiB, 14 * MiB)  # tail + body = 14 MiB: a full part, and 6 MiB >= 5 MiB
    assert len(state["etags"]) == 2 and state["in_parts"] == 14 * MiB and state["tail"] is None

    state = patch(14 * MiB, 15 * MiB)
    assert state["tail"] == [14 * MiB, 15 * MiB] and len(state["etags"]) == 2
    assert s3.tails_of(name) == [tail_key(name, 14 * MiB, 15 * MiB)]

    response = tus.patch(url, 15 * MiB, blob[15 * MiB :])  # the last bytes: the last part
    assert response.status_code == 204
    f = file_of(url)
    assert f.state == DeliveryFile.State.COMPLETE and "multipart" not in f.upload_state
    assert s3.object_keys() == [name]  # no tail left
    assert s3.multipart_uploads() == []
    assert s3.objects()[name] == blob
    assert s3.local_files() == []
    services.verify_files(draft.delivery, draft.key)
    assert file_of(url).state == DeliveryFile.State.VERIFIED


@on_s3
def test_an_offset_mismatch_on_s3_is_409_and_changes_nothing(tus, draft, blob_backend):
    url, name, blob = new_upload(tus, draft, 1000)
    assert tus.patch(url, 0, blob[:500]).status_code == 204
    before = file_of(url).upload_state
    for wrong in (0, 400, 600):
        response = tus.patch(url, wrong, blob[wrong : wrong + 100])
        assert response.status_code == 409
        assert response["Upload-Offset"] == "500"
    assert file_of(url).upload_state == before
    assert s3.object_keys() == [tail_key(name, 0, 500)]


@pytest.mark.usefixtures("blob_backend")
def test_a_second_writer_waits_while_the_lease_runs_and_not_after(tus, draft):
    url, _name, blob = new_upload(tus, draft, 1000)
    # As a PATCH still receiving on another web process holds it:
    DeliveryFile.objects.filter(pk=file_of(url).pk).update(
        lease_token="a" * 32, lease_until=timezone.now() + timedelta(seconds=20)
    )
    response = tus.patch(url, 0, blob[:100])
    assert response.status_code == 423
    assert "right now" in response.json()["error"]
    assert tus.head(url)["Upload-Offset"] == "0"

    # That process died: once its lease ran out, the upload goes on.
    DeliveryFile.objects.filter(pk=file_of(url).pk).update(
        lease_until=timezone.now() - timedelta(seconds=1)
    )
    assert tus.patch(url, 0, blob).status_code == 204
    f = file_of(url)
    assert f.state == DeliveryFile.State.COMPLETE and (f.lease_token, f.lease_until) == ("", None)
    with blob_store().open(f.storage_name) as stored:
        assert stored.read() == blob


@on_s3
def test_parts_and_tails_a_dead_writer_left_unrecorded_are_replaced(tus, draft, blob_backend):
    url, name, blob = new_upload(tus, draft, 12 * MiB)
    assert tus.patch(url, 0, blob[:1000]).status_code == 204
    # A writer that uploaded a part and a tail, then died before recording them:
    dead = copy.deepcopy(file_of(url).upload_state)
    junk = io.BytesIO(secrets.token_bytes(9 * MiB))
    assert blob_store().append(name, 1000, junk.read, 9 * MiB, dead) == 1000 + 9 * MiB
    assert len(dead["multipart"]["etags"]) == 1
    assert tus.head(url)["Upload-Offset"] == "1000"

    assert tus.patch(url, 1000, blob[1000:]).status_code == 204
    assert s3.object_keys() == [name]
    assert s3.objects()[name] == blob


@on_s3
def test_termination_on_s3_removes_parts_tails_and_the_upload(tus, draft, blob_backend):
    url, name, blob = new_upload(tus, draft, 12 * MiB)
    assert tus.patch(url, 0, blob[: 9 * MiB]).status_code == 204  # a part and a tail
    assert s3.tails_of(name) and s3.multipart_uploads()

    assert tus.delete(url).status_code == 204
    assert s3.object_keys() == [] and s3.multipart_uploads() == []
    assert not DeliveryFile.objects.exists()


@on_s3
def test_a_header_for_another_file_leaves_nothing_in_the_bucket(tus, draft, blob_backend):
    url = tus.create(draft.delivery, 5000, name="figures.xlsx")["Location"]
    blob = encrypt(draft.key, draft.delivery.id, DeliveryFile().id, secrets.token_bytes(5000))
    response = tus.patch(url, 0, blob)
    assert response.status_code == 422
    assert "figures.xlsx" in response.json()["error"]
    assert s3.object_keys() == [] and s3.multipart_uploads() == []


@on_s3
def test_bytes_lost_in_the_store_end_the_upload_with_410(tus, draft, blob_backend):
    url, name, blob = new_upload(tus, draft, 7 * MiB)
    assert tus.patch(url, 0, blob[:1000]).status_code == 204
    s3.client().delete_object(Bucket=s3.S3_BUCKET, Key=tail_key(name, 0, 1000))
    response = tus.patch(url, 1000, blob[1000:])
    assert response.status_code == 410
    assert "lost" in response.json()["error"]
    assert not DeliveryFile.objects.exists()
    assert s3.object_keys() == [] and s3.multipart_uploads() == []


@on_s3
def test_a_store_that_refuses_is_503_and_changes_nothing(tus, draft, blob_backend, settings):
    url, _name, blob = new_upload(tus, draft, 1000)
    options = {**settings.STORAGES["blobs"]["OPTIONS"], "bucket_name": "no-such-bucket"}
    settings.STORAGES = {
        **settings.STORAGES,
        "blobs": {**settings.STORAGES["blobs"], "OPTIONS": options},
    }

    for response in (tus.create(draft.delivery, 10), tus.patch(url, 0, blob)):
        assert response.status_code == 503
        assert "try again" in response.json()["error"]
    assert draft.delivery.files.count() == 1
    assert tus.head(url)["Upload-Offset"] == "0"
    assert file_of(url).lease_token == ""


@pytest.mark.django_db(transaction=True)
@on_s3
def test_the_web_node_writes_no_upload_bytes_to_its_disk(
    live_server, make_delivery, sender, settings, tmp_path, blob_backend
):
    from tusclient import client as tusclient

    settings.FILE_UPLOAD_TEMP_DIR = tmp_path / "upload-tmp"
    settings.FILE_UPLOAD_TEMP_DIR.mkdir()
    made = make_delivery(files={}, sent=False)
    plaintext = secrets.token_bytes(7 * MiB)
    tc = tusclient.TusClient(
        live_server.url + URL, headers={"Authorization": f"Bearer {api_token(sender)}"}
    )
    metadata = {"delivery": str(made.delivery.id), "filename": "a.bin", "size": str(7 * MiB)}
    creator = tc.uploader(
        file_stream=io.BytesIO(bytes(sxf.blob_length(7 * MiB))), metadata=metadata
    )
    url = creator.create_url()
    blob = encrypt(made.key, made.delivery.id, url.rsplit("/", 1)[1], plaintext)
    tc.uploader(file_stream=io.BytesIO(blob), url=url, chunk_size=3 * MiB).upload()

    f = made.delivery.files.get()
    assert f.state == DeliveryFile.State.COMPLETE
    assert s3.objects() == {f.storage_name: blob}
    assert s3.local_files() == [] and not settings.MEDIA_ROOT.exists()
    assert list(settings.FILE_UPLOAD_TEMP_DIR.iterdir()) == []


# -- reading -------------------------------------------------------------------------------


@on_s3
def test_an_s3_blob_reads_and_seeks_like_a_file(draft, blob_backend):
    data = secrets.token_bytes(3 * MiB + 77)
    name = blob_name(draft.delivery.id, DeliveryFile().id)
    store = blob_store()
    upload = store.create(name, len(data))
    store.append(name, 0, io.BytesIO(data).read, len(data), upload)
    store.finish(name, upload)

    assert store.size(name) == len(data)
    with store.open(name) as blob:
        assert blob.readable() and blob.seekable()
        assert blob.read(80) == data[:80] and blob.tell() == 80
        assert blob.seek(MiB + 5) == MiB + 5
        assert blob.read(70_000) == data[MiB + 5 : MiB + 70_005]
        assert blob.read(2 * MiB) == data[MiB + 70_005 : 3 * MiB + 70_005]  # past a window
        assert blob.seek(-10, io.SEEK_END) == len(data) - 10
        assert blob.read() == data[-10:]
        assert blob.read(5) == b""
        blob.seek(100)
        assert blob.seek(50, io.SEEK_CUR) == 150
        buffer = bytearray(1000)
        assert blob.readinto(buffer) == 1000 and bytes(buffer) == data[150:1150]
        blob.seek(0)
        assert blob.read() == data
        with pytest.raises(ValueError):
            blob.seek(-1)
    with pytest.raises(ValueError):
        blob.read(1)
    missing = blob_name(draft.delivery.id, DeliveryFile().id)
    with pytest.raises(Missing):
        store.open(missing)


def test_the_local_store_has_no_presigned_urls(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    assert blob_store().presigned_url("a" * 36 + "/" + "b" * 36 + ".sxf", "x.sxf", 60) is None


@on_s3
def test_a_presigned_url_hands_out_the_ciphertext_as_an_attachment(make_delivery, blob_backend):
    made = make_delivery(level=3, files={"plans.pdf": secrets.token_bytes(100_000)})
    f = made.files["plans.pdf"]
    url = blob_store().presigned_url(f.storage_name, f"{f.id}.sxf", 60)
    assert parse_qs(urlsplit(url).query)["X-Amz-Expires"] == ["60"]

    whole = requests.get(url, timeout=10)
    assert whole.status_code == 200
    assert whole.content == s3.objects()[f.storage_name]
    assert whole.headers["Content-Type"] == "application/octet-stream"
    assert whole.headers["Content-Disposition"].startswith(f'attachment; filename="{f.id}.sxf"')
    part = requests.get(url, headers={"Range": "bytes=80-179"}, timeout=10)
    assert part.status_code == 206 and part.content == whole.content[80:180]


@on_s3
def test_level_3_ciphertext_is_fetched_from_a_presigned_url_and_counted(
    blob_backend, settings, sender
):
    rita = make_key(guest("rita@example.org"))
    made = make_e2e_delivery(make_key(sender), readers=[rita], files={}, download_limit=1)
    data = secrets.token_bytes(200_000)
    f = made.files["data.bin"] = store_blob(made.delivery, made.key, "data.bin", data)
    ciphertext = s3.objects()[f.storage_name]
    client = signed_in(rita.user, made)
    url = blob_url(made, "data.bin")

    head = client.head(url)  # answered here, not counted
    assert head.status_code == 200 and head["Content-Length"] == str(f.blob_size)
    first = client.get(url)
    assert first.status_code == 302 and first["Cache-Control"] == "no-store"
    location = urlsplit(first["Location"])
    assert (
        f"{location.scheme}://{location.netloc}"
        == settings.STORAGES["blobs"]["OPTIONS"]["endpoint_url"]
    )
    assert parse_qs(location.query)["X-Amz-Expires"] == [str(settings.S3_PRESIGN_SECONDS)]
    fetched = requests.get(first["Location"], timeout=10)
    assert fetched.content == ciphertext
    assert fetched.headers["Content-Disposition"].startswith(f'attachment; filename="{f.id}.sxf"')

    start = sxf.chunk_offset(sxf.Header.parse(ciphertext), 2)
    resumed = client.get(url, headers={"Range": f"bytes={start}-"})
    assert resumed.status_code == 302  # continues the counted download
    rest = requests.get(resumed["Location"], headers={"Range": f"bytes={start}-"}, timeout=10)
    assert rest.status_code == 206 and rest.content == ciphertext[start:]
    assert Download.objects.get(file=f).count == 1

    again = client.get(url)  # a new download, past the limit of one
    assert again.status_code == 410
    assert Download.objects.get(file=f).count == 1


# -- cleanup ---------------------------------------------------------------------------------


def clock_at(monkeypatch, moment):
    monkeypatch.setattr(storage_s3, "now", lambda: moment)


@on_s3
def test_cleanup_aborts_old_multipart_uploads_that_no_unfinished_file_records(
    tus, draft, blob_backend, settings, monkeypatch
):
    settings.UPLOAD_EXPIRY_HOURS = 24
    store = blob_store()
    stray = blob_name(draft.delivery.id, DeliveryFile().id)  # its row was never saved
    stray_id = store.create(stray, 1000)["multipart"]["id"]
    url, name, blob = new_upload(tus, draft, 20 * MiB)  # started long ago, still going
    assert tus.patch(url, 0, blob[: 9 * MiB]).status_code == 204
    # The age is the Initiated time the store reports (moto reports one fixed time).
    initiated = max(
        u["Initiated"] for u in s3.client().list_multipart_uploads(Bucket=s3.S3_BUCKET)["Uploads"]
    )

    clock_at(monkeypatch, initiated + timedelta(hours=23))
    assert remove_abandoned_uploads() == {"uploads": 0, "drafts": 0, "orphans": 0}
    clock_at(monkeypatch, initiated + timedelta(hours=25))
    assert remove_abandoned_uploads() == {"uploads": 0, "drafts": 0, "orphans": 1}
    assert s3.multipart_uploads() == [(name, multipart(url)["id"])]
    assert stray_id not in {upload_id for _key, upload_id in s3.multipart_uploads()}

    assert tus.patch(url, 9 * MiB, blob[9 * MiB :]).status_code == 204
    assert s3.objects() == {name: blob}


@on_s3
def test_old_objects_without_a_file_row_are_swept_on_s3(
    make_delivery, blob_backend, settings, monkeypatch
):
    settings.UPLOAD_EXPIRY_HOURS = 24
    made = make_delivery(files={"kept.txt": b"kept"})
    store = blob_store()
    orphan = blob_name(made.delivery.id, DeliveryFile().id)
    upload = store.create(orphan, 1000)
    store.append(orphan, 0, io.BytesIO(b"\0" * 1000).read, 1000, upload)
    store.finish(orphan, upload)
    left = tail_key(blob_name(made.delivery.id, DeliveryFile().id), 0, 10)  # of a lost upload
    s3.client().put_object(Bucket=s3.S3_BUCKET, Key=left, Body=b"\0" * 10)

    assert remove_abandoned_uploads()["orphans"] == 0  # not old yet
    assert len(s3.object_keys()) == 3
    clock_at(monkeypatch, storage_s3.now() + timedelta(hours=25))
    assert remove_abandoned_uploads()["orphans"] == 2
    assert s3.object_keys() == [made.files["kept.txt"].storage_name]


# -- what an operator configures ---------------------------------------------------------------

SETTINGS = Path(__file__).resolve().parents[2] / "secushare" / "settings.py"
S3_BASE = {"STORAGE_BACKEND": "s3", "S3_BUCKET": "secushare-blobs"}
KEYS = {"S3_ACCESS_KEY_ID": "AKIDEXAMPLE", "S3_SECRET_ACCESS_KEY": "wJalrXUtnFEMI"}
MINIO = {**S3_BASE, **KEYS, "S3_ENDPOINT_URL": "http://minio:9000"}


def read_settings(monkeypatch, tmp_path, **variables) -> dict:
    """settings.py run afresh in an environment holding only ``variables`` (the settings
    of this test run stay as they are)."""
    for name in list(os.environ):
        if name not in ("PATH", "HOME"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("DATA_DIR", str(tmp_path / "var"))
    for name, value in variables.items():
        monkeypatch.setenv(name, value)
    return runpy.run_path(str(SETTINGS))


@pytest.mark.parametrize(
    ("variables", "message"),
    [
        ({"STORAGE_BACKEND": "s4"}, "STORAGE_BACKEND must be one of local, s3, not 's4'."),
        ({"STORAGE_BACKEND": "s3"}, "STORAGE_BACKEND=s3 needs S3_BUCKET"),
        ({**MINIO, "S3_BUCKET": "My_Bucket"}, "S3_BUCKET must be a bucket name"),
        ({**S3_BASE, **KEYS}, "S3_REGION is required for AWS S3"),
        ({**MINIO, "S3_SECRET_ACCESS_KEY": ""}, "Set both S3_ACCESS_KEY_ID and"),
        ({**S3_BASE, "S3_ENDPOINT_URL": "http://minio:9000"}, "are required with S3_ENDPOINT_URL"),
        ({**MINIO, "S3_ENDPOINT_URL": "http://minio:9000/bucket"}, "without a path or bucket"),
        ({**MINIO, "S3_ENDPOINT_URL": "minio:9000"}, "S3_ENDPOINT_URL must be a URL"),
        ({**MINIO, "S3_ADDRESSING_STYLE": "auto"}, "must be one of path, virtual, not 'auto'"),
        ({**MINIO, "S3_PRESIGN_SECONDS": "5"}, "S3_PRESIGN_SECONDS must be at least 10"),
        ({**MINIO, "S3_REGION": "eu central"}, "S3_REGION must be a region name"),
    ],
)
def test_s3_settings_are_checked_at_start(monkeypatch, tmp_path, variables, message):
    with pytest.raises(ImproperlyConfigured) as refused:
        read_settings(monkeypatch, tmp_path, **variables)
    assert message in str(refused.value)


@pytest.mark.parametrize(
    "variables",
    [
        {**S3_BASE, **KEYS, "S3_REGION": "eu-central-1"},
        {**S3_BASE, **KEYS, "S3_REGION": "us-east-1", "S3_ADDRESSING_STYLE": "path"},
        MINIO,
        {
            **MINIO,
            "S3_ENDPOINT_URL": "https://s3.example.org:3900",
            "S3_REGION": "garage",
            "S3_ADDRESSING_STYLE": "virtual",
        },
    ],
    ids=["aws-virtual", "aws-path", "minio", "garage-virtual"],
)
def test_s3_settings_configure_django_storages_and_allow_the_presigned_origin(
    monkeypatch, tmp_path, variables
):
    secret = tmp_path / "s3-secret"
    secret.write_text("from-a-file\n")
    variables = {**variables, "S3_PRESIGN_SECONDS": "120"}
    variables.pop("S3_SECRET_ACCESS_KEY")
    read = read_settings(monkeypatch, tmp_path, S3_SECRET_ACCESS_KEY_FILE=str(secret), **variables)
    blobs = read["STORAGES"]["blobs"]
    assert blobs["BACKEND"] == "storages.backends.s3.S3Storage"
    options = blobs["OPTIONS"]
    assert options["bucket_name"] == "secushare-blobs"
    assert options["secret_key"] == "from-a-file"
    assert options["querystring_expire"] == 120
    assert options["endpoint_url"] == variables.get("S3_ENDPOINT_URL")
    store = storage_s3.S3BlobStore(
        S3Storage(**options, client_config=storage_s3.client_config(options))
    )
    url = urlsplit(store.presigned_url("a" * 36 + "/" + "b" * 36 + ".sxf", "x.sxf", 60))
    assert f"{url.scheme}://{url.netloc}" == read["S3_ORIGIN"]
    assert f"connect-src 'self' {read['S3_ORIGIN']};" in read["CONTENT_SECURITY_POLICY"]


def test_behind_a_proxy_browsers_get_urls_for_the_public_endpoint(monkeypatch, tmp_path, settings):
    # docker-compose: the web nodes reach MinIO as http://minio:9000, browsers through nginx.
    read = read_settings(
        monkeypatch, tmp_path, **MINIO, S3_PUBLIC_ENDPOINT_URL="https://share.example.org/"
    )
    assert read["S3_ORIGIN"] == "https://share.example.org"
    assert "connect-src 'self' https://share.example.org;" in read["CONTENT_SECURITY_POLICY"]
    options = read["STORAGES"]["blobs"]["OPTIONS"]
    assert options["endpoint_url"] == "http://minio:9000"
    settings.S3_ENDPOINT_URL = read["S3_ENDPOINT_URL"]
    settings.S3_PUBLIC_ENDPOINT_URL = read["S3_PUBLIC_ENDPOINT_URL"]
    store = storage_s3.S3BlobStore(
        S3Storage(**options, client_config=storage_s3.client_config(options))
    )
    url = urlsplit(store.presigned_url("a" * 36 + "/" + "b" * 36 + ".sxf", "x.sxf", 60))
    assert f"{url.scheme}://{url.netloc}" == "https://share.example.org"
    assert url.path == "/secushare-blobs/" + "a" * 36 + "/" + "b" * 36 + ".sxf"
    assert "X-Amz-Signature" in parse_qs(url.query)
