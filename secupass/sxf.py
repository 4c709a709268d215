"""SXF1, the container every SecuShare file is stored in (DESIGN.md section 4).

A blob is an 80-byte header followed by the file in fixed-size chunks, each sealed with
AES-256-GCM under a key derived from the delivery key and the header. The same bytes come from
the browser (``static/js/sxf.js``), the CLI and the server, so this module imports no Django.

Errors in the data raise :class:`SXFError` subclasses whose message a person can act on; errors
in how the functions are called (a wrong key size, a chunk index out of range) raise
``ValueError`` or ``TypeError``.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import io
import mmap
import os
import re
import stat
import string
import struct
import unicodedata
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Protocol

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

MAGIC = b"SXF1"
VERSION = 1
SUITE = 1
HEADER_LEN = 80
TAG_LEN = 16
DEFAULT_CHUNK_LOG2 = 16
MIN_CHUNK_LOG2 = 16
MAX_CHUNK_LOG2 = 22
KEY_LEN = 32
SALT_LEN = 32
MAX_CHUNKS = 2**32
MAX_LENGTH = 2**64 - 1
P256_PUBLIC_LEN = 65
READ_SIZE = 1 << 20  # decrypt_stream asks for about this many bytes per read()
MAP_WINDOW = 8 << 20  # decrypt_stream maps a blob's file this many bytes at a time

_HEADER = struct.Struct(">4sBBBB16s16s32sQ")
_NONCE = struct.Struct(">7xIB")  # 7 zero bytes || uint32 chunk index || last-chunk flag
_B64U = re.compile(r"[A-Za-z0-9_-]*")
_ASCII_LOWER = str.maketrans(string.ascii_uppercase, string.ascii_lowercase)
_PAYLOAD_INFO = b"sxf/v1/payload"
_KEK_AAD = b"sxf/v1/kek"
_P256_INFO = b"sxf/v1/wrap/p256"

IdLike = uuid.UUID | str


class SXFError(Exception):
    """A blob or key entry that cannot be used; the message explains why to a person."""


class FormatError(SXFError):
    """The bytes are not what was expected: header, length, ids or encoding."""


class AuthenticationError(SXFError):
    """A tag did not verify (changed data, wrong key) or the blob ends early."""


class Readable(Protocol):
    def read(self, n: int, /) -> bytes: ...


class Seekable(Readable, Protocol):
    def seek(self, pos: int, /) -> Any: ...


def _as_uuid(value: IdLike) -> uuid.UUID:
    return value if isinstance(value, uuid.UUID) else uuid.UUID(value)


def _check_key(key: bytes, what: str) -> bytes:
    if not isinstance(key, bytes | bytearray) or len(key) != KEY_LEN:
        raise ValueError(f"the {what} must be {KEY_LEN} bytes")
    return bytes(key)


def _hkdf(ikm: bytes, *, salt: bytes, info: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=salt, info=info).derive(ikm)


def _ceil_div(a: int, b: int) -> int:
    return -(-a // b)


def _read_exact(readable: Readable, n: int) -> bytes:
    """Read n bytes, fewer only at the end of the stream (read() may return short)."""
    data = readable.read(n)
    if len(data) >= n or not data:
        return data
    parts, got = [data], len(data)
    while got < n:
        more = readable.read(n - got)
        if not more:
            break
        parts.append(more)
        got += len(more)
    return b"".join(parts)


# Streams whose read() is the stock one; for them readinto() fills a reused buffer with the
# same bytes, sparing a fresh megabyte (and its page faults) per read. A subclass that
# overrides read() or readinto() is read through read(), as the caller expects.
_STOCK_READERS = (io.BufferedReader, io.FileIO, io.BytesIO)


def _stock_readinto(readable: Readable) -> Any:
    cls = type(readable)
    for base in _STOCK_READERS:
        if isinstance(readable, base):
            if cls.read is base.read and cls.readinto is base.readinto:
                return readable.readinto
            return None
    return None


def _fill(readinto: Any, view: memoryview, n: int) -> int:
    """readinto() until view[:n] is full or the stream ends; return how many bytes came."""
    got = 0
    while got < n:
        more = readinto(view[got:n])
        if not more:
            break
        got += more
    return got


def _regular_fd(readable: Readable) -> int | None:
    """The descriptor of a stock file object on a regular file, else None."""
    if _stock_readinto(readable) is None or isinstance(readable, io.BytesIO):
        return None
    try:
        fd = readable.fileno()
        return fd if stat.S_ISREG(os.fstat(fd).st_mode) else None
    except (OSError, ValueError):
        return None


class _Reads:
    """Reads from a readable's position, each a memoryview valid until the next take() or
    close().

    Decryption reads every stored byte once, so copying them out of the page cache into a
    buffer first costs about as much as AES-GCM itself. A regular file is therefore mapped
    (mmap) a window of MAP_WINDOW bytes at a time and read in place: blobs do not change once
    stored, and a window never reaches past the file's size when it was mapped. Any other
    stream is read into a reused buffer (stock readers) or by read(). The readable's position
    moves on as if it had been read.
    """

    def __init__(self, readable: Readable, largest: int) -> None:
        self._readable = readable
        self._view: memoryview | None = None
        self._mapping: mmap.mmap | None = None
        self._window = memoryview(b"")
        self._window_start = 0
        self._window_to_end = False  # the window reaches the end of the file
        self._fd = _regular_fd(readable)
        self._readinto = None if self._fd is not None else _stock_readinto(readable)
        if self._readinto is not None:
            self._buffer = memoryview(bytearray(largest))

    def take(self, n: int) -> memoryview:
        """Up to ``n`` bytes (fewer only at the end of the stream)."""
        self._release_view()
        if self._fd is not None:
            view = self._mapped(n)
        elif self._readinto is not None:
            view = self._buffer[: _fill(self._readinto, self._buffer, n)]
        else:
            view = memoryview(_read_exact(self._readable, n))
        self._view = view
        return view

    def _mapped(self, n: int) -> memoryview:
        at = self._readable.tell()
        start, end = self._window_start, self._window_start + len(self._window)
        if not (start <= at and (at + n <= end or self._window_to_end)):
            self._unmap()
            size = os.fstat(self._fd).st_size
            if at >= size:
                return memoryview(b"")
            start = at - at % mmap.ALLOCATIONGRANULARITY
            end = min(max(at + n, start + MAP_WINDOW), size)
            self._mapping = mmap.mmap(self._fd, end - start, offset=start, access=mmap.ACCESS_READ)
            self._window = memoryview(self._mapping)
            self._window_start = start
            self._window_to_end = end == size
        stop = min(at + n, end)
        view = self._window[at - start : max(at, stop) - start]
        self._readable.seek(at + len(view))
        return view

    def _release_view(self) -> None:
        if self._view is not None:
            self._view.release()
            self._view = None

    def _unmap(self) -> None:
        self._window.release()
        self._window = memoryview(b"")
        if self._mapping is not None:
            with contextlib.suppress(BufferError):  # a view still out: unmapped when freed
                self._mapping.close()
            self._mapping = None

    def close(self) -> None:
        """Give everything back; no view taken before may be used after this."""
        self._release_view()
        self._unmap()


def b64u_encode(data: bytes) -> str:
    """Unpadded base64url."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64u_decode(text: str) -> bytes:
    """Decode unpadded base64url, rejecting padding, other alphabets and non-canonical forms."""
    if not isinstance(text, str) or not _B64U.fullmatch(text) or len(text) % 4 == 1:
        raise FormatError("a value is not unpadded base64url")
    data = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    if b64u_encode(data) != text:
        raise FormatError("a value is not canonical base64url")
    return data


