"""SecuPass keys, keyrings, manifests and delivery signatures (DESIGN.md section 4).

The browser twin is ``static/js/secupass.js``: the same bytes and the same checks. This module
imports no Django, so the server, the CLI and the tests share it.

A user key is two P-256 key pairs (ECDH to receive delivery keys, ECDSA to sign deliveries)
whose private halves are stored only in the *private record*, encrypted under a key derived
from the SecuPass, a random salt and the server's per-key pepper. Opening a record reports one
error, :class:`WrongSecuPass`, for every failure, so a crafted record cannot tell guesses apart.

Errors in data raise :class:`secupass.sxf.SXFError` subclasses with a message for people;
wrong use of the functions raises ``ValueError`` or ``TypeError``.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import unicodedata
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from cryptography.exceptions import InvalidSignature, InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature,
    encode_dss_signature,
)
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from secupass import sxf
from secupass.sxf import (
    FormatError,
    IdLike,
    SXFError,
    _as_uuid,
    _check_key,
    _entry_bytes,
    _hkdf,
    _load_p256_public,
    _raw_public,
    b64u_decode,
    b64u_encode,
)

KDF_NAME = "pbkdf2-sha256"
DEFAULT_ITERATIONS = 600_000
MIN_ITERATIONS = 600_000  # for new keys; readers honour any stored count from 1 up
MAX_ITERATIONS = 10_000_000  # a reader refuses more, so a server cannot stall a client
MIN_SECUPASS_LENGTH = 12
KDF_SALT_LEN = 16
PEPPER_LEN = 32
NONCE_LEN = 12
SIGNATURE_LEN = 64

_SECUPASS_INFO = b"sxf/v1/secupass"
_WRAP_INFO = b"sxf/v1/privkey-wrap"
_KEYRING_INFO = b"sxf/v1/keyring"
_PRIVKEY_AAD = b"sxf/v1/privkey"
_KEYRING_AAD = b"sxf/v1/keyring"
_PEPPER_AAD = b"sxf/v1/pepper"
_MESSAGE_INFO = b"sxf/v1/message"
_COMMIT_INFO = b"sxf/v1/commit"
_DELIVERY_PREFIX = b"sxf/v1/delivery"
_HEX64 = re.compile(r"[0-9a-f]{64}")
_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
_JWK_MEMBERS = {"crv", "d", "kty", "x", "y"}
_FILE_MEMBERS = {"file_id", "name", "type", "size", "digest"}
_LEVEL_MEMBER = {3: "message_sha256", 4: "message"}
_P256_ORDER = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551


class WrongSecuPass(SXFError):
    """The private record did not open: wrong SecuPass, or the record is not intact."""

    def __init__(self, message: str = "wrong SecuPass") -> None:
        super().__init__(message)


class KeyringError(SXFError):
    """The keyring does not open or is not well formed."""


class KeyringRollback(KeyringError):
    """The server offered an older keyring than this client has seen."""


class ManifestError(SXFError):
    """The manifest does not open or does not describe the delivery's files."""


def _nfc(text: str) -> str:
    if not isinstance(text, str):
        raise TypeError("expected text")
    return unicodedata.normalize("NFC", text)


def _id_bytes(value: IdLike) -> bytes:
    return _as_uuid(value).bytes


def _nonce(nonce: bytes | None) -> bytes:
    nonce = os.urandom(NONCE_LEN) if nonce is None else bytes(nonce)
    if len(nonce) != NONCE_LEN:
        raise ValueError(f"a nonce is {NONCE_LEN} bytes")
    return nonce


