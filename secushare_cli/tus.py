"""A small tus 1.0 client (core and creation) that uploads a stream it cannot rewind.

The ciphertext is made on the fly and never stored, so the client keeps exactly one
piece (``PIECE_SIZE`` bytes) in memory until the server has acknowledged all of it.
After a broken connection it asks the server for its offset (HEAD) and sends the
rest of the same piece again: the same ciphertext, never a chunk encrypted twice.
"""

from __future__ import annotations

import base64
import contextlib
import time
from collections.abc import Callable, Iterable, Iterator
from urllib.parse import urlsplit

import requests

from secushare_cli.client import (
    NETWORK_ERRORS,
    RETRY_STATUSES,
    Api,
    backoff,
    describe,
    exit_code_for,
)
from secushare_cli.errors import FAILED, CliError

TUS_VERSION = "1.0.0"
PIECE_SIZE = 8 * 1024 * 1024
MIN_PATCH = 64 * 1024
MAX_ATTEMPTS = 8  # for one piece in a row without progress


class LostUpload(CliError):
    """The server no longer has bytes the client cannot send again."""


def metadata(values: dict[str, str]) -> str:
    return ",".join(
        f"{key} {base64.b64encode(value.encode('utf-8', 'replace')).decode('ascii')}"
        for key, value in values.items()
    )


def pieces(blocks: Iterable[bytes], size: int | None = None) -> Iterator[bytes]:
    """Regroup a stream of blocks into pieces of at least ``size`` bytes (the last may be
    shorter), cutting only between blocks so each piece is copied once."""
    size = size or PIECE_SIZE
    buffer: list[bytes] = []
    held = 0
    for block in blocks:
        buffer.append(block)
        held += len(block)
        if held >= size:
            piece = b"".join(buffer)
            buffer.clear()
            held = 0
            yield piece
    if buffer:
        yield b"".join(buffer)


class Upload:
    def __init__(self, api: Api, location: str, length: int):
        self.api = api
        self.location = location
        self.length = length
        self.patch_limit: int | None = None  # the whole piece, until the server says 413

    @property
    def file_id(self) -> str:
        return urlsplit(self.location).path.rstrip("/").rsplit("/", 1)[-1]

    @classmethod
    def create(cls, api: Api, endpoint: str, length: int, meta: dict[str, str]) -> Upload:
        response = api.request(
            "POST",
            endpoint,
            retries=2,
            headers={
                "Tus-Resumable": TUS_VERSION,
                "Upload-Length": str(length),
                "Upload-Metadata": metadata(meta),
            },
        )
        if response.status_code != 201 or not response.headers.get("Location"):
            raise CliError(describe(response), exit_code_for(response.status_code))
        return cls(api, api.url(response.headers["Location"]), length)

    def server_offset(self) -> int:
        response = self.api.request(
            "HEAD", self.location, retries=MAX_ATTEMPTS, headers={"Tus-Resumable": TUS_VERSION}
        )
        try:
            if response.status_code != 200:
                raise ValueError
            return int(response.headers["Upload-Offset"])
        except (KeyError, ValueError):
            raise LostUpload(
                f"The server no longer knows this upload ({describe(response)}).", FAILED
            ) from None

    def send(self, blobs: Iterable[bytes], progress: Callable[[int], None] | None = None) -> None:
        """Upload the whole blob, piece by piece, resuming after connection errors."""
        offset = 0
        for piece in pieces(blobs):
            offset = self._send_piece(piece, offset, progress)
        if offset != self.length:
            raise CliError(f"The file is {offset} bytes long, not {self.length}.", FAILED)

    def _send_piece(self, piece: bytes, start: int, progress) -> int:
        end = start + len(piece)
        sent = start
        failures = 0
        while sent < end:
            if sent == start and (self.patch_limit is None or len(piece) <= self.patch_limit):
                body = piece  # the usual case: no copy
            else:
                limit = self.patch_limit or len(piece)
                body = piece[sent - start : sent - start + limit]
            try:
                response = self.api.session.patch(
                    self.location,
                    data=body,
                    headers={
                        "Tus-Resumable": TUS_VERSION,
                        "Upload-Offset": str(sent),
                        "Content-Type": "application/offset+octet-stream",
                    },
                    timeout=(15, 300),
                )
            except (*NETWORK_ERRORS, requests.exceptions.ChunkedEncodingError):
                response = None
            if response is not None and response.status_code == 204:
                new = int(response.headers.get("Upload-Offset", sent + len(body)))
                if not sent < new <= end:
                    raise CliError("The server acknowledged an impossible offset.", FAILED)
                sent, failures = new, 0
                if progress:
                    progress(sent)
                continue
            if response is not None and response.status_code == 413:
                if len(body) <= MIN_PATCH:
                    raise CliError(describe(response), FAILED)
                self.patch_limit = max(MIN_PATCH, len(body) // 2)
                continue
            resumable = response is None or response.status_code in RETRY_STATUSES | {409, 423}
            if not resumable:
                raise CliError(describe(response), exit_code_for(response.status_code))
            failures += 1
            if failures >= MAX_ATTEMPTS:
                raise CliError(
                    f"The upload keeps failing at byte {sent}; giving up after "
                    f"{MAX_ATTEMPTS} attempts.",
                    FAILED,
                )
            if response is None or response.status_code != 409:
                time.sleep(backoff(failures - 1))
            server = self.server_offset()
            if not start <= server <= end:
                raise LostUpload(
                    f"The server has {server} bytes of this file; this client can only resume "
                    f"from byte {start} on.",
                    FAILED,
                )
            sent = server
            if progress:
                progress(sent)
        return end

    def terminate(self) -> None:
        """Remove the upload (tus termination); best effort."""
        with contextlib.suppress(*NETWORK_ERRORS):
            self.api.session.delete(
                self.location, headers={"Tus-Resumable": TUS_VERSION}, timeout=(5, 30)
            )
