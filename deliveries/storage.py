"""Where SXF1 blobs live. Only ciphertext ever reaches a blob store.

Two stores share one interface (:class:`BlobStore`), chosen by ``STORAGE_BACKEND``:
:class:`LocalBlobStore` keeps one file per blob under ``MEDIA_ROOT``;
``deliveries.storage_s3.S3BlobStore`` keeps one object per blob in an S3 bucket and turns a
tus upload into a multipart upload. Callers never touch a path: they create, append, finish,
open, delete, and ask for a presigned URL (None where the store has none).

A blob being uploaded has an *upload state*, a small JSON-able dict that ``create`` returns
and ``append``/``finish`` update in place; the caller keeps it in the database row
(``DeliveryFile.upload_state``) in the same UPDATE that records the new offset, so the row
always describes exactly what is stored, and any web process can take the next chunk.
One writer at a time is ensured by the caller (``deliveries.upload_lease``, a lease in that
row); the local store adds the operating system's lock (``locked``).
"""

import ctypes
import fcntl
import os
import re
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, suppress
from pathlib import Path
from typing import BinaryIO, Protocol

from django.conf import settings

_NAME = re.compile(r"^[0-9a-f-]{36}/[0-9a-f-]{36}\.sxf$")
COPY_BUFFER = 1024 * 1024


class StoreError(Exception):
    pass


class OffsetMismatch(StoreError):
    """The stored bytes do not end where the caller thought (a concurrent writer)."""


class Missing(StoreError):
    """The blob does not exist (never created, or deleted)."""


class Busy(StoreError):
    """Another request is writing this blob right now."""


class Unavailable(StoreError):
    """The store did not answer or refused the request; trying again later may work."""


def blob_name(delivery_id, file_id) -> str:
    return f"{delivery_id}/{file_id}.sxf"


def check_name(name: str) -> str:
    if not _NAME.match(name):
        raise StoreError(f"not a blob name: {name!r}")
    return name


Reader = Callable[[int], bytes]


class BlobStore(Protocol):
    """What every blob store does. Names come from :func:`blob_name` only."""

    def create(self, name: str, size: int | None = None) -> dict:
        """Start an empty blob that will hold ``size`` bytes; return its upload state."""

    def locked(self, name: str) -> AbstractContextManager:
        """A lock held while one request writes the blob, where the store has its own
        (Busy at once if taken); the database lease is what every store relies on."""

    def truncate(self, name: str, size: int) -> None:
        """Forget bytes stored past ``size`` by a writer that died before recording them."""

    def append(
        self, name: str, offset: int, read: Reader, limit: int, upload: dict | None = None
    ) -> int:
        """Store at most ``limit`` bytes from ``read(n)`` at ``offset``; return the new size.

        Whatever arrived before ``read`` returned ``b""`` is kept. ``upload`` (the state from
        ``create``) is updated in place; record it with the returned offset.
        """

    def finish(self, name: str, upload: dict | None = None) -> None:
        """All bytes are in: make the blob readable (and drop what only the upload needed)."""

    def size(self, name: str) -> int:
        """Bytes in a finished blob (the local store also counts an unfinished one's)."""

    def open(self, name: str) -> BinaryIO:
        """The finished blob as a seekable, read-only binary file; the caller closes it."""

    def delete(self, name: str) -> None:
        """Remove the blob and anything its upload left; no error if it is gone."""

    def names_older_than(self, seconds: float) -> Iterator[str]:
        """Names of blobs (or upload leftovers) last written more than ``seconds`` ago."""

    def abandoned_uploads(self, seconds: float) -> Iterator[tuple[str, str]]:
        """(name, upload id) of backend uploads started more than ``seconds`` ago."""

    def abort_upload(self, name: str, upload_id: str) -> None:
        """Abort one backend upload found by :meth:`abandoned_uploads`."""

    def presigned_url(self, name: str, filename: str, seconds: int) -> str | None:
        """A URL that hands out the blob as an attachment for ``seconds``, or None."""


