"""SXF1 blobs in an S3-compatible bucket (``STORAGE_BACKEND=s3``).

The connection comes from django-storages' ``S3Storage`` built from ``STORAGES["blobs"]``
(endpoint, region, credentials, addressing style, presign expiry); this module drives the
boto3 client underneath it for what a file storage API lacks: multipart uploads, ranged
reads and abandoned-upload cleanup. One blob is one object named like the local file,
``<delivery id>/<file id>.sxf``.

How a tus upload becomes a multipart upload
-------------------------------------------
S3 parts must be at least 5 MiB (except the last), a tus PATCH body can have any size, and
any web process must be able to take the next PATCH with nothing kept on its disk. So:

- ``create`` starts the multipart upload; its id, the ETags of the parts so far and where
  the *tail* is live in the upload state that the caller records in
  ``DeliveryFile.upload_state`` in the same UPDATE as the new offset.
- ``append`` streams the body through a memory buffer of one part (8 MiB, more for files
  above 70 GiB so that 10,000 parts suffice) and uploads each full buffer as the next part.
  At the end of the body a rest of at least 5 MiB becomes a part too; a shorter rest is
  stored as a small *tail object* that the next PATCH reads back and puts in front of its
  body; the last bytes of the blob always become the last part.
- A tail object is named after the byte range it holds (``<name>.tail/<start>-<end>``), so
  a writer that dies before recording never changes the bytes the row points at. A tail
  the recorded state no longer needs is listed as ``stale`` and deleted by the next append
  (after that state was recorded); ``finish`` and ``delete`` remove all tails of a blob.
- Parts are numbered from the recorded state, so the parts of a writer that died before
  recording are overwritten by the next writer, never completed into the blob.
- ``finish`` completes the multipart upload with the recorded ETags.

Why not the alternatives: keeping the tail in the database row would put up to 5 MiB of
ciphertext into every UPDATE of an ordinary metadata row; ``UploadPartCopy`` from one object
per PATCH would copy every byte a second time when the upload completes (minutes for large
files, inside the last request). The tail costs at most one small PUT and GET per PATCH,
and browser PATCHes (16 MiB) rarely leave one.

One writer at a time is the caller's database lease (``deliveries.upload_lease``): parts
are numbered from the recorded state, so two writers at once would overwrite each other's
parts. The lease is renewed while the body is read, right before each part is uploaded,
and the recording UPDATE checks it; ``locked`` is therefore a no-op here.

Reading: ``open`` returns a seekable read-only file over ranged GETs (:class:`S3Reader`),
read as a stream, so decrypting with a Range works as on the local disk.
"""

import io
import math
import re
import threading
from collections import OrderedDict
from contextlib import nullcontext, suppress
from datetime import UTC, datetime, timedelta

from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from storages.backends.s3 import S3Storage

from deliveries.receive_names import content_disposition
from deliveries.storage import Missing, OffsetMismatch, Reader, StoreError, Unavailable, check_name

MiB = 1024 * 1024
MIN_PART = 5 * MiB  # S3's smallest part but the last
PART_SIZE = 8 * MiB
MAX_PARTS = 10_000
PART_BUDGET = 9_000  # full parts a blob may need; the rest is room for shorter ones
PIECE = MiB  # bytes asked from the request body at a time
READ_FIRST = 256 * 1024  # the first ranged GET after opening or seeking
_TAIL = re.compile(r"^(?P<name>[0-9a-f-]{36}/[0-9a-f-]{36}\.sxf)\.tail/(\d+)-(\d+)$")
_NAME = re.compile(r"^[0-9a-f-]{36}/[0-9a-f-]{36}\.sxf$")
_GONE = {"NoSuchKey", "NoSuchUpload", "404", "NotFound", "InvalidPart", "InvalidPartOrder"}


def now() -> datetime:
    """The clock that decides which objects and uploads are old."""
    return datetime.now(tz=UTC)


def tail_key(name: str, start: int, end: int) -> str:
    return f"{name}.tail/{start}-{end}"


def client_config(options: dict) -> Config:
    """Settings every S3-compatible store accepts: SigV4, checksums only where the API
    requires them (MinIO, Garage and Ceph releases differ in the newer default ones)."""
    return Config(
        signature_version="s3v4",
        s3={"addressing_style": options.get("addressing_style") or "auto"},
        request_checksum_calculation="when_required",
        response_checksum_validation="when_required",
        retries={"max_attempts": 4, "mode": "standard"},
        connect_timeout=10,
        read_timeout=120,
        max_pool_connections=32,
    )


