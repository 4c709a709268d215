import hashlib
import io
import os
import random
import struct
import uuid

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from hypothesis import given, settings
from hypothesis import strategies as st

from secupass import sxf

CHUNK = 1 << 16
KEY = bytes(range(32))
DELIVERY = uuid.UUID("0b5a4c2e-8f21-4d1e-9a3b-5c6d7e8f9a0b")
FILE = uuid.UUID("7f1e2d3c-4b5a-4968-8776-655443322110")
SALT = bytes(range(100, 132))
BOUNDARY_SIZES = [
    0,
    1,
    CHUNK - 1,
    CHUNK,
    CHUNK + 1,
    2 * CHUNK - 1,
    2 * CHUNK,
    2 * CHUNK + 1,
    3 * CHUNK,
]


def plaintext(n, seed=0):
    return random.Random(n * 7919 + seed).randbytes(n)


def encrypt(data, *, key=KEY, delivery_id=DELIVERY, file_id=FILE, salt=None, chunk_log2=16):
    encryptor = sxf.Encryptor(
        key, delivery_id, file_id, len(data), chunk_log2=chunk_log2, salt=salt
    )
    return b"".join(encryptor.encrypt_stream(io.BytesIO(data)))


def decrypt(blob, *, key=KEY, delivery_id=DELIVERY, file_id=FILE, blob_length=None, **kwargs):
    stream = sxf.decrypt_stream(
        key,
        io.BytesIO(blob),
        delivery_id=delivery_id,
        file_id=file_id,
        blob_length=len(blob) if blob_length is None else blob_length,
        **kwargs,
    )
    return b"".join(stream)


def decrypt_until_error(blob, **kwargs):
    """Plaintext released before the error, and the error."""
    out = bytearray()
    try:
        for part in sxf.decrypt_stream(
            KEY, io.BytesIO(blob), delivery_id=DELIVERY, file_id=FILE, **kwargs
        ):
            out += part
    except sxf.SXFError as error:
        return bytes(out), error
    raise AssertionError("the blob was accepted")


def stored_chunks(blob, header):
    return [
        blob[
            sxf.chunk_offset(header, i) : sxf.chunk_offset(header, i)
            + sxf.stored_chunk_len(header, i)
        ]
        for i in range(header.chunk_count)
    ]


class Recording(io.BytesIO):
    """A stream that records each read() request and returns at most ``limit`` bytes."""

    def __init__(self, data, limit=None):
        super().__init__(data)
        self.limit = limit
        self.requests = []

    def read(self, n=-1):
        self.requests.append(n)
        if self.limit is not None:
            n = self.limit if n < 0 else min(n, self.limit)
        return super().read(n)


# Layout and sizes


def test_blob_length():
    assert sxf.blob_length(0) == 96
    assert sxf.blob_length(1) == 97
    assert sxf.blob_length(CHUNK) == 80 + CHUNK + 16
    assert sxf.blob_length(CHUNK + 1) == 80 + CHUNK + 1 + 32
    assert sxf.blob_length(2**22, chunk_log2=22) == 80 + 2**22 + 16


def test_blob_matches_spec_built_by_hand():
    data = plaintext(2 * CHUNK + 5)
    blob = encrypt(data, salt=SALT)

    header = b"SXF1" + bytes([1, 1, 16, 0]) + DELIVERY.bytes + FILE.bytes + SALT
    header += struct.pack(">Q", len(data))
    hkdf = HKDF(hashes.SHA256(), 32, salt=SALT, info=b"sxf/v1/payload" + header)
    aead = AESGCM(hkdf.derive(KEY))
    expected = header
    for i, last in ((0, 0), (1, 0), (2, 1)):
        nonce = bytes(7) + i.to_bytes(4, "big") + bytes([last])
        expected += aead.encrypt(nonce, data[i * CHUNK : (i + 1) * CHUNK], None)
    assert blob == expected