def _dumps(value: Any) -> bytes:
    """Compact JSON, UTF-8, as JavaScript's JSON.stringify writes it."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode()


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _loads(data: bytes) -> Any:
    return json.loads(data.decode("utf-8"), parse_constant=_reject_constant)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


# SecuPass policy and key derivation.


def secupass_length(secupass: str) -> int:
    """Length in code points after NFC, the number the policy counts."""
    return len(_nfc(secupass))


def check_secupass(secupass: str, login_password: str | None = None) -> list[str]:
    """Problems with a new SecuPass, as sentences; an empty list means it is acceptable."""
    problems = []
    length = secupass_length(secupass)
    if length < MIN_SECUPASS_LENGTH:
        problems.append(
            f"The SecuPass must be at least {MIN_SECUPASS_LENGTH} characters long "
            f"(this one has {length})."
        )
    if login_password is not None and _nfc(secupass) == _nfc(login_password):
        problems.append("The SecuPass must differ from your login password.")
    return problems


@dataclass(frozen=True)
class KdfParams:
    """How m is derived from the SecuPass; stored with the key."""

    kdf: str
    iterations: int
    salt: bytes = field(repr=False)


def new_kdf_params(iterations: int = DEFAULT_ITERATIONS) -> KdfParams:
    """Parameters for a new key or a new SecuPass: a fresh salt, at least MIN_ITERATIONS."""
    if not _is_int(iterations) or not MIN_ITERATIONS <= iterations <= MAX_ITERATIONS:
        raise ValueError(f"a new key needs {MIN_ITERATIONS} to {MAX_ITERATIONS} PBKDF2 iterations")
    return KdfParams(KDF_NAME, iterations, os.urandom(KDF_SALT_LEN))


def check_kdf_params(kdf: Any, iterations: Any, salt: Any) -> list[str]:
    """What is wrong with parameters a client submits for a new key (the server's check)."""
    problems = []
    if kdf != KDF_NAME:
        problems.append(f"The key derivation must be {KDF_NAME}.")
    if not _is_int(iterations) or not MIN_ITERATIONS <= iterations <= MAX_ITERATIONS:
        problems.append(
            f"The iteration count must be between {MIN_ITERATIONS} and {MAX_ITERATIONS}."
        )
    if not isinstance(salt, bytes) or len(salt) != KDF_SALT_LEN:
        problems.append(f"The salt must be {KDF_SALT_LEN} bytes.")
    return problems


@dataclass(frozen=True)
class DerivedKeys:
    root: bytes = field(repr=False)
    wrap_key: bytes = field(repr=False)
    keyring_key: bytes = field(repr=False)


def derive(
    secupass: str, salt: bytes, iterations: int, pepper: bytes, *, kdf: str = KDF_NAME
) -> DerivedKeys:
    """m = PBKDF2-HMAC-SHA256(NFC(SecuPass), salt, iterations); root, wrap and keyring keys.

    Any stored iteration count from 1 to MAX_ITERATIONS is honoured (new keys get at least
    MIN_ITERATIONS from :func:`new_kdf_params`).
    """
    if kdf != KDF_NAME:
        raise FormatError(f"the key derivation {kdf!r} is not supported")
    if not _is_int(iterations) or not 1 <= iterations <= MAX_ITERATIONS:
        raise FormatError(f"the iteration count must be between 1 and {MAX_ITERATIONS}")
    if not isinstance(salt, bytes | bytearray) or len(salt) != KDF_SALT_LEN:
        raise FormatError(f"the SecuPass salt must be {KDF_SALT_LEN} bytes")
    if not isinstance(pepper, bytes | bytearray) or len(pepper) != PEPPER_LEN:
        raise FormatError(f"the pepper must be {PEPPER_LEN} bytes")
    password = _nfc(secupass).encode()
    m = hashlib.pbkdf2_hmac("sha256", password, bytes(salt), iterations, 32)
    root = _hkdf(m, salt=bytes(pepper), info=_SECUPASS_INFO)
    return DerivedKeys(
        root=root,
        wrap_key=_hkdf(root, salt=b"", info=_WRAP_INFO),
        keyring_key=_hkdf(root, salt=b"", info=_KEYRING_INFO),
    )


# User keys and the private record.


@dataclass(frozen=True)
class UserKeys:
    ecdh: ec.EllipticCurvePrivateKey = field(repr=False)
    ecdsa: ec.EllipticCurvePrivateKey = field(repr=False)

    @property
    def ecdh_public(self) -> bytes:
        return _raw_public(self.ecdh.public_key())

    @property
    def ecdsa_public(self) -> bytes:
        return _raw_public(self.ecdsa.public_key())


def generate_user_keys() -> UserKeys:
    return UserKeys(
        ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    )


def _jwk(key: ec.EllipticCurvePrivateKey) -> str:
    raw = _raw_public(key.public_key())
    d = key.private_numbers().private_value.to_bytes(32, "big")
    x, y = b64u_encode(raw[1:33]), b64u_encode(raw[33:])
    return f'{{"crv":"P-256","d":"{b64u_encode(d)}","kty":"EC","x":"{x}","y":"{y}"}}'


def private_json(keys: UserKeys) -> bytes:
    """{"ecdh":JWK,"ecdsa":JWK}, each JWK exactly {"crv","d","kty","x","y"}, no whitespace."""
    return f'{{"ecdh":{_jwk(keys.ecdh)},"ecdsa":{_jwk(keys.ecdsa)}}}'.encode()


def seal_private_record(
    keys: UserKeys, wrap_key: bytes, key_id: IdLike, iv: bytes | None = None
) -> bytes:
    """iv || AES-256-GCM(wrap_key, iv, private_json, aad="sxf/v1/privkey" || key_id)."""
    iv = _nonce(iv)
    aead = AESGCM(_check_key(wrap_key, "wrap key"))
    return iv + aead.encrypt(iv, private_json(keys), _PRIVKEY_AAD + _id_bytes(key_id))


def _key_from_jwk(jwk: Any, expected_public: bytes) -> ec.EllipticCurvePrivateKey:
    """Only kty, crv, x, y and d count; d*G must be (x, y) and the stored public key."""
    if not isinstance(jwk, dict) or set(jwk) != _JWK_MEMBERS:
        raise ValueError("not a private JWK")
    if jwk["kty"] != "EC" or jwk["crv"] != "P-256":
        raise ValueError("not a P-256 key")
    x, y, d = (b64u_decode(jwk[name]) for name in ("x", "y", "d"))
    if not len(x) == len(y) == len(d) == 32:
        raise ValueError("a JWK value is not 32 bytes")
    key = ec.derive_private_key(int.from_bytes(d, "big"), ec.SECP256R1())
    computed = _raw_public(key.public_key())
    if computed != b"\x04" + x + y or computed != expected_public:
        raise ValueError("the private key does not match its public key")
    return key


def open_private_record(
    record: bytes,
    wrap_key: bytes,
    key_id: IdLike,
    ecdh_public: bytes,
    ecdsa_public: bytes,
) -> UserKeys:
    """The user's private keys; raises WrongSecuPass for any failure of the record."""
    wrap_key = _check_key(wrap_key, "wrap key")
    aad = _PRIVKEY_AAD + _id_bytes(key_id)
    _load_p256_public(ecdh_public)
    _load_p256_public(ecdsa_public)
    try:
        plain = AESGCM(wrap_key).decrypt(record[:NONCE_LEN], record[NONCE_LEN:], aad)
        document = _loads(plain)
        if not isinstance(document, dict) or set(document) != {"ecdh", "ecdsa"}:
            raise ValueError("not a private record")
        return UserKeys(
            ecdh=_key_from_jwk(document["ecdh"], bytes(ecdh_public)),
            ecdsa=_key_from_jwk(document["ecdsa"], bytes(ecdsa_public)),
        )
    except (InvalidTag, ValueError, TypeError, RecursionError, SXFError):
        raise WrongSecuPass() from None


# The keyring: pinned fingerprints per address.


def full_fingerprint_hex(email: str, ecdh_public: bytes, ecdsa_public: bytes) -> str:
    """The 64 hex digits of the full fingerprint hash, as keyrings pin it."""
    return sxf.fingerprint(email, ecdh_public, ecdsa_public).hex()


def _check_pins(pins: Any) -> dict[str, str]:
    if not isinstance(pins, dict):
        raise KeyringError("the keyring's pins are not a mapping")
    for address, pin in pins.items():
        if not isinstance(address, str) or not address or sxf.normalize_email(address) != address:
            raise KeyringError(f"the keyring address {address!r} is not normalised")
        if not isinstance(pin, str) or not _HEX64.fullmatch(pin):
            raise KeyringError(f"the keyring pin for {address} is not 64 lowercase hex digits")
    return dict(pins)


def _check_version(version: Any) -> int:
    if not _is_int(version) or not 1 <= version <= 2**53 - 1:
        raise KeyringError("the keyring version must be a whole number from 1")
    return version


def seal_keyring(
    pins: Mapping[str, str],
    version: int,
    keyring_key: bytes,
    key_id: IdLike,
    nonce: bytes | None = None,
) -> bytes:
    """nonce || AES-256-GCM(keyring_key, nonce, {"version","pins"}, aad="sxf/v1/keyring" || id)."""
    checked = _check_pins(dict(pins))
    document = {"version": _check_version(version), "pins": dict(sorted(checked.items()))}
    nonce = _nonce(nonce)
    aead = AESGCM(_check_key(keyring_key, "keyring key"))
    return nonce + aead.encrypt(nonce, _dumps(document), _KEYRING_AAD + _id_bytes(key_id))


def open_keyring(
    blob: bytes, keyring_key: bytes, key_id: IdLike, *, min_version: int | None = None
) -> tuple[int, dict[str, str]]:
    """(version, pins). ``min_version`` is the highest version this client saw for key_id."""
    aead = AESGCM(_check_key(keyring_key, "keyring key"))
    try:
        plain = aead.decrypt(blob[:NONCE_LEN], blob[NONCE_LEN:], _KEYRING_AAD + _id_bytes(key_id))
    except InvalidTag:
        raise KeyringError(
            "the keyring does not open: it belongs to another key or it was changed"
        ) from None
    try:
        document = _loads(plain)
    except ValueError:
        raise KeyringError("the keyring is not valid JSON") from None
    if not isinstance(document, dict) or set(document) != {"version", "pins"}:
        raise KeyringError("the keyring has exactly the members version and pins")
    version = _check_version(document["version"])
    pins = _check_pins(document["pins"])
    if min_version is not None and version < min_version:
        raise KeyringRollback(
            f"the server offered keyring version {version}, but version {min_version} was "
            "seen before: an older keyring is refused"
        )
    return version, pins


# Manifest and delivery signature.


def message_key(delivery_key: bytes, delivery_id: IdLike) -> bytes:
    """HKDF-SHA256(delivery_key, salt=empty, info="sxf/v1/message" || delivery_id)."""
    key = _check_key(delivery_key, "delivery key")
    return _hkdf(key, salt=b"", info=_MESSAGE_INFO + _id_bytes(delivery_id))


def commit(delivery_key: bytes, delivery_id: IdLike) -> bytes:
    """HKDF-SHA256(delivery_key, salt=empty, info="sxf/v1/commit" || delivery_id)."""
    key = _check_key(delivery_key, "delivery key")
    return _hkdf(key, salt=b"", info=_COMMIT_INFO + _id_bytes(delivery_id))


def _manifest_level(manifest: dict) -> int:
    members = set(manifest)
    for level, member in _LEVEL_MEMBER.items():
        if members == {"files", member}:
            return level
    raise ManifestError(
        "a manifest has the members files and message (level 4) or files and "
        "message_sha256 (level 3), nothing else"
    )


def _check_manifest(manifest: Any) -> int:
    """Check the shape of a manifest and return its level."""
    if not isinstance(manifest, dict):
        raise ManifestError("the manifest is not a JSON object")
    level = _manifest_level(manifest)
    if level == 4 and not isinstance(manifest["message"], str):
        raise ManifestError("the manifest's message is not text")
    if level == 3 and not (
        isinstance(manifest["message_sha256"], str) and _HEX64.fullmatch(manifest["message_sha256"])
    ):
        raise ManifestError("the manifest's message_sha256 is not 64 lowercase hex digits")
    files = manifest["files"]
    if not isinstance(files, list):
        raise ManifestError("the manifest's files are not a list")
    seen = set()
    for item in files:
        if not isinstance(item, dict) or set(item) != _FILE_MEMBERS:
            raise ManifestError(
                "each file in the manifest has exactly file_id, name, type, size and digest"
            )
        file_id = item["file_id"]
        if not isinstance(file_id, str) or not _UUID.fullmatch(file_id):
            raise ManifestError("a file_id in the manifest is not a lowercase UUID")
        if file_id in seen:
            raise ManifestError(f"the manifest lists file {file_id} twice")
        seen.add(file_id)
        if not isinstance(item["name"], str) or not item["name"]:
            raise ManifestError(f"the manifest has no name for file {file_id}")
        if not isinstance(item["type"], str):
            raise ManifestError(f"the manifest's type for file {file_id} is not text")
        if not _is_int(item["size"]) or not 0 <= item["size"] <= 2**53 - 1:
            raise ManifestError(f"the manifest's size for file {file_id} is not a whole number")
        if not isinstance(item["digest"], str) or not _HEX64.fullmatch(item["digest"]):
            raise ManifestError(f"the manifest's digest for file {file_id} is not 64 hex digits")
    return level


def seal_manifest(
    manifest: dict, delivery_key: bytes, delivery_id: IdLike, nonce: bytes | None = None
) -> bytes:
    """nonce || AES-256-GCM(message_key, nonce, json, aad="sxf/v1/message" || delivery_id).

    ``manifest`` is {"files": [{file_id, name, type, size, digest}], "message": str} at level
    4 or {"files": [...], "message_sha256": hex} at level 3. File ids may be UUIDs; names are
    NFC-normalised; members are written in a fixed order, as secupass.js writes them.
    """
    if not isinstance(manifest, dict) or not isinstance(manifest.get("files"), list):
        raise ManifestError("the manifest needs a list of files")
    files = []
    for item in manifest["files"]:
        if isinstance(item, dict) and set(item) == _FILE_MEMBERS:
            file_id, name = item["file_id"], item["name"]
            item = {
                "file_id": str(file_id) if isinstance(file_id, uuid.UUID) else file_id,
                "name": _nfc(name) if isinstance(name, str) else name,
                "type": item["type"],
                "size": item["size"],
                "digest": item["digest"],
            }
        files.append(item)
    document = {"files": files, **{k: v for k, v in manifest.items() if k != "files"}}
    _check_manifest(document)
    nonce = _nonce(nonce)
    aead = AESGCM(message_key(delivery_key, delivery_id))
    return nonce + aead.encrypt(nonce, _dumps(document), _MESSAGE_INFO + _id_bytes(delivery_id))


def open_manifest(
    blob: bytes,
    delivery_key: bytes,
    delivery_id: IdLike,
    level: int,
    files: Mapping[IdLike, int],
) -> dict:
    """Decrypt and check a manifest against the delivery's files {file_id: plaintext size}.

    It must list exactly those files, once each, with the sizes of their blob headers, and
    carry its level's member (message at 4, message_sha256 at 3) and not the other.
    """
    if level not in _LEVEL_MEMBER:
        raise ValueError("only level 3 and 4 deliveries have a manifest")
    aead = AESGCM(message_key(delivery_key, delivery_id))
    aad = _MESSAGE_INFO + _id_bytes(delivery_id)
    try:
        plain = aead.decrypt(blob[:NONCE_LEN], blob[NONCE_LEN:], aad)
    except InvalidTag:
        raise ManifestError(
            "the manifest does not open: it belongs to another delivery or it was changed"
        ) from None
    try:
        manifest = _loads(plain)
    except ValueError:
        raise ManifestError("the manifest is not valid JSON") from None
    if not isinstance(manifest, dict):
        raise ManifestError("the manifest is not a JSON object")
    member, other = _LEVEL_MEMBER[level], _LEVEL_MEMBER[7 - level]
    if other in manifest:
        raise ManifestError(f"a level {level} manifest must not carry {other}")
    if member not in manifest:
        raise ManifestError(f"a level {level} manifest must carry {member}")
    _check_manifest(manifest)
    expected = {str(_as_uuid(file_id)): size for file_id, size in files.items()}
    listed = {item["file_id"]: item["size"] for item in manifest["files"]}
    missing = sorted(expected.keys() - listed.keys())
    if missing:
        raise ManifestError(f"the manifest does not list file {missing[0]}")
    extra = sorted(listed.keys() - expected.keys())
    if extra:
        raise ManifestError(f"the manifest lists file {extra[0]}, which is not in the delivery")
    for file_id, size in expected.items():
        if listed[file_id] != size:
            raise ManifestError(
                f"the manifest says file {file_id} has {listed[file_id]} bytes, "
                f"but the stored file has {size}"
            )
    return manifest


def signed_bytes(delivery_id: IdLike, level: int, commit: bytes, manifest_blob: bytes) -> bytes:
    """ "sxf/v1/delivery" || delivery_id || uint8(level) || commit || SHA-256(manifest blob)."""
    if level not in _LEVEL_MEMBER:
        raise ValueError("only level 3 and 4 deliveries are signed")
    if len(commit) != 32:
        raise ValueError("a commit is 32 bytes")
    digest = hashlib.sha256(manifest_blob).digest()
    return _DELIVERY_PREFIX + _id_bytes(delivery_id) + bytes([level]) + bytes(commit) + digest


def sign(ecdsa_private: ec.EllipticCurvePrivateKey, data: bytes) -> bytes:
    """ECDSA-SHA256 over data, as 64 bytes r || s (the WebCrypto form)."""
    r, s = decode_dss_signature(ecdsa_private.sign(data, ec.ECDSA(hashes.SHA256())))
    return r.to_bytes(32, "big") + s.to_bytes(32, "big")


def verify(ecdsa_public: bytes, data: bytes, signature: bytes) -> bool:
    """Whether signature (64 bytes r || s) is ecdsa_public's ECDSA-SHA256 signature of data."""
    public = _load_p256_public(ecdsa_public)
    if not isinstance(signature, bytes | bytearray) or len(signature) != SIGNATURE_LEN:
        return False
    r, s = int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:], "big")
    if not (0 < r < _P256_ORDER and 0 < s < _P256_ORDER):
        return False
    try:
        public.verify(encode_dss_signature(r, s), data, ec.ECDSA(hashes.SHA256()))
    except InvalidSignature:
        return False
    return True