class LocalBlobStore:
    """One file per blob under ``root``; an upload appends to it at the recorded offset."""

    def __init__(self, root: Path):
        self.root = Path(root)

    def path(self, name: str) -> Path:
        return self.root / check_name(name)

    def create(self, name: str, size: int | None = None) -> dict:
        path = self.path(name)
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        os.close(fd)
        return {}

    def size(self, name: str) -> int:
        try:
            return self.path(name).stat().st_size
        except FileNotFoundError:
            raise Missing(f"blob {name} is missing") from None

    @contextmanager
    def locked(self, name: str):
        """Hold the blob's writer lock for the block; raise Busy at once if it is taken.

        The lock is the operating system's (flock), so it is released even when the
        process holding it dies.
        """
        try:
            fd = os.open(self.path(name), os.O_WRONLY)
        except FileNotFoundError:
            raise Missing(f"blob {name} is missing") from None
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise Busy(f"blob {name} is being written by another request") from None
            yield
        finally:
            os.close(fd)

    def truncate(self, name: str, size: int) -> None:
        """Cut the blob back to ``size`` bytes (bytes a dead writer left unrecorded)."""
        try:
            if self.path(name).stat().st_size > size:
                os.truncate(self.path(name), size)
        except FileNotFoundError:
            raise Missing(f"blob {name} is missing") from None

    def append(
        self, name: str, offset: int, read: Reader, limit: int, upload: dict | None = None
    ) -> int:
        """Write at most ``limit`` bytes from ``read(n)`` at ``offset``; return the new size.

        Whatever arrived before the stream broke stays written (tus resumes from it). The
        file is the whole upload state here, so ``upload`` is left as it is.
        """
        path = self.path(name)
        try:
            fd = os.open(path, os.O_WRONLY)
        except FileNotFoundError:
            raise Missing(f"blob {name} is missing") from None
        try:
            if os.fstat(fd).st_size != offset:
                raise OffsetMismatch(f"blob {name} has {os.fstat(fd).st_size} bytes, not {offset}")
            os.lseek(fd, offset, os.SEEK_SET)
            written = 0
            try:
                while written < limit:
                    data = read(min(COPY_BUFFER, limit - written))
                    if not data:
                        break
                    view = memoryview(data)
                    while view:
                        n = os.write(fd, view)
                        view = view[n:]
                    _start_writeback(fd, offset + written, len(data))
                    written += len(data)
            finally:
                os.fsync(fd)
            return offset + written
        finally:
            os.close(fd)

    def finish(self, name: str, upload: dict | None = None) -> None:
        """Nothing to do: every append was written through (fsync) already."""

    def open(self, name: str) -> BinaryIO:
        try:
            return open(self.path(name), "rb")  # the caller closes it
        except FileNotFoundError:
            raise Missing(f"blob {name} is missing") from None

    def delete(self, name: str) -> None:
        path = self.path(name)
        path.unlink(missing_ok=True)
        with suppress(OSError):
            path.parent.rmdir()  # only if no other blob of the delivery is left

    def names_older_than(self, seconds: float):
        """Names of the blobs last written more than ``seconds`` ago (orphan sweeps)."""
        cutoff = time.time() - seconds
        if not self.root.is_dir():
            return
        for folder in self.root.iterdir():
            if not folder.is_dir():
                continue
            for path in folder.iterdir():
                name = f"{folder.name}/{path.name}"
                try:
                    old = path.stat().st_mtime < cutoff
                except FileNotFoundError:
                    continue
                if old and _NAME.match(name):
                    yield name

    def abandoned_uploads(self, seconds: float) -> Iterator[tuple[str, str]]:
        """None: an unfinished local upload is just a short file (see names_older_than)."""
        return iter(())

    def abort_upload(self, name: str, upload_id: str) -> None:
        raise StoreError("the local store has no uploads of its own to abort")

    def presigned_url(self, name: str, filename: str, seconds: int) -> None:
        """None: local blobs are served by the app (or by nginx through X-Accel-Redirect)."""
        return None


def _writeback_starter() -> Callable[[int, int, int], object]:
    """Linux's sync_file_range(SYNC_FILE_RANGE_WRITE), else a function that does nothing.

    An append ends with fsync, before the new offset is recorded. Asking the kernel to start
    writing each piece as soon as it is written lets the disk work while the rest of the
    request arrives, so that fsync finds little left to do (PostgreSQL's
    ``backend_flush_after`` does the same). It only starts the writes; it promises nothing.
    """
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        function = libc.sync_file_range
    except (OSError, AttributeError):
        return lambda fd, offset, length: None
    function.argtypes = [ctypes.c_int, ctypes.c_int64, ctypes.c_int64, ctypes.c_uint]
    write = 2  # SYNC_FILE_RANGE_WRITE

    def start(fd: int, offset: int, length: int) -> object:
        return function(fd, offset, length, write)

    return start


_start_writeback = _writeback_starter()


def blob_store() -> BlobStore:
    """The store ``STORAGE_BACKEND`` names, configured from the current settings."""
    if settings.STORAGE_BACKEND == "s3":
        from deliveries.storage_s3 import s3_store

        return s3_store()
    return LocalBlobStore(settings.MEDIA_ROOT)