def test_empty_file_is_one_empty_last_chunk():
    blob = encrypt(b"", salt=SALT)
    header = sxf.Header.parse(blob)
    key = sxf.payload_key(KEY, header)
    assert len(blob) == 96
    assert blob[80:] == AESGCM(key).encrypt(bytes(7) + bytes(4) + b"\x01", b"", None)
    assert decrypt(blob) == b""


def test_header_round_trip_and_geometry():
    header = sxf.Header(DELIVERY, FILE, SALT, 2 * CHUNK + 5)
    packed = header.pack()
    assert len(packed) == sxf.HEADER_LEN
    assert sxf.Header.parse(packed + b"rest of blob") == header
    assert header.chunk_count == 3
    assert [sxf.stored_chunk_len(header, i) for i in range(3)] == [CHUNK + 16, CHUNK + 16, 21]
    assert [sxf.chunk_offset(header, i) for i in range(3)] == [
        80,
        80 + CHUNK + 16,
        80 + 2 * (CHUNK + 16),
    ]
    assert sxf.chunks_for_range(header, 0, 0) == range(0, 1)
    assert sxf.chunks_for_range(header, CHUNK - 1, CHUNK) == range(0, 2)
    assert sxf.chunks_for_range(header, CHUNK + 3, 2 * CHUNK + 4) == range(1, 3)
    with pytest.raises(ValueError):
        sxf.chunks_for_range(header, 0, 2 * CHUNK + 5)
    with pytest.raises(ValueError):
        sxf.stored_chunk_len(header, 3)


def test_ids_may_be_strings():
    header = sxf.Header(str(DELIVERY), str(FILE), SALT, 10)
    assert header.delivery_id == DELIVERY
    assert sxf.Header.parse(header.pack(), delivery_id=str(DELIVERY), file_id=str(FILE)) == header


@pytest.mark.parametrize(
    ("offset", "value", "message"),
    [
        (0, b"SXF2", "wrong magic"),
        (4, b"\x02", "version 2"),
        (5, b"\x02", "cipher suite 2"),
        (6, b"\x0f", r"2\^15"),
        (6, b"\x17", r"2\^23"),
        (7, b"\x01", "reserved"),
    ],
)
def test_parse_rejects_bad_header_fields(offset, value, message):
    packed = bytearray(sxf.Header(DELIVERY, FILE, SALT, 10).pack())
    packed[offset : offset + len(value)] = value
    with pytest.raises(sxf.FormatError, match=message):
        sxf.Header.parse(bytes(packed))


def test_parse_checks_record_and_length():
    packed = sxf.Header(DELIVERY, FILE, SALT, 10).pack()
    with pytest.raises(sxf.FormatError, match="shorter than the header"):
        sxf.Header.parse(packed[:79])
    with pytest.raises(sxf.FormatError, match="another delivery"):
        sxf.Header.parse(packed, delivery_id=uuid.uuid4(), file_id=FILE)
    with pytest.raises(sxf.FormatError, match="another file"):
        sxf.Header.parse(packed, delivery_id=DELIVERY, file_id=uuid.uuid4())
    with pytest.raises(sxf.FormatError, match="truncated or extended"):
        sxf.Header.parse(packed, blob_length=80 + 10 + 15)
    assert sxf.Header.parse(packed, blob_length=80 + 10 + 16).length == 10


def test_chunk_count_limit():
    assert sxf.Header(DELIVERY, FILE, SALT, 2**48).chunk_count == 2**32
    with pytest.raises(sxf.FormatError, match="2\\^32 chunks"):
        sxf.Header(DELIVERY, FILE, SALT, 2**48 + 1)
    packed = sxf.Header(DELIVERY, FILE, SALT, 2**54, chunk_log2=22).pack()
    assert sxf.Header.parse(packed).chunk_count == 2**32
    with pytest.raises(sxf.FormatError, match="2\\^32 chunks"):
        sxf.Header.parse(packed[:72] + struct.pack(">Q", 2**64 - 1))


