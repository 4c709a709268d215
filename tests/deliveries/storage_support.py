"""Blob stores under test: a real S3 API on loopback (moto in server mode) beside the disk.

``start_s3_server`` serves moto's S3 on the first free port of ``S3_PORTS``; the helpers
below look into whichever store the settings choose, the way an operator would (objects
in the bucket, unfinished multipart uploads, files under MEDIA_ROOT).
"""

import logging
import socket
import threading
from pathlib import Path

from django.conf import settings

from deliveries.storage import blob_store

S3_PORTS = range(18100, 18200)
S3_BUCKET = "secushare-tests"


class S3Server:
    """moto's S3 in a thread of the test process, bound before the thread starts."""

    def __init__(self):
        from moto.server import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
        from werkzeug.serving import make_server

        logging.getLogger("werkzeug").setLevel(logging.WARNING)
        app = DomainDispatcherApplication(create_backend_app)
        port = self._bind()
        self.server = make_server(
            "127.0.0.1",
            port,
            app,
            threaded=True,
            request_handler=MotoRequestHandler,
            fd=self.socket.fileno(),
        )
        self.endpoint = f"http://127.0.0.1:{port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def _bind(self) -> int:
        """The first free port of S3_PORTS, bound here (other test runs may hold some)."""
        for port in S3_PORTS:
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                sock.close()
                continue
            sock.listen(128)
            self.socket = sock
            return port
        raise RuntimeError(f"no free port for the S3 server in {S3_PORTS}")

    def stop(self):
        self.server.shutdown()
        self.server.server_close()
        self.socket.close()
        self.thread.join(timeout=10)


def s3_options(endpoint: str, bucket: str = S3_BUCKET) -> dict:
    """STORAGES["blobs"]["OPTIONS"] as settings.py makes them for STORAGE_BACKEND=s3."""
    return {
        "bucket_name": bucket,
        "endpoint_url": endpoint,
        "region_name": "us-east-1",
        "addressing_style": "path",
        "access_key": "secushare-test",
        "secret_key": "secushare-test-secret",
        "signature_version": "s3v4",
        "querystring_expire": 300,
        "file_overwrite": True,
    }


def use_s3(django_settings, endpoint: str) -> None:
    """Point ``django_settings`` (pytest-django's fixture) at the bucket on ``endpoint``."""
    django_settings.STORAGE_BACKEND = "s3"
    django_settings.STORAGES = {
        **django_settings.STORAGES,
        "blobs": {"BACKEND": "storages.backends.s3.S3Storage", "OPTIONS": s3_options(endpoint)},
    }


def on_s3() -> bool:
    return settings.STORAGE_BACKEND == "s3"


def client():
    return blob_store().client


def make_bucket() -> None:
    try:
        client().create_bucket(Bucket=S3_BUCKET)
    except client().exceptions.BucketAlreadyOwnedByYou:
        pass


def object_keys() -> list[str]:
    pages = client().get_paginator("list_objects_v2").paginate(Bucket=S3_BUCKET)
    return sorted(o["Key"] for page in pages for o in page.get("Contents", []))


def objects() -> dict[str, bytes]:
    """Every object in the bucket and its bytes."""
    return {
        key: client().get_object(Bucket=S3_BUCKET, Key=key)["Body"].read() for key in object_keys()
    }


def multipart_uploads() -> list[tuple[str, str]]:
    """(key, upload id) of every unfinished multipart upload in the bucket."""
    answer = client().list_multipart_uploads(Bucket=S3_BUCKET)
    return [(u["Key"], u["UploadId"]) for u in answer.get("Uploads", [])]


def empty_bucket() -> None:
    for key, upload_id in multipart_uploads():
        client().abort_multipart_upload(Bucket=S3_BUCKET, Key=key, UploadId=upload_id)
    for key in object_keys():
        client().delete_object(Bucket=S3_BUCKET, Key=key)


def local_files() -> list[Path]:
    root = Path(settings.MEDIA_ROOT)
    return sorted(p for p in root.rglob("*") if p.is_file()) if root.exists() else []


def stored_bytes() -> list[bytes]:
    """What the store holds, whichever it is (objects, or files under MEDIA_ROOT)."""
    if on_s3():
        return list(objects().values())
    return [p.read_bytes() for p in local_files()]


def holds(name: str) -> bool:
    """Does the store hold anything of this blob (the blob, or an unfinished upload)?"""
    if not on_s3():
        return blob_store().path(name).exists()
    keys = object_keys()
    return (
        name in keys
        or any(key.startswith(f"{name}.tail/") for key in keys)
        or any(key == name for key, _id in multipart_uploads())
    )


def flip_byte(name: str, position: int) -> None:
    """Change one stored bit of a finished blob, as a failing disk or an attacker would."""
    if on_s3():
        data = bytearray(client().get_object(Bucket=S3_BUCKET, Key=name)["Body"].read())
        data[position] ^= 1
        client().put_object(Bucket=S3_BUCKET, Key=name, Body=bytes(data))
        return
    with open(blob_store().path(name), "r+b") as blob:
        blob.seek(position)
        byte = blob.read(1)
        blob.seek(position)
        blob.write(bytes([byte[0] ^ 1]))


def tails_of(name: str) -> list[str]:
    return [key for key in object_keys() if key.startswith(f"{name}.tail/")]