def blob_length(n: int, chunk_log2: int = DEFAULT_CHUNK_LOG2) -> int:
    """Size in bytes of the blob holding an n-byte file."""
    if n < 0:
        raise ValueError("a length cannot be negative")
    return HEADER_LEN + n + TAG_LEN * max(1, _ceil_div(n, 1 << chunk_log2))


@dataclass(frozen=True)
class Header:
    """The 80-byte blob header. Construction checks every field a reader checks."""

    delivery_id: uuid.UUID
    file_id: uuid.UUID
    salt: bytes
    length: int
    chunk_log2: int = DEFAULT_CHUNK_LOG2

    def __post_init__(self) -> None:
        object.__setattr__(self, "delivery_id", _as_uuid(self.delivery_id))
        object.__setattr__(self, "file_id", _as_uuid(self.file_id))
        if not isinstance(self.salt, bytes) or len(self.salt) != SALT_LEN:
            raise FormatError(f"the header salt must be {SALT_LEN} bytes")
        if not MIN_CHUNK_LOG2 <= self.chunk_log2 <= MAX_CHUNK_LOG2:
            raise FormatError(
                f"the chunk size 2^{self.chunk_log2} is not supported "
                f"(2^{MIN_CHUNK_LOG2} to 2^{MAX_CHUNK_LOG2})"
            )
        if not 0 <= self.length <= MAX_LENGTH:
            raise FormatError("the plaintext length does not fit in 64 bits")
        if _ceil_div(self.length, self.chunk_size) > MAX_CHUNKS:
            raise FormatError("the file has more than 2^32 chunks")

    @property
    def chunk_size(self) -> int:
        return 1 << self.chunk_log2

    @property
    def chunk_count(self) -> int:
        return max(1, _ceil_div(self.length, self.chunk_size))

    @property
    def blob_length(self) -> int:
        return blob_length(self.length, self.chunk_log2)

    def plaintext_len(self, i: int) -> int:
        """Plaintext size of chunk i: the chunk size, except for the last chunk."""
        if not 0 <= i < self.chunk_count:
            raise ValueError(f"chunk {i} does not exist (the file has {self.chunk_count})")
        return min(self.chunk_size, self.length - i * self.chunk_size)

    def pack(self) -> bytes:
        ids = self.delivery_id.bytes, self.file_id.bytes
        return _HEADER.pack(MAGIC, VERSION, SUITE, self.chunk_log2, 0, *ids, self.salt, self.length)

    @classmethod
    def parse(
        cls,
        data: bytes,
        *,
        delivery_id: IdLike | None = None,
        file_id: IdLike | None = None,
        blob_length: int | None = None,
    ) -> Header:
        """Parse the first 80 bytes of ``data`` with every check a reader makes.

        ``delivery_id`` and ``file_id`` are the ids of the record the blob is expected to
        belong to; ``blob_length`` is the blob's actual size. Each is checked when given.
        """
        if len(data) < HEADER_LEN:
            raise FormatError("this is not an SXF1 file: it is shorter than the header")
        magic, version, suite, log2, reserved, did, fid, salt, n = _HEADER.unpack_from(data)
        if magic != MAGIC:
            raise FormatError("this is not an SXF1 file (wrong magic bytes)")
        if version != VERSION:
            raise FormatError(f"SXF1 version {version} is not supported")
        if suite != SUITE:
            raise FormatError(f"cipher suite {suite} is not supported")
        if reserved != 0:
            raise FormatError("the header's reserved byte is not zero")
        header = cls(uuid.UUID(bytes=did), uuid.UUID(bytes=fid), salt, n, log2)
        if delivery_id is not None and header.delivery_id != _as_uuid(delivery_id):
            raise FormatError("the file belongs to another delivery")
        if file_id is not None and header.file_id != _as_uuid(file_id):
            raise FormatError("the file was stored under another file's record")
        if blob_length is not None and blob_length != header.blob_length:
            raise FormatError(
                f"the stored file is {blob_length} bytes, but its header says "
                f"{header.blob_length}: it was truncated or extended"
            )
        return header