def sign_delivery(
    ecdsa_private: ec.EllipticCurvePrivateKey,
    delivery_id: IdLike,
    level: int,
    delivery_key: bytes,
    manifest_blob: bytes,
) -> bytes:
    """The sender's signature of a level 3/4 delivery."""
    data = signed_bytes(delivery_id, level, commit(delivery_key, delivery_id), manifest_blob)
    return sign(ecdsa_private, data)


def verify_delivery(
    ecdsa_public: bytes,
    signature: bytes,
    delivery_id: IdLike,
    level: int,
    delivery_key: bytes,
    manifest_blob: bytes,
) -> bool:
    """Check a delivery signature, recomputing commit from the unwrapped delivery key."""
    data = signed_bytes(delivery_id, level, commit(delivery_key, delivery_id), manifest_blob)
    return verify(ecdsa_public, data, signature)


# The pepper, wrapped under a server master key like a server entry.


def wrap_pepper(
    master_key: bytes, kek_id: str, key_id: IdLike, pepper: bytes, *, nonce: bytes | None = None
) -> dict:
    """{kind: "kek", kek_id, nonce, ct}: AES-256-GCM(master_key, nonce, pepper,
    aad="sxf/v1/pepper" || key_id)."""
    pepper = _check_key(pepper, "pepper")
    nonce = _nonce(nonce)
    aead = AESGCM(_check_key(master_key, "master key"))
    ct = aead.encrypt(nonce, pepper, _PEPPER_AAD + _id_bytes(key_id))
    return {"kind": "kek", "kek_id": kek_id, "nonce": b64u_encode(nonce), "ct": b64u_encode(ct)}