def test_readers_accept_larger_chunks():
    data = plaintext(2**22 + 3)
    blob = encrypt(data, chunk_log2=22)
    assert len(blob) == sxf.blob_length(len(data), 22)
    assert decrypt(blob) == data
    assert decrypt(blob, start=2**22 - 2, end=2**22 + 1) == data[2**22 - 2 : 2**22 + 2]


# Round trips and ranges


@settings(max_examples=40, deadline=None)
@given(
    n=st.one_of(st.sampled_from(BOUNDARY_SIZES), st.integers(0, 200 * 1024)),
    data=st.data(),
)
def test_round_trip_and_ranges(n, data):
    content = plaintext(n)
    digest = sxf.BlobDigest()
    encryptor = sxf.Encryptor(KEY, DELIVERY, FILE, n)
    blob = b"".join(encryptor.encrypt_stream(io.BytesIO(content), digest=digest))
    assert len(blob) == sxf.blob_length(n)
    check = sxf.BlobDigest()
    assert decrypt(blob, digest=check) == content
    assert check.hexdigest() == digest.hexdigest()
    if n:
        start = data.draw(st.integers(0, n - 1), label="start")
        end = data.draw(st.integers(start, n - 1), label="end")
        parts = list(
            sxf.decrypt_stream(
                KEY,
                io.BytesIO(blob),
                delivery_id=DELIVERY,
                file_id=FILE,
                blob_length=len(blob),
                start=start,
                end=end,
            )
        )
        assert b"".join(parts) == content[start : end + 1]
        assert all(parts)  # one non-empty piece per chunk touched
        assert len(parts) == end // CHUNK - start // CHUNK + 1
        assert decrypt(blob, start=start) == content[start:]


def test_short_reads_are_completed():
    content = plaintext(3 * CHUNK + 10)
    encryptor = sxf.Encryptor(KEY, DELIVERY, FILE, len(content))
    blob = b"".join(encryptor.encrypt_stream(Recording(content, limit=1000)))
    assert decrypt(blob) == content
    stream = sxf.decrypt_stream(
        KEY,
        Recording(blob, limit=1000),
        delivery_id=DELIVERY,
        file_id=FILE,
        blob_length=len(blob),
        start=CHUNK + 7,
    )
    assert b"".join(stream) == content[CHUNK + 7 :]


def test_reads_are_bounded_and_grouped():
    content = plaintext(40 * CHUNK + 1)
    source = Recording(content)
    encryptor = sxf.Encryptor(KEY, DELIVERY, FILE, len(content))
    blob = b"".join(encryptor.encrypt_stream(source))
    assert min(source.requests) >= 0
    assert max(source.requests) <= CHUNK + 1

    stored = Recording(blob)
    stream = sxf.decrypt_stream(
        KEY, stored, delivery_id=DELIVERY, file_id=FILE, blob_length=len(blob)
    )
    assert b"".join(stream) == content
    assert len(stored.requests) <= 5
    assert min(stored.requests) >= 0
    assert max(stored.requests) <= sxf.READ_SIZE + 1