def chunk_offset(header: Header, i: int) -> int:
    """Byte offset of stored chunk i in the blob."""
    header.plaintext_len(i)  # range check
    return HEADER_LEN + i * (header.chunk_size + TAG_LEN)


def stored_chunk_len(header: Header, i: int) -> int:
    """Size of stored chunk i: its plaintext plus the tag."""
    return header.plaintext_len(i) + TAG_LEN


def chunks_for_range(header: Header, start: int, end_inclusive: int) -> range:
    """Indices of the chunks that hold plaintext bytes [start, end_inclusive]."""
    if not 0 <= start <= end_inclusive < header.length:
        raise ValueError(f"bytes {start}-{end_inclusive} are outside a {header.length}-byte file")
    return range(start // header.chunk_size, end_inclusive // header.chunk_size + 1)


def payload_key(delivery_key: bytes, header: Header) -> bytes:
    """HKDF-SHA256(delivery_key, salt=salt, info="sxf/v1/payload" || header)."""
    key = _check_key(delivery_key, "delivery key")
    return _hkdf(key, salt=header.salt, info=_PAYLOAD_INFO + header.pack())


def chunk_nonce(i: int, last: bool) -> bytes:
    """7 zero bytes || uint32(i) || 0x01 for the last chunk, else 0x00."""
    return _NONCE.pack(i, 1 if last else 0)


class BlobDigest:
    """The manifest ``digest``: SHA-256("sxf/v1/blob" || header || SHA-256(chunk) || ...)."""

    def __init__(self) -> None:
        self._hash = hashlib.sha256(b"sxf/v1/blob")
        self._has_header = False

    def update_header(self, header_bytes: bytes) -> None:
        if self._has_header or len(header_bytes) != HEADER_LEN:
            raise ValueError("give the 80-byte header once, before any chunk")
        self._hash.update(header_bytes)
        self._has_header = True

    def update_chunk(self, stored_chunk: bytes) -> None:
        """Add the next chunk as stored (ciphertext || tag)."""
        if not self._has_header:
            raise ValueError("give the header before the chunks")
        self._hash.update(hashlib.sha256(stored_chunk).digest())

    def hexdigest(self) -> str:
        if not self._has_header:
            raise ValueError("nothing was hashed")
        return self._hash.hexdigest()


class Encryptor:
    """Encrypts one file into an SXF1 blob, each chunk exactly once, in order."""

    def __init__(
        self,
        delivery_key: bytes,
        delivery_id: IdLike,
        file_id: IdLike,
        length: int,
        *,
        chunk_log2: int = DEFAULT_CHUNK_LOG2,
        salt: bytes | None = None,
    ) -> None:
        salt = os.urandom(SALT_LEN) if salt is None else bytes(salt)
        self.header = Header(_as_uuid(delivery_id), _as_uuid(file_id), salt, length, chunk_log2)
        self.header_bytes = self.header.pack()
        self._aead = AESGCM(payload_key(delivery_key, self.header))
        self._next = 0

    def encrypt_chunk(self, i: int, plaintext: bytes) -> bytes:
        """Return stored chunk i (ciphertext || tag) for exactly that chunk's plaintext.

        Chunks must be encrypted in order 0, 1, 2, ...: asking for one twice would reuse a
        nonce, so it raises ``ValueError`` (an upload retry resends the stored ciphertext).
        """
        if i != self._next:
            raise ValueError(f"chunk {i} cannot be encrypted now; the next chunk is {self._next}")
        expected = self.header.plaintext_len(i)
        if len(plaintext) != expected:
            raise ValueError(f"chunk {i} must be {expected} bytes, not {len(plaintext)}")
        self._next += 1
        return self._aead.encrypt(chunk_nonce(i, i == self.header.chunk_count - 1), plaintext, None)

    def encrypt_stream(
        self, readable: Readable, *, digest: BlobDigest | None = None
    ) -> Iterator[bytes]:
        """Yield the header, then each stored chunk, reading one chunk at a time."""
        if self._next:
            raise ValueError("this encryptor has already encrypted chunks")
        if digest is not None:
            digest.update_header(self.header_bytes)
        yield self.header_bytes
        last = self.header.chunk_count - 1
        for i in range(last + 1):
            size = self.header.plaintext_len(i)
            plaintext = _read_exact(readable, size + (i == last))
            if len(plaintext) != size:
                change = "shorter" if len(plaintext) < size else "longer"
                raise SXFError(f"the file became {change} while it was being encrypted")
            stored = self.encrypt_chunk(i, plaintext)
            if digest is not None:
                digest.update_chunk(stored)
            yield stored


def _tampered(i: int) -> str:
    if i == 0:
        return (
            "the file cannot be decrypted with this key: the key is wrong, or the file was "
            "changed or damaged after it was encrypted (chunk 0 failed authentication)"
        )
    return (
        f"the file was changed or damaged after it was encrypted (chunk {i} failed authentication)"
    )


class Decryptor:
    """Decrypts the chunks of one blob whose header was parsed (and checked) already."""

    def __init__(self, delivery_key: bytes, header: Header) -> None:
        self.header = header
        self._aead = AESGCM(payload_key(delivery_key, header))
        self._last = header.chunk_count - 1

    def decrypt_chunk(self, i: int, stored: bytes) -> bytes:
        """Return the plaintext of stored chunk i; raise AuthenticationError if it is not."""
        expected = stored_chunk_len(self.header, i)
        if len(stored) != expected:
            raise AuthenticationError(
                f"the file was truncated or damaged (chunk {i} is {len(stored)} bytes, "
                f"not {expected})"
            )
        try:
            return self._aead.decrypt(chunk_nonce(i, i == self._last), stored, None)
        except InvalidTag:
            raise AuthenticationError(_tampered(i)) from None


def _chunks(
    decryptor: Decryptor,
    readable: Readable,
    first: int,
    last: int,
    start: int,
    end: int,
    digest: BlobDigest | None,
    discard: bool = False,
) -> Iterator[bytes]:
    """Plaintext of chunks first..last, cut to bytes [start, end]; reads about READ_SIZE at once.

    The per-chunk work is kept to the AES-GCM call: sizes and nonces come from precomputed
    values rather than the range-checked helpers (the same numbers, checked once per read).
    Each plaintext is yielded as soon as its tag verified: a caller that is done with it
    before asking for the next one keeps the output in the processor's cache. With
    ``discard`` the plaintext goes to one scratch buffer and nothing is yielded.
    """
    header = decryptor.header
    size = header.chunk_size
    stored_size = size + TAG_LEN
    final = header.chunk_count - 1
    final_stored = header.length - final * size + TAG_LEN
    per_read = max(1, READ_SIZE // stored_size)
    decrypt = decryptor._aead.decrypt
    decrypt_into = decryptor._aead.decrypt_into
    nonce = _NONCE.pack
    update = None if digest is None else digest.update_chunk
    scratch = memoryview(bytearray(size)) if discard else None
    span = (last - first) * stored_size + (final_stored if last == final else stored_size)
    reads = _Reads(readable, min(per_read * stored_size, span) + 1)
    stored = memoryview(b"")
    try:
        i = first
        while i <= last:
            group_last = min(last, i + per_read - 1)
            at_end = group_last == final
            want = (group_last - i) * stored_size + (final_stored if at_end else stored_size)
            view = reads.take(want + at_end)
            if len(view) > want:
                raise FormatError("the file has extra bytes after its last chunk")
            pos = 0
            for j in range(i, group_last + 1):
                need = final_stored if j == final else stored_size
                stored = view[pos : pos + need]
                if len(stored) < need:
                    raise AuthenticationError(
                        f"the file ends early: chunk {j} of {header.chunk_count} is missing"
                    )
                try:
                    if scratch is None:
                        plaintext = decrypt(nonce(j, j == final), stored, None)
                    else:
                        decrypt_into(nonce(j, j == final), stored, None, scratch[: need - TAG_LEN])
                except InvalidTag:
                    raise AuthenticationError(_tampered(j)) from None
                if update is not None:
                    update(stored)
                stored.release()
                pos += need
                if scratch is not None:
                    continue
                if j in (first, last):  # only the ends of a range can be partial
                    lo = max(start - j * size, 0)
                    hi = min(end + 1 - j * size, len(plaintext))
                    if lo < hi:
                        yield plaintext if hi - lo == len(plaintext) else plaintext[lo:hi]
                else:
                    yield plaintext
            i = group_last + 1
    finally:
        stored.release()
        reads.close()


def _open(
    delivery_key: bytes,
    readable: Readable,
    expect: tuple[IdLike, IdLike, int],
    start: int,
    end: int | None,
    digest: BlobDigest | None,
    discard: bool = False,
) -> tuple[Header, Iterator[bytes]]:
    data = _read_exact(readable, HEADER_LEN)
    did, fid, size = expect
    header = Header.parse(data, delivery_id=did, file_id=fid, blob_length=size)
    decryptor = Decryptor(delivery_key, header)
    if start == 0 and end in (None, header.length - 1):
        if digest is not None:
            digest.update_header(data)
        last = header.chunk_count - 1
        chunks = _chunks(decryptor, readable, 0, last, 0, header.length, digest, discard)
        return header, chunks
    if digest is not None:
        raise ValueError("a digest needs the whole file, not a range")
    if end is None:
        end = header.length - 1
    indices = chunks_for_range(header, start, end)
    if indices.start:
        readable.seek(chunk_offset(header, indices.start))
    return header, _chunks(decryptor, readable, indices.start, indices[-1], start, end, None)


def decrypt_stream(
    delivery_key: bytes,
    readable: Readable | Seekable,
    *,
    delivery_id: IdLike,
    file_id: IdLike,
    blob_length: int,
    start: int = 0,
    end: int | None = None,
    digest: BlobDigest | None = None,
) -> Iterator[bytes]:
    """Check the header, then return an iterator over plaintext bytes [start, end].

    ``readable`` is positioned at the start of the blob. ``end`` is inclusive (as in HTTP
    Range) and defaults to the last byte; a range that does not start at 0 seeks. Header
    problems raise here, before any byte is produced; while iterating, a chunk's plaintext
    comes out only after its tag verified, and a blob that ends early raises
    AuthenticationError. ``digest``, for a whole-file read, is fed the header and
    every stored chunk, so the manifest digest can be compared afterwards.
    """
    expect = (delivery_id, file_id, blob_length)
    return _open(delivery_key, readable, expect, start, end, digest)[1]


def verify_blob(
    delivery_key: bytes,
    readable: Readable,
    *,
    delivery_id: IdLike,
    file_id: IdLike,
    blob_length: int,
    digest: BlobDigest | None = None,
) -> Header:
    """Authenticate a whole blob in one pass, discarding the plaintext; return its header."""
    expect = (delivery_id, file_id, blob_length)
    header, chunks = _open(delivery_key, readable, expect, 0, None, digest, discard=True)
    for _ in chunks:
        pass
    return header


# Key entries: how a delivery key reaches a reader.


def _load_p256_public(raw: bytes) -> ec.EllipticCurvePublicKey:
    if not isinstance(raw, bytes | bytearray) or len(raw) != P256_PUBLIC_LEN or raw[0] != 4:
        raise FormatError("a P-256 public key must be its 65-byte uncompressed point")
    try:
        return ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), bytes(raw))
    except ValueError:
        raise FormatError("a P-256 public key is not a point on the curve") from None