class S3Reader(io.RawIOBase):
    """A finished blob as a seekable, read-only binary file over ranged GETs.

    Each GET covers a window of the blob and is read as the caller asks, so only the bytes
    asked for are in memory. After opening or seeking the window is small (a header check
    reads 80 bytes); once reading goes on past it, the next GET runs to the end of the blob
    and is read as a stream (one request per download; closing drops it). A broken or
    timed-out response is opened again where it stopped.
    """

    RETRIES = 2

    def __init__(self, store: "S3BlobStore", name: str, size: int):
        super().__init__()
        self._store = store
        self.name_in_store = name
        self._size = size
        self._pos = 0
        self._body = None  # the open response and the blob positions it covers
        self._body_at = 0
        self._body_end = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        self._checkClosed()
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        self._checkClosed()
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: self._size}[whence]
        if base + offset < 0:
            raise ValueError("negative seek position")
        self._pos = base + offset
        return self._pos

    def read(self, size: int | None = -1) -> bytes:
        self._checkClosed()
        left = max(0, self._size - self._pos)
        wanted = left if size is None or size < 0 else min(size, left)
        pieces = []
        while wanted > 0:
            if self._body is None or self._body_at != self._pos or self._body_at >= self._body_end:
                self._open_window(wanted)
            data = self._read_body(min(wanted, self._body_end - self._body_at))
            pieces.append(data)
            self._pos += len(data)
            self._body_at += len(data)
            wanted -= len(data)
        return b"".join(pieces)

    def readall(self) -> bytes:
        return self.read(-1)

    def readinto(self, buffer) -> int:
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def _open_window(self, wanted: int) -> None:
        sequential = self._body is not None and self._body_at == self._pos
        window = self._size if sequential else READ_FIRST
        end = min(self._size, self._pos + max(wanted, window))
        self._open(end)

    def _open(self, end: int) -> None:
        self._drop()
        self._body = self._store.get_range(self.name_in_store, self._pos, end - self._pos)
        self._body_at, self._body_end = self._pos, end

    def _read_body(self, n: int) -> bytes:
        for attempt in range(self.RETRIES + 1):
            try:
                data = self._body.read(n)
            except BotoCoreError as e:
                if attempt == self.RETRIES:
                    raise Unavailable(f"S3 read of {self.name_in_store}: {e}") from e
                self._open(self._body_end)  # again from where it stopped
                continue
            if data:
                return data
            if attempt == self.RETRIES:
                break
            self._open(self._body_end)
        raise StoreError(f"{self.name_in_store} ended at {self._pos} of {self._size} bytes")

    def _drop(self) -> None:
        if self._body is not None:
            self._body.close()
            self._body = None

    def close(self) -> None:
        if not self.closed:
            self._drop()
        super().close()