def test_blob_files_are_read_in_place(tmp_path):
    """A blob in a file (how every store hands it out) is mapped, not copied; what comes
    out, and every refusal, is the same as from any other stream."""
    content = plaintext(40 * CHUNK + 123)
    written = sxf.BlobDigest()
    encryptor = sxf.Encryptor(KEY, DELIVERY, FILE, len(content))
    blob = b"".join(encryptor.encrypt_stream(io.BytesIO(content), digest=written))
    path = tmp_path / "blob.sxf"
    path.write_bytes(blob)

    def from_file(data=None, buffering=-1, **kwargs):
        if data is not None:
            path.write_bytes(data)
        with path.open("rb", buffering=buffering) as readable:
            kwargs.setdefault("blob_length", len(blob))
            out = bytearray()
            try:
                for part in sxf.decrypt_stream(
                    KEY, readable, delivery_id=DELIVERY, file_id=FILE, **kwargs
                ):
                    out += part
            except sxf.SXFError as error:
                return bytes(out), error
            return bytes(out), readable.tell()

    for buffering in (-1, 0):  # BufferedReader and FileIO
        digest = sxf.BlobDigest()
        assert from_file(buffering=buffering, digest=digest) == (content, len(blob))
        assert digest.hexdigest() == written.hexdigest()
        start, end = CHUNK * 3 - 5, CHUNK * 30 + 7
        out, _ = from_file(buffering=buffering, start=start, end=end)
        assert out == content[start : end + 1]

    released, error = from_file(blob[:-1])
    assert isinstance(error, sxf.AuthenticationError) and "ends early" in str(error)
    assert released == content[: 40 * CHUNK]
    released, error = from_file(blob + b"\0")
    assert isinstance(error, sxf.FormatError) and "extra bytes" in str(error)
    assert content.startswith(released) and len(released) < len(content)
    tampered = bytearray(blob)
    tampered[sxf.HEADER_LEN + 20 * (CHUNK + sxf.TAG_LEN) + 9] ^= 1
    released, error = from_file(bytes(tampered))
    assert isinstance(error, sxf.AuthenticationError) and "chunk 20" in str(error)
    assert released == content[: 20 * CHUNK]


def test_encryptor_refuses_reuse_and_wrong_sizes():
    encryptor = sxf.Encryptor(KEY, DELIVERY, FILE, CHUNK + 1)
    with pytest.raises(ValueError, match="must be 65536 bytes"):
        encryptor.encrypt_chunk(0, b"x")
    with pytest.raises(ValueError, match="next chunk is 0"):
        encryptor.encrypt_chunk(1, b"x")
    first = encryptor.encrypt_chunk(0, bytes(CHUNK))
    with pytest.raises(ValueError, match="next chunk is 1"):
        encryptor.encrypt_chunk(0, bytes(CHUNK))
    last = encryptor.encrypt_chunk(1, b"x")
    decryptor = sxf.Decryptor(KEY, encryptor.header)
    assert decryptor.decrypt_chunk(0, first) == bytes(CHUNK)
    assert decryptor.decrypt_chunk(1, last) == b"x"
    with pytest.raises(ValueError):
        encryptor.encrypt_chunk(2, b"")


def test_encrypt_stream_notices_a_changing_file():
    encryptor = sxf.Encryptor(KEY, DELIVERY, FILE, CHUNK + 10)
    with pytest.raises(sxf.SXFError, match="became shorter"):
        b"".join(encryptor.encrypt_stream(io.BytesIO(bytes(CHUNK + 9))))
    encryptor = sxf.Encryptor(KEY, DELIVERY, FILE, CHUNK + 10)
    with pytest.raises(sxf.SXFError, match="became longer"):
        b"".join(encryptor.encrypt_stream(io.BytesIO(bytes(CHUNK + 11))))


def test_fresh_salt_per_encryption():
    one, two = encrypt(b"same"), encrypt(b"same")
    assert one[40:72] != two[40:72]
    assert one[80:] != two[80:]


def test_bad_arguments():
    with pytest.raises(ValueError, match="32 bytes"):
        sxf.Encryptor(KEY[:16], DELIVERY, FILE, 1)
    with pytest.raises(sxf.FormatError, match="salt"):
        sxf.Encryptor(KEY, DELIVERY, FILE, 1, salt=b"short")
    with pytest.raises(ValueError):
        sxf.Encryptor(KEY, "not-a-uuid", FILE, 1)
    blob = encrypt(plaintext(10))
    with pytest.raises(ValueError, match="range"):
        decrypt(blob, start=1, digest=sxf.BlobDigest())
    with pytest.raises(ValueError, match="outside"):
        decrypt(blob, start=5, end=10)