def _raw_public(key: ec.EllipticCurvePublicKey) -> bytes:
    return key.public_bytes(Encoding.X962, PublicFormat.UncompressedPoint)


def _entry_bytes(entry: dict, kind: str, id_field: str, **sizes: int) -> dict[str, bytes]:
    """Check an entry's shape strictly and return its decoded binary members."""
    if not isinstance(entry, dict) or entry.get("kind") != kind:
        raise FormatError(f"this is not a {kind} key entry")
    if set(entry) != {"kind", id_field, *sizes}:
        members = ", ".join(["kind", id_field, *sizes])
        raise FormatError(f"a {kind} key entry has exactly the members {members}")
    if not isinstance(entry[id_field], str) or not entry[id_field]:
        raise FormatError(f"the key entry's {id_field} is missing")
    decoded = {}
    for name, size in sizes.items():
        decoded[name] = b64u_decode(entry[name])
        if len(decoded[name]) != size:
            raise FormatError(f"the key entry's {name} must be {size} bytes")
    return decoded


def validate_entry(entry: dict) -> None:
    """Check the shape of a kek or p256 entry (as a server does before storing it)."""
    kind = entry.get("kind") if isinstance(entry, dict) else None
    if kind == "kek":
        _entry_bytes(entry, "kek", "kek_id", nonce=12, ct=KEY_LEN + TAG_LEN)
    elif kind == "p256":
        fields = _entry_bytes(entry, "p256", "key_id", eph=P256_PUBLIC_LEN, ct=KEY_LEN + TAG_LEN)
        _load_p256_public(fields["eph"])
    else:
        raise FormatError("a key entry's kind must be kek or p256")