def unwrap_pepper(master_key: bytes, entry: dict, key_id: IdLike) -> bytes:
    """The pepper from an entry made by :func:`wrap_pepper`."""
    fields = _entry_bytes(entry, "kek", "kek_id", nonce=NONCE_LEN, ct=PEPPER_LEN + 16)
    aead = AESGCM(_check_key(master_key, "master key"))
    try:
        return aead.decrypt(fields["nonce"], fields["ct"], _PEPPER_AAD + _id_bytes(key_id))
    except InvalidTag:
        raise sxf.AuthenticationError(
            "the pepper entry does not open: wrong master key, another key, or changed"
        ) from None


def new_pepper() -> bytes:
    return os.urandom(PEPPER_LEN)


# Whole workflows over the key API's JSON (values in unpadded base64url).


@dataclass(frozen=True)
class Unlocked:
    key_id: str
    keys: UserKeys = field(repr=False)
    derived: DerivedKeys = field(repr=False)


def _pepper_bytes(pepper: bytes | str) -> bytes:
    return b64u_decode(pepper) if isinstance(pepper, str) else bytes(pepper)


def _fresh_record(
    keys: UserKeys, secupass: str, key_id: IdLike, pepper: bytes, iterations: int
) -> tuple[KdfParams, DerivedKeys, dict]:
    params = new_kdf_params(iterations)
    derived = derive(secupass, params.salt, params.iterations, pepper)
    record = seal_private_record(keys, derived.wrap_key, key_id)
    fields = {
        "kdf": params.kdf,
        "iterations": params.iterations,
        "salt": b64u_encode(params.salt),
        "private_record": b64u_encode(record),
    }
    return params, derived, fields