# Tampering


def test_wrong_key():
    blob = encrypt(plaintext(CHUNK + 1))
    with pytest.raises(sxf.AuthenticationError, match="key is wrong") as excinfo:
        decrypt(blob, key=bytes(32))
    assert "chunk 0" in str(excinfo.value)


@pytest.mark.parametrize("chunk", [0, 1, 2])
def test_flipped_bit_in_a_chunk(chunk):
    content = plaintext(2 * CHUNK + 100)
    blob = bytearray(encrypt(content))
    header = sxf.Header.parse(blob)
    blob[sxf.chunk_offset(header, chunk) + 17] ^= 0x04
    released, error = decrypt_until_error(bytes(blob), blob_length=len(blob))
    assert isinstance(error, sxf.AuthenticationError)
    assert f"chunk {chunk} failed authentication" in str(error)
    assert released == content[: chunk * CHUNK]
    with pytest.raises(sxf.AuthenticationError):
        sxf.verify_blob(
            KEY, io.BytesIO(blob), delivery_id=DELIVERY, file_id=FILE, blob_length=len(blob)
        )


@pytest.mark.parametrize(
    ("offset", "error"),
    [
        (2, sxf.FormatError),  # magic
        (4, sxf.FormatError),  # version
        (5, sxf.FormatError),  # suite
        (6, sxf.FormatError),  # chunk size, so the length no longer fits
        (7, sxf.FormatError),  # reserved
        (10, sxf.FormatError),  # delivery id
        (30, sxf.FormatError),  # file id
        (50, sxf.AuthenticationError),  # salt: another payload key
        (79, sxf.FormatError),  # length
    ],
)
def test_flipped_bit_in_the_header(offset, error):
    blob = bytearray(encrypt(plaintext(CHUNK + 3)))
    blob[offset] ^= 0x01
    released, raised = decrypt_until_error(bytes(blob), blob_length=len(blob))
    assert type(raised) is error
    assert released == b""


def test_blob_moved_to_another_record():
    blob = encrypt(plaintext(100))
    with pytest.raises(sxf.FormatError, match="another file"):
        decrypt(blob, file_id=uuid.uuid4())
    with pytest.raises(sxf.FormatError, match="another delivery"):
        decrypt(blob, delivery_id=uuid.uuid4())
    # Rewriting the ids in the header to fit the other record changes the payload key.
    other_delivery, other_file = uuid.uuid4(), uuid.uuid4()
    moved = blob[:8] + other_delivery.bytes + other_file.bytes + blob[40:]
    with pytest.raises(sxf.AuthenticationError, match="chunk 0"):
        decrypt(moved, delivery_id=other_delivery, file_id=other_file)


def test_swapped_chunks():
    content = plaintext(3 * CHUNK)
    blob = encrypt(content)
    header = sxf.Header.parse(blob)
    c = stored_chunks(blob, header)
    released, error = decrypt_until_error(blob[:80] + c[1] + c[0] + c[2], blob_length=len(blob))
    assert isinstance(error, sxf.AuthenticationError)
    assert released == b""
    released, error = decrypt_until_error(blob[:80] + c[0] + c[2] + c[1], blob_length=len(blob))
    assert isinstance(error, sxf.AuthenticationError)
    assert released == content[:CHUNK]


@pytest.mark.parametrize("dropped", [1, 2])
def test_dropped_chunk(dropped):
    content = plaintext(2 * CHUNK + 10)
    blob = encrypt(content)
    header = sxf.Header.parse(blob)
    shortened = blob[:80] + b"".join(
        c for i, c in enumerate(stored_chunks(blob, header)) if i != dropped
    )
    # The store's real size gives it away before any decryption ...
    released, error = decrypt_until_error(shortened, blob_length=len(shortened))
    assert isinstance(error, sxf.FormatError)
    assert released == b""
    # ... and a record that claims the original size meets a blob that ends early.
    released, error = decrypt_until_error(shortened, blob_length=len(blob))
    assert isinstance(error, sxf.AuthenticationError)
    assert released == content[: dropped * CHUNK]