def wrap_kek(
    master_key: bytes,
    kek_id: str,
    delivery_id: IdLike,
    delivery_key: bytes,
    *,
    nonce: bytes | None = None,
) -> dict:
    """Server entry: AES-256-GCM(master_key, nonce, delivery_key, aad="sxf/v1/kek" || id)."""
    aead = AESGCM(_check_key(master_key, "master key"))
    nonce = os.urandom(12) if nonce is None else bytes(nonce)
    if len(nonce) != 12:
        raise ValueError("the nonce must be 12 bytes")
    aad = _KEK_AAD + _as_uuid(delivery_id).bytes
    ct = aead.encrypt(nonce, _check_key(delivery_key, "delivery key"), aad)
    return {"kind": "kek", "kek_id": kek_id, "nonce": b64u_encode(nonce), "ct": b64u_encode(ct)}


def unwrap_kek(master_key: bytes, entry: dict, delivery_id: IdLike) -> bytes:
    """Return the delivery key from a server entry made by :func:`wrap_kek`."""
    fields = _entry_bytes(entry, "kek", "kek_id", nonce=12, ct=KEY_LEN + TAG_LEN)
    aead = AESGCM(_check_key(master_key, "master key"))
    try:
        return aead.decrypt(fields["nonce"], fields["ct"], _KEK_AAD + _as_uuid(delivery_id).bytes)
    except InvalidTag:
        raise AuthenticationError(
            "the server key entry does not open: wrong master key, another delivery, or changed"
        ) from None