def create_key(
    secupass: str,
    key_id: IdLike,
    pepper: bytes | str,
    *,
    iterations: int = DEFAULT_ITERATIONS,
    login_password: str | None = None,
) -> tuple[Unlocked, dict]:
    """A new user key for an issued key_id and pepper: (unlocked, the register request body).

    Refuses a SecuPass the policy refuses (ValueError with the problems).
    """
    problems = check_secupass(secupass, login_password)
    if problems:
        raise ValueError(" ".join(problems))
    pepper = _pepper_bytes(pepper)
    keys = generate_user_keys()
    _, derived, fields = _fresh_record(keys, secupass, key_id, pepper, iterations)
    keyring = seal_keyring({}, 1, derived.keyring_key, key_id)
    body = {
        "ecdh_public": b64u_encode(keys.ecdh_public),
        "ecdsa_public": b64u_encode(keys.ecdsa_public),
        **fields,
        "keyring": b64u_encode(keyring),
    }
    return Unlocked(str(_as_uuid(key_id)), keys, derived), body


def unlock(secupass: str, key_info: Mapping[str, Any], pepper: bytes | str) -> Unlocked:
    """Open the private record of ``GET /api/v1/keys/mine`` (raises WrongSecuPass)."""
    derived = derive(
        secupass,
        b64u_decode(key_info["salt"]),
        key_info["iterations"],
        _pepper_bytes(pepper),
        kdf=key_info["kdf"],
    )
    keys = open_private_record(
        b64u_decode(key_info["private_record"]),
        derived.wrap_key,
        key_info["key_id"],
        b64u_decode(key_info["ecdh_public"]),
        b64u_decode(key_info["ecdsa_public"]),
    )
    return Unlocked(str(_as_uuid(key_info["key_id"])), keys, derived)