@pytest.mark.parametrize("cut", [1, 16, 17])
def test_truncated_last_chunk(cut):
    content = plaintext(CHUNK + 20)
    blob = encrypt(content)
    released, error = decrypt_until_error(blob[:-cut], blob_length=len(blob))
    assert isinstance(error, sxf.AuthenticationError)
    assert "ends early" in str(error)
    assert released == content[:CHUNK]


def test_last_chunk_flag_is_authenticated():
    header = sxf.Header(DELIVERY, FILE, SALT, CHUNK + 1)
    aead = AESGCM(sxf.payload_key(KEY, header))
    decryptor = sxf.Decryptor(KEY, header)
    not_last = aead.encrypt(sxf.chunk_nonce(0, True), bytes(CHUNK), None)
    with pytest.raises(sxf.AuthenticationError):
        decryptor.decrypt_chunk(0, not_last)
    last = aead.encrypt(sxf.chunk_nonce(1, False), b"z", None)
    with pytest.raises(sxf.AuthenticationError):
        decryptor.decrypt_chunk(1, last)
    assert decryptor.decrypt_chunk(1, aead.encrypt(sxf.chunk_nonce(1, True), b"z", None)) == b"z"
    with pytest.raises(sxf.AuthenticationError, match="not 17"):
        decryptor.decrypt_chunk(1, last + b"!")


@pytest.mark.parametrize("size", [0, 10, CHUNK])
def test_extra_bytes(size):
    content = plaintext(size)
    blob = encrypt(content)
    released, error = decrypt_until_error(blob + b"\0", blob_length=len(blob) + 1)
    assert isinstance(error, sxf.FormatError)
    released, error = decrypt_until_error(blob + b"\0", blob_length=len(blob))
    assert isinstance(error, sxf.FormatError)
    assert "extra bytes" in str(error)
    assert released == b""


def test_verify_blob_returns_the_header_and_digest():
    content = plaintext(CHUNK * 2 + 1)
    blob = encrypt(content)
    digest = sxf.BlobDigest()
    header = sxf.verify_blob(
        KEY,
        io.BytesIO(blob),
        delivery_id=DELIVERY,
        file_id=FILE,
        blob_length=len(blob),
        digest=digest,
    )
    assert header.length == len(content)
    outer = hashlib.sha256(b"sxf/v1/blob" + blob[:80])
    for chunk in stored_chunks(blob, header):
        outer.update(hashlib.sha256(chunk).digest())
    assert digest.hexdigest() == outer.hexdigest()


def test_blob_digest_order():
    digest = sxf.BlobDigest()
    with pytest.raises(ValueError):
        digest.update_chunk(b"x" * 16)
    with pytest.raises(ValueError):
        digest.update_header(b"short")


# Key entries


def test_kek_round_trip_and_spec():
    master = os.urandom(32)
    nonce = bytes(range(12))
    entry = sxf.wrap_kek(master, "k2", DELIVERY, KEY, nonce=nonce)
    assert entry == {
        "kind": "kek",
        "kek_id": "k2",
        "nonce": sxf.b64u_encode(nonce),
        "ct": sxf.b64u_encode(AESGCM(master).encrypt(nonce, KEY, b"sxf/v1/kek" + DELIVERY.bytes)),
    }
    assert sxf.unwrap_kek(master, entry, DELIVERY) == KEY
    assert sxf.unwrap_kek(master, sxf.wrap_kek(master, "k2", str(DELIVERY), KEY), DELIVERY) == KEY
    sxf.validate_entry(entry)