def _p256_key(z: bytes, eph: bytes, reader: bytes, info: bytes) -> AESGCM:
    return AESGCM(_hkdf(z, salt=eph + reader, info=info))


def wrap_p256(reader_public: bytes, key_id: str, delivery_id: IdLike, delivery_key: bytes) -> dict:
    """Public-key entry for the reader's 65-byte ECDH public key (fresh ephemeral key)."""
    reader = _load_p256_public(reader_public)
    eph = ec.generate_private_key(ec.SECP256R1())
    eph_raw = _raw_public(eph.public_key())
    info = _P256_INFO + _as_uuid(delivery_id).bytes
    aead = _p256_key(eph.exchange(ec.ECDH(), reader), eph_raw, bytes(reader_public), info)
    ct = aead.encrypt(bytes(12), _check_key(delivery_key, "delivery key"), info)
    return {"kind": "p256", "key_id": key_id, "eph": b64u_encode(eph_raw), "ct": b64u_encode(ct)}


def unwrap_p256(private_key: ec.EllipticCurvePrivateKey, entry: dict, delivery_id: IdLike) -> bytes:
    """Return the delivery key from a public-key entry, with the reader's ECDH private key."""
    if not isinstance(private_key, ec.EllipticCurvePrivateKey) or not isinstance(
        private_key.curve, ec.SECP256R1
    ):
        raise TypeError("unwrap_p256 needs a P-256 private key")
    fields = _entry_bytes(entry, "p256", "key_id", eph=P256_PUBLIC_LEN, ct=KEY_LEN + TAG_LEN)
    eph = _load_p256_public(fields["eph"])
    info = _P256_INFO + _as_uuid(delivery_id).bytes
    reader_raw = _raw_public(private_key.public_key())
    aead = _p256_key(private_key.exchange(ec.ECDH(), eph), fields["eph"], reader_raw, info)
    try:
        return aead.decrypt(bytes(12), fields["ct"], info)
    except InvalidTag:
        raise AuthenticationError(
            "the key entry does not open with this key: it is for another key or delivery, "
            "or it was changed"
        ) from None