class S3BlobStore:
    """Blobs as objects in one bucket; see the module's docstring."""

    def __init__(self, storage: S3Storage):
        self.storage = storage
        self.bucket = storage.bucket_name

    @property
    def client(self):
        return self.storage.connection.meta.client  # one per thread (django-storages)

    def _call(self, method: str, **params):
        try:
            return getattr(self.client, method)(Bucket=self.bucket, **params)
        except ClientError as e:
            code = str(e.response.get("Error", {}).get("Code", ""))
            if code in _GONE:
                raise Missing(f"{params.get('Key', '')}: {code}") from e
            raise Unavailable(f"S3 {method} of {params.get('Key', '')}: {code or e}") from e
        except BotoCoreError as e:
            raise Unavailable(f"S3 {method}: {e}") from e

    def _pages(self, method: str, key: str, **params):
        token = {}
        while True:
            page = self._call(method, **params, **token)
            yield from page.get(key, [])
            if not page.get("IsTruncated"):
                return
            if method == "list_objects_v2":
                token = {"ContinuationToken": page["NextContinuationToken"]}
            else:
                token = {
                    "KeyMarker": page["NextKeyMarker"],
                    "UploadIdMarker": page["NextUploadIdMarker"],
                }

    # -- uploading -------------------------------------------------------------------

    def create(self, name: str, size: int | None = None) -> dict:
        check_name(name)
        started = self._call(
            "create_multipart_upload", Key=name, ContentType="application/octet-stream"
        )
        return {"multipart": {"id": started["UploadId"], "size": size, "etags": [], "in_parts": 0}}

    def locked(self, name: str):
        """No lock of its own: the caller's database lease keeps writers apart."""
        return nullcontext()

    def truncate(self, name: str, size: int) -> None:
        """Nothing to cut: bytes past the recorded offset are never referenced (parts are
        numbered, tails named, from the recorded state)."""

    @staticmethod
    def _state(upload: dict | None) -> dict:
        if not upload or not isinstance(upload.get("multipart"), dict):
            raise StoreError("this S3 upload has no multipart state")
        return upload["multipart"]

    @staticmethod
    def _part_size(state: dict) -> int:
        size = state.get("size")
        if not size:
            return PART_SIZE
        return max(PART_SIZE, math.ceil(size / PART_BUDGET / MiB) * MiB)

    def _may_cut(self, state: dict, rest: int, offset: int) -> bool:
        """May a rest of ``rest`` bytes ending at ``offset`` become a part of its own?"""
        if rest < MIN_PART:
            return False
        size = state.get("size")
        if not size:
            return True
        after = math.ceil((size - offset) / self._part_size(state))
        return len(state["etags"]) + 1 + after <= MAX_PARTS

    def _upload_part(self, name: str, state: dict, data) -> None:
        number = len(state["etags"]) + 1
        if number > MAX_PARTS:
            raise StoreError(f"{name} would need more than {MAX_PARTS} parts")
        answer = self._call(
            "upload_part", Key=name, UploadId=state["id"], PartNumber=number, Body=data
        )
        state["etags"].append(answer["ETag"])
        state["in_parts"] += len(data)

    def _read_tail(self, name: str, tail) -> bytes:
        start, end = tail
        data = self._call("get_object", Key=tail_key(name, start, end))["Body"].read()
        if len(data) != end - start:
            raise Missing(f"the tail of {name} holds {len(data)} bytes, not {end - start}")
        return data

    def _delete_keys(self, keys) -> None:
        keys = list(keys)
        for i in range(0, len(keys), 1000):
            batch = [{"Key": key} for key in keys[i : i + 1000]]
            self._call("delete_objects", Delete={"Objects": batch, "Quiet": True})

    def append(
        self, name: str, offset: int, read: Reader, limit: int, upload: dict | None = None
    ) -> int:
        check_name(name)
        state = self._state(upload)
        tail = state.get("tail")
        stored = state["in_parts"] + (tail[1] - tail[0] if tail else 0)
        if stored != offset:
            raise OffsetMismatch(f"{name} holds {stored} bytes, not {offset}")
        stale = state.pop("stale", [])
        if stale:  # the recorded state no longer needs them
            self._delete_keys(tail_key(name, *t) for t in stale)
        buffer = bytearray(self._read_tail(name, tail) if tail else b"")
        part_size = self._part_size(state)
        received = 0
        while received < limit:
            # Never past the part's end, so a full buffer goes out as it is (no copy).
            data = read(min(PIECE, limit - received, part_size - len(buffer)))
            if not data:
                break
            buffer += data
            received += len(data)
            if len(buffer) >= part_size:
                self._upload_part(name, state, buffer)
                buffer = bytearray()
        if not received:
            return offset
        end = offset + received
        last = state.get("size") is not None and end >= state["size"]
        new_tail = None
        if buffer and (last or self._may_cut(state, len(buffer), end)):
            self._upload_part(name, state, buffer)
        elif buffer:
            new_tail = [end - len(buffer), end]
            self._call("put_object", Key=tail_key(name, *new_tail), Body=bytes(buffer))
        state["tail"] = new_tail
        if tail and tail != new_tail:
            state["stale"] = [tail]
        return end

    def finish(self, name: str, upload: dict | None = None) -> None:
        state = self._state(upload)
        if state.get("tail"):
            self._upload_part(name, state, self._read_tail(name, state["tail"]))
            state["tail"] = None
        parts = [{"ETag": etag, "PartNumber": n} for n, etag in enumerate(state["etags"], 1)]
        if parts:
            self._call(
                "complete_multipart_upload",
                Key=name,
                UploadId=state["id"],
                MultipartUpload={"Parts": parts},
            )
        else:  # an empty blob: S3 completes no upload without parts
            self._call("put_object", Key=name, Body=b"")
            self.abort_upload(name, state["id"])
        self._delete_tails(name)
        del upload["multipart"]

    # -- reading ---------------------------------------------------------------------

    def size(self, name: str) -> int:
        """The size of a finished blob; an unfinished upload has no object yet (Missing)."""
        return self._call("head_object", Key=check_name(name))["ContentLength"]

    def open(self, name: str) -> S3Reader:
        return S3Reader(self, name, self.size(name))

    def get_range(self, name: str, start: int, length: int):
        """The response body (a stream) of ``length`` bytes from ``start``."""
        answer = self._call("get_object", Key=name, Range=f"bytes={start}-{start + length - 1}")
        if answer["ContentLength"] != length:
            answer["Body"].close()
            raise StoreError(
                f"{name}: asked for {length} bytes at {start}, got {answer['ContentLength']}"
            )
        return answer["Body"]

    def presigned_url(self, name: str, filename: str, seconds: int) -> str:
        """A GET URL valid for ``seconds`` that downloads the blob as ``filename``.

        Signed for S3_PUBLIC_ENDPOINT_URL when the browser reaches the store elsewhere
        than the web nodes do; signing needs no connection, so that client never calls.
        """
        params = {
            "ResponseContentDisposition": content_disposition(filename),
            "ResponseContentType": "application/octet-stream",
        }
        public = getattr(settings, "S3_PUBLIC_ENDPOINT_URL", None)
        if public and public != getattr(settings, "S3_ENDPOINT_URL", None):
            return self._public_client(public).generate_presigned_url(
                "get_object",
                Params={"Bucket": self.bucket, "Key": check_name(name), **params},
                ExpiresIn=seconds,
            )
        return self.storage.url(check_name(name), parameters=params, expire=seconds)

    def _public_client(self, endpoint: str):
        import boto3

        return boto3.session.Session().client(
            "s3",
            endpoint_url=endpoint,
            region_name=self.storage.region_name,
            aws_access_key_id=self.storage.access_key,
            aws_secret_access_key=self.storage.secret_key,
            config=Config(
                signature_version="s3v4",
                s3={"addressing_style": self.storage.addressing_style},
            ),
        )

    # -- removing --------------------------------------------------------------------

    def _delete_tails(self, name: str) -> None:
        prefix = f"{name}.tail/"
        self._delete_keys(
            o["Key"] for o in self._pages("list_objects_v2", "Contents", Prefix=prefix)
        )

    def delete(self, name: str) -> None:
        check_name(name)
        self._call("delete_object", Key=name)
        self._delete_tails(name)
        for upload in self._pages("list_multipart_uploads", "Uploads", Prefix=name):
            if upload["Key"] == name:
                self.abort_upload(name, upload["UploadId"])

    def names_older_than(self, seconds: float):
        """Blobs, and blobs whose upload left tails, last written more than ``seconds`` ago."""
        cutoff = now() - timedelta(seconds=seconds)
        seen = set()
        for entry in self._pages("list_objects_v2", "Contents"):
            key = entry["Key"]
            tail = _TAIL.match(key)
            name = tail.group("name") if tail else key
            if name not in seen and _NAME.match(name) and entry["LastModified"] < cutoff:
                seen.add(name)
                yield name

    def abandoned_uploads(self, seconds: float):
        cutoff = now() - timedelta(seconds=seconds)
        for upload in self._pages("list_multipart_uploads", "Uploads"):
            if _NAME.match(upload["Key"]) and upload["Initiated"] < cutoff:
                yield upload["Key"], upload["UploadId"]

    def abort_upload(self, name: str, upload_id: str) -> None:
        with suppress(Missing):  # finished or aborted already
            self._call("abort_multipart_upload", Key=check_name(name), UploadId=upload_id)


_stores: OrderedDict = OrderedDict()
_stores_lock = threading.Lock()


def s3_store() -> S3BlobStore:
    """The store for ``STORAGES["blobs"]``, kept while the settings stay the same (its
    boto3 clients, one per thread, are expensive to make)."""
    try:
        options = dict(settings.STORAGES["blobs"]["OPTIONS"])
    except KeyError:
        raise ImproperlyConfigured(
            'STORAGE_BACKEND=s3 needs STORAGES["blobs"]; set S3_BUCKET and the other S3_ variables.'
        ) from None
    key = repr(sorted(options.items()))
    with _stores_lock:
        store = _stores.get(key)
        if store is None:
            storage = S3Storage(**options, client_config=client_config(options))
            store = _stores[key] = S3BlobStore(storage)
            while len(_stores) > 4:
                _stores.popitem(last=False)
        return store