def test_kek_rejections():
    master = os.urandom(32)
    entry = sxf.wrap_kek(master, "k1", DELIVERY, KEY)
    with pytest.raises(sxf.AuthenticationError):
        sxf.unwrap_kek(os.urandom(32), entry, DELIVERY)
    with pytest.raises(sxf.AuthenticationError):
        sxf.unwrap_kek(master, entry, uuid.uuid4())
    ct = bytearray(sxf.b64u_decode(entry["ct"]))
    ct[0] ^= 1
    with pytest.raises(sxf.AuthenticationError):
        sxf.unwrap_kek(master, {**entry, "ct": sxf.b64u_encode(ct)}, DELIVERY)
    bad = [
        {**entry, "ct": sxf.b64u_encode(sxf.b64u_decode(entry["ct"])[:47])},
        {**entry, "nonce": sxf.b64u_encode(bytes(11))},
        {**entry, "nonce": entry["nonce"] + "=="},
        {**entry, "kind": "p256"},
        {**entry, "kind": "rsa"},
        {**entry, "extra": 1},
        {k: v for k, v in entry.items() if k != "kek_id"},
        {**entry, "kek_id": ""},
    ]
    for candidate in bad:
        with pytest.raises(sxf.FormatError):
            sxf.unwrap_kek(master, candidate, DELIVERY)
        with pytest.raises(sxf.FormatError):
            sxf.validate_entry(candidate)


def raw_public(key):
    return key.public_key().public_bytes(Encoding.X962, PublicFormat.UncompressedPoint)


def test_p256_round_trip_and_spec():
    reader = ec.generate_private_key(ec.SECP256R1())
    entry = sxf.wrap_p256(raw_public(reader), "key-1", DELIVERY, KEY)
    assert set(entry) == {"kind", "key_id", "eph", "ct"}
    assert entry["kind"] == "p256"
    assert entry["key_id"] == "key-1"
    assert sxf.unwrap_p256(reader, entry, DELIVERY) == KEY
    sxf.validate_entry(entry)

    # Recompute by hand from the spec.
    eph_raw = sxf.b64u_decode(entry["eph"])
    eph = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), eph_raw)
    info = b"sxf/v1/wrap/p256" + DELIVERY.bytes
    z = reader.exchange(ec.ECDH(), eph)
    k = HKDF(hashes.SHA256(), 32, salt=eph_raw + raw_public(reader), info=info).derive(z)
    assert AESGCM(k).decrypt(bytes(12), sxf.b64u_decode(entry["ct"]), info) == KEY
    assert sxf.wrap_p256(raw_public(reader), "key-1", DELIVERY, KEY)["eph"] != entry["eph"]


def test_p256_rejections():
    reader = ec.generate_private_key(ec.SECP256R1())
    entry = sxf.wrap_p256(raw_public(reader), "key-1", DELIVERY, KEY)
    with pytest.raises(sxf.AuthenticationError):
        sxf.unwrap_p256(reader, entry, uuid.uuid4())
    with pytest.raises(sxf.AuthenticationError):
        sxf.unwrap_p256(ec.generate_private_key(ec.SECP256R1()), entry, DELIVERY)
    ct = bytearray(sxf.b64u_decode(entry["ct"]))
    ct[-1] ^= 0x80
    with pytest.raises(sxf.AuthenticationError):
        sxf.unwrap_p256(reader, {**entry, "ct": sxf.b64u_encode(ct)}, DELIVERY)

    eph = ec.EllipticCurvePublicKey.from_encoded_point(
        ec.SECP256R1(), sxf.b64u_decode(entry["eph"])
    )
    compressed = eph.public_bytes(Encoding.X962, PublicFormat.CompressedPoint)
    uncompressed = sxf.b64u_decode(entry["eph"])
    hybrid = bytes([6 + (uncompressed[-1] & 1)]) + uncompressed[1:]
    off_curve = uncompressed[:-1] + bytes([uncompressed[-1] ^ 1])
    for eph_bytes in (compressed, hybrid, off_curve, uncompressed[:64], uncompressed + b"\0"):
        candidate = {**entry, "eph": sxf.b64u_encode(eph_bytes)}
        with pytest.raises(sxf.FormatError):
            sxf.unwrap_p256(reader, candidate, DELIVERY)
        with pytest.raises(sxf.FormatError):
            sxf.validate_entry(candidate)
    for candidate in (
        {**entry, "ct": sxf.b64u_encode(bytes(49))},
        {**entry, "eph": entry["eph"] + "="},
        {**entry, "kind": "kek"},
        {**entry, "note": "x"},
    ):
        with pytest.raises(sxf.FormatError):
            sxf.unwrap_p256(reader, candidate, DELIVERY)
    reader_compressed = reader.public_key().public_bytes(
        Encoding.X962, PublicFormat.CompressedPoint
    )
    with pytest.raises(sxf.FormatError):
        sxf.wrap_p256(reader_compressed, "key-1", DELIVERY, KEY)
    with pytest.raises(TypeError):
        sxf.unwrap_p256(ec.generate_private_key(ec.SECP384R1()), entry, DELIVERY)