# Fingerprints.


def normalize_email(email: str) -> str:
    """NFC, then ASCII A-Z lowercased only, then NFC again (the same in every runtime)."""
    return unicodedata.normalize("NFC", unicodedata.normalize("NFC", email).translate(_ASCII_LOWER))


def _lp(data: bytes) -> bytes:
    if len(data) > 0xFFFF:
        raise ValueError("a fingerprint field is longer than 65535 bytes")
    return len(data).to_bytes(2, "big") + data


def fingerprint(email: str, ecdh_public: bytes, ecdsa_public: bytes) -> bytes:
    """The full 32-byte fingerprint hash of a user key (pins store it as 64 hex digits)."""
    _load_p256_public(ecdh_public)
    _load_p256_public(ecdsa_public)
    fields = (b"p256", normalize_email(email).encode(), bytes(ecdh_public), bytes(ecdsa_public))
    return hashlib.sha256(b"sxf/v1/fpr" + b"".join(_lp(f) for f in fields)).digest()


def format_fingerprint(fp: bytes) -> str:
    """The first 16 bytes in hex, as 8 groups of 4 separated by a space."""
    if len(fp) != 32:
        raise ValueError("a fingerprint is 32 bytes")
    digits = fp[:16].hex()
    return " ".join(digits[i : i + 4] for i in range(0, 32, 4))


def fingerprints_equal(a: str, b: str) -> bool:
    """Compare two shown fingerprints, ignoring case and spaces."""
    a, b = "".join(a.split()).lower(), "".join(b.split()).lower()
    return bool(a) and re.fullmatch(r"[0-9a-f]+", a) is not None and a == b