def change_secupass(
    old_secupass: str,
    new_secupass: str,
    key_info: Mapping[str, Any],
    pepper: bytes | str,
    *,
    iterations: int = DEFAULT_ITERATIONS,
    login_password: str | None = None,
    min_keyring_version: int | None = None,
) -> dict:
    """The body of ``POST /api/v1/keys/mine/change``: the same key under a new SecuPass.

    The private record and the keyring are re-encrypted with a new salt and new nonces; the
    keyring keeps its pins and its version grows by one.
    """
    problems = check_secupass(new_secupass, login_password)
    if problems:
        raise ValueError(" ".join(problems))
    pepper = _pepper_bytes(pepper)
    unlocked = unlock(old_secupass, key_info, pepper)
    version, pins = open_keyring(
        b64u_decode(key_info["keyring"]),
        unlocked.derived.keyring_key,
        unlocked.key_id,
        min_version=min_keyring_version,
    )
    _, derived, fields = _fresh_record(
        unlocked.keys, new_secupass, unlocked.key_id, pepper, iterations
    )
    keyring = seal_keyring(pins, version + 1, derived.keyring_key, unlocked.key_id)
    return {**fields, "keyring": b64u_encode(keyring), "keyring_version": version + 1}


__all__ = [
    "DEFAULT_ITERATIONS",
    "KDF_NAME",
    "MAX_ITERATIONS",
    "MIN_ITERATIONS",
    "MIN_SECUPASS_LENGTH",
    "DerivedKeys",
    "KdfParams",
    "KeyringError",
    "KeyringRollback",
    "ManifestError",
    "Unlocked",
    "UserKeys",
    "WrongSecuPass",
    "change_secupass",
    "check_kdf_params",
    "check_secupass",
    "commit",
    "create_key",
    "derive",
    "full_fingerprint_hex",
    "generate_user_keys",
    "message_key",
    "new_kdf_params",
    "new_pepper",
    "open_keyring",
    "open_manifest",
    "open_private_record",
    "private_json",
    "seal_keyring",
    "seal_manifest",
    "seal_private_record",
    "secupass_length",
    "sign",
    "sign_delivery",
    "signed_bytes",
    "unlock",
    "unwrap_pepper",
    "verify",
    "verify_delivery",
    "wrap_pepper",
]