# Fingerprints and encodings


@pytest.mark.parametrize(
    ("email", "normalised"),
    [
        ("Ä@Example.ORG", "Ä@example.org"),
        ("A\u0308@EXAMPLE.org", "Ä@example.org"),  # decomposed Ä composes, stays upper case
        ("\u212aelvin@example.org", "kelvin@example.org"),  # Kelvin sign is K after NFC
        ("J\u030c@example.org", "\u01f0@example.org"),  # composes only once lowercased
        ("ÉLODIE@Exämple.de", "Élodie@exämple.de"),
    ],
)
def test_normalize_email(email, normalised):
    assert sxf.normalize_email(email) == normalised


def test_fingerprint():
    ecdh = raw_public(ec.generate_private_key(ec.SECP256R1()))
    ecdsa = raw_public(ec.generate_private_key(ec.SECP256R1()))
    fp = sxf.fingerprint("Ä@Example.ORG", ecdh, ecdsa)
    email = "Ä@example.org".encode()
    expected = hashlib.sha256(
        b"sxf/v1/fpr"
        + b"\x00\x04p256"
        + len(email).to_bytes(2, "big")
        + email
        + b"\x00\x41"
        + ecdh
        + b"\x00\x41"
        + ecdsa
    ).digest()
    assert fp == expected
    assert fp == sxf.fingerprint("\u00c4@example.org", ecdh, ecdsa)
    assert fp != sxf.fingerprint("ä@example.org", ecdh, ecdsa)
    assert fp != sxf.fingerprint("Ä@example.org", ecdsa, ecdh)
    shown = sxf.format_fingerprint(fp)
    assert shown == " ".join(fp[:16].hex()[i : i + 4] for i in range(0, 32, 4))
    assert len(shown.split(" ")) == 8
    assert sxf.fingerprints_equal(shown, shown.upper().replace(" ", ""))
    assert sxf.fingerprints_equal(shown, "  " + shown.replace(" ", "  ") + "\n")
    assert not sxf.fingerprints_equal(shown, sxf.format_fingerprint(bytes(32)))
    assert not sxf.fingerprints_equal("", "")
    assert not sxf.fingerprints_equal("zz", "zz")
    with pytest.raises(sxf.FormatError):
        sxf.fingerprint("a@example.org", ecdh[:33], ecdsa)


def test_b64u_is_strict():
    for data in (b"", b"\x01", b"\xfb\xff", b"\x00\x01\x02"):
        assert sxf.b64u_decode(sxf.b64u_encode(data)) == data
    assert sxf.b64u_encode(b"\xfb\xff") == "-_8"
    for text in ("AQ==", "AQ=", "+/8", "A", "AR", "AQ ", " AQ", "AQ\n", "Zm9v!", "-_9"):
        with pytest.raises(sxf.FormatError):
            sxf.b64u_decode(text)
