"""secupass/keys.py: SecuPass keys, keyrings, manifests and signatures (DESIGN.md section 4)."""

import hashlib
import hmac
import io
import json
import os
import re
import uuid

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature,
    encode_dss_signature,
)
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from secupass import keys, sxf
from secupass.sxf import b64u_decode, b64u_encode

SECUPASS = "Tr0ub4dor & 3 brave owls"
SALT = bytes(range(16))
PEPPER = bytes(range(100, 132))
FAST = 1000  # iterations where the test is not about the parameter
KEY_ID = uuid.UUID("3d5f0c1e-2b4a-4c6d-8e9f-0a1b2c3d4e5f")
DELIVERY = uuid.UUID("0b5a4c2e-8f21-4d1e-9a3b-5c6d7e8f9a0b")
DELIVERY_KEY = bytes(range(32))
FILE_A = "1111aaaa-2222-4333-8444-55555555bbbb"
FILE_B = "66666666-7777-4888-9999-aaaaaaaaaaaa"
N = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551
JWK = re.compile(
    r'\{"crv":"P-256","d":"[A-Za-z0-9_-]{43}","kty":"EC","x":"[A-Za-z0-9_-]{43}",'
    r'"y":"[A-Za-z0-9_-]{43}"\}'
)


@pytest.fixture(scope="module")
def derived():
    return keys.derive(SECUPASS, SALT, FAST, PEPPER)


@pytest.fixture(scope="module")
def user_keys():
    return keys.generate_user_keys()


def hkdf_sha256(ikm, salt, info):
    """RFC 5869 written out, to check the library against the specification."""
    prk = hmac.new(salt or bytes(32), ikm, hashlib.sha256).digest()
    return hmac.new(prk, info + b"\x01", hashlib.sha256).digest()


def flip(data, offset):
    changed = bytearray(data)
    changed[offset] ^= 0x01
    return bytes(changed)


def seal_json(document, wrap_key, key_id=KEY_ID):
    """A private record with arbitrary content, sealed the way a writer seals one."""
    data = document if isinstance(document, bytes) else json.dumps(document).encode()
    iv = os.urandom(12)
    return iv + AESGCM(wrap_key).encrypt(iv, data, b"sxf/v1/privkey" + uuid.UUID(str(key_id)).bytes)


def jwk(key, **changes):
    raw = key.public_key().public_bytes(Encoding.X962, PublicFormat.UncompressedPoint)
    d = key.private_numbers().private_value.to_bytes(32, "big")
    value = {"crv": "P-256", "d": b64u_encode(d), "kty": "EC"}
    value |= {"x": b64u_encode(raw[1:33]), "y": b64u_encode(raw[33:])}
    value.update(changes)
    return {k: v for k, v in value.items() if v is not None}


def open_record(record, derived, user_keys, key_id=KEY_ID, ecdh=None, ecdsa=None):
    return keys.open_private_record(
        record,
        derived.wrap_key,
        key_id,
        ecdh or user_keys.ecdh_public,
        ecdsa or user_keys.ecdsa_public,
    )


# Key derivation and the SecuPass policy.


def test_derive_follows_the_design():
    m = hashlib.pbkdf2_hmac("sha256", SECUPASS.encode(), SALT, FAST, 32)
    root = hkdf_sha256(m, PEPPER, b"sxf/v1/secupass")
    result = keys.derive(SECUPASS, SALT, FAST, PEPPER)
    assert result.root == root
    assert result.wrap_key == hkdf_sha256(root, b"", b"sxf/v1/privkey-wrap")
    assert result.keyring_key == hkdf_sha256(root, b"", b"sxf/v1/keyring")
    assert len({result.root, result.wrap_key, result.keyring_key}) == 3
    assert "wrap_key=" not in repr(result)
    assert result.root.hex() not in repr(result)


def test_derive_normalises_and_depends_on_every_input():
    base = keys.derive("Crème brûlée à la carte", SALT, FAST, PEPPER)
    decomposed = "Cre\u0300me bru\u0302le\u0301e a\u0300 la carte"
    assert keys.derive(decomposed, SALT, FAST, PEPPER) == base
    others = [
        keys.derive("Crème brûlée à la carte!", SALT, FAST, PEPPER),
        keys.derive("Crème brûlée à la carte", bytes(16), FAST, PEPPER),
        keys.derive("Crème brûlée à la carte", SALT, FAST + 1, PEPPER),
        keys.derive("Crème brûlée à la carte", SALT, FAST, bytes(32)),
    ]
    assert all(other.root != base.root for other in others)
    # Readers honour whatever count is stored, even one below today's minimum.
    assert keys.derive(SECUPASS, SALT, 1, PEPPER).root != base.root


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"kdf": "argon2id"}, "not supported"),
        ({"iterations": 0}, "iteration count"),
        ({"iterations": keys.MAX_ITERATIONS + 1}, "iteration count"),
        ({"iterations": True}, "iteration count"),
        ({"salt": bytes(15)}, "salt must be 16 bytes"),
        ({"pepper": bytes(31)}, "pepper must be 32 bytes"),
    ],
)
def test_derive_refuses_bad_parameters(kwargs, message):
    args = {"salt": SALT, "iterations": FAST, "pepper": PEPPER} | kwargs
    with pytest.raises(sxf.FormatError, match=message):
        keys.derive(SECUPASS, **args)


def test_new_keys_get_at_least_600000_iterations():
    params = keys.new_kdf_params()
    assert params.kdf == keys.KDF_NAME == "pbkdf2-sha256"
    assert params.iterations == keys.DEFAULT_ITERATIONS == 600_000
    assert len(params.salt) == 16
    assert keys.new_kdf_params().salt != params.salt
    assert keys.new_kdf_params(1_000_000).iterations == 1_000_000
    with pytest.raises(ValueError, match="600000"):
        keys.new_kdf_params(599_999)
    assert keys.check_kdf_params("pbkdf2-sha256", 600_000, bytes(16)) == []
    assert keys.check_kdf_params("pbkdf2-sha256", 1000, bytes(16)) == [
        "The iteration count must be between 600000 and 10000000."
    ]
    assert len(keys.check_kdf_params("scrypt", "600000", b"short")) == 3


@pytest.mark.parametrize(
    ("secupass", "ok"),
    [
        ("eleven char", False),
        ("twelve chars", True),
        ("e\u0301" * 6, False),  # 12 code points typed, 6 after NFC
        ("e\u0301" * 12, True),
        ("\u00e9" * 12, True),
        ("\U0001f989" * 11, False),  # 22 UTF-16 units, but 11 code points
        ("\U0001f989" * 12, True),
        ("", False),
    ],
)
def test_secupass_length_counts_code_points_after_nfc(secupass, ok):
    problems = keys.check_secupass(secupass)
    assert (problems == []) is ok
    if not ok:
        assert problems == [
            "The SecuPass must be at least 12 characters long "
            f"(this one has {keys.secupass_length(secupass)})."
        ]


def test_secupass_must_differ_from_the_login_password():
    same = "correct horse battery staple"
    assert keys.check_secupass(same, login_password=same) == [
        "The SecuPass must differ from your login password."
    ]
    assert keys.check_secupass("Ame\u0301lie's long secret", "Amélie's long secret") == [
        "The SecuPass must differ from your login password."
    ]
    assert keys.check_secupass(same, login_password=same.upper()) == []
    assert len(keys.check_secupass("short", login_password="short")) == 2


# The private record.


def test_private_json_is_exactly_the_design_form(user_keys):
    text = keys.private_json(user_keys).decode()
    assert re.fullmatch(r'\{"ecdh":' + JWK.pattern + ',"ecdsa":' + JWK.pattern + r"\}", text)
    document = json.loads(text)
    assert (
        b64u_decode(document["ecdh"]["x"]) + b64u_decode(document["ecdh"]["y"])
        == (user_keys.ecdh_public[1:])
    )
    assert document["ecdsa"] == jwk(user_keys.ecdsa)


def test_private_json_pads_short_values_to_32_bytes():
    small = keys.UserKeys(
        ec.derive_private_key(1, ec.SECP256R1()), ec.derive_private_key(2**200, ec.SECP256R1())
    )
    document = json.loads(keys.private_json(small))
    assert b64u_decode(document["ecdh"]["d"]) == (1).to_bytes(32, "big")
    assert b64u_decode(document["ecdsa"]["d"]) == (2**200).to_bytes(32, "big")


def test_private_record_round_trip(derived, user_keys):
    record = keys.seal_private_record(user_keys, derived.wrap_key, KEY_ID)
    assert len(record) == 12 + len(keys.private_json(user_keys)) + 16
    assert keys.seal_private_record(user_keys, derived.wrap_key, KEY_ID) != record
    opened = open_record(record, derived, user_keys)
    assert opened.ecdh_public == user_keys.ecdh_public
    assert opened.ecdsa_public == user_keys.ecdsa_public
    assert keys.private_json(opened) == keys.private_json(user_keys)
    # The same iv gives the same record: the layout is iv || ciphertext || tag.
    iv = bytes(12)
    fixed = keys.seal_private_record(user_keys, derived.wrap_key, str(KEY_ID), iv=iv)
    aad = b"sxf/v1/privkey" + KEY_ID.bytes
    assert fixed == iv + AESGCM(derived.wrap_key).encrypt(iv, keys.private_json(user_keys), aad)


def test_a_wrong_secupass_or_damaged_record_is_one_error(derived, user_keys):
    record = keys.seal_private_record(user_keys, derived.wrap_key, KEY_ID)
    wrong = keys.derive(SECUPASS + "!", SALT, FAST, PEPPER)
    other_pepper = keys.derive(SECUPASS, SALT, FAST, bytes(32))
    attempts = [
        lambda: open_record(record, wrong, user_keys),
        lambda: open_record(record, other_pepper, user_keys),
        lambda: open_record(flip(record, 3), derived, user_keys),  # iv
        lambda: open_record(flip(record, 40), derived, user_keys),  # ciphertext
        lambda: open_record(flip(record, len(record) - 1), derived, user_keys),  # tag
        lambda: open_record(record[:-1], derived, user_keys),
        lambda: open_record(record[:20], derived, user_keys),
        lambda: open_record(b"", derived, user_keys),
        lambda: open_record(record, derived, user_keys, key_id=uuid.uuid4()),
    ]
    for attempt in attempts:
        with pytest.raises(keys.WrongSecuPass) as caught:
            attempt()
        assert str(caught.value) == "wrong SecuPass"
        assert isinstance(caught.value, sxf.SXFError)


def test_a_record_that_does_not_match_its_public_keys_is_refused(derived, user_keys):
    other = keys.generate_user_keys()
    ecdh, ecdsa = user_keys.ecdh, user_keys.ecdsa
    x_of_other = jwk(other.ecdh)["x"]
    records = [
        # d belongs to another key than x and y.
        {"ecdh": jwk(ecdh, d=jwk(other.ecdh)["d"]), "ecdsa": jwk(ecdsa)},
        {"ecdh": jwk(ecdh), "ecdsa": jwk(ecdsa, d=jwk(other.ecdsa)["d"])},
        # x and y of another key with a matching d: d*G = (x, y), but not the stored key.
        {"ecdh": jwk(other.ecdh), "ecdsa": jwk(ecdsa)},
        {"ecdh": jwk(ecdh, x=x_of_other), "ecdsa": jwk(ecdsa)},
        # The two keys swapped.
        {"ecdh": jwk(ecdsa), "ecdsa": jwk(ecdh)},
        # Not the exact members, or not P-256.
        {"ecdh": jwk(ecdh, ext=True), "ecdsa": jwk(ecdsa)},
        {"ecdh": jwk(ecdh, key_ops=["deriveBits"]), "ecdsa": jwk(ecdsa)},
        {"ecdh": jwk(ecdh, y=None), "ecdsa": jwk(ecdsa)},
        {"ecdh": jwk(ecdh, kty="OKP"), "ecdsa": jwk(ecdsa)},
        {"ecdh": jwk(ecdh, crv="P-384"), "ecdsa": jwk(ecdsa)},
        {"ecdh": jwk(ecdh, d=b64u_encode(bytes(31) + b"\x01")), "ecdsa": jwk(ecdsa)},
        {"ecdh": jwk(ecdh, d=b64u_encode(bytes(32))), "ecdsa": jwk(ecdsa)},
        {"ecdh": jwk(ecdh, d=b64u_encode(N.to_bytes(32, "big"))), "ecdsa": jwk(ecdsa)},
        {"ecdh": jwk(ecdh, d=jwk(ecdh)["d"] + "="), "ecdsa": jwk(ecdsa)},
        {"ecdh": jwk(ecdh)},
        {"ecdh": jwk(ecdh), "ecdsa": jwk(ecdsa), "extra": 1},
        [jwk(ecdh), jwk(ecdsa)],
        b"not json",
        b"\xff\xfe",
    ]
    for document in records:
        with pytest.raises(keys.WrongSecuPass):
            open_record(seal_json(document, derived.wrap_key), derived, user_keys)
    # The same construction with the right values opens, so the refusals above are the checks.
    good = seal_json({"ecdh": jwk(ecdh), "ecdsa": jwk(ecdsa)}, derived.wrap_key)
    assert open_record(good, derived, user_keys).ecdh_public == user_keys.ecdh_public
    # A stored public key that is not the record's is refused too.
    record = keys.seal_private_record(user_keys, derived.wrap_key, KEY_ID)
    with pytest.raises(keys.WrongSecuPass):
        open_record(record, derived, user_keys, ecdh=other.ecdh_public)
    with pytest.raises(keys.WrongSecuPass):
        open_record(record, derived, user_keys, ecdsa=other.ecdsa_public)
    with pytest.raises(sxf.FormatError):
        open_record(record, derived, user_keys, ecdsa=user_keys.ecdsa_public[:33])


# The keyring.


def test_keyring_round_trip_and_layout(derived):
    pins = {
        "bob@example.org": "ab" * 32,
        "ärger@example.de": keys.full_fingerprint_hex(
            "Ärger@Example.DE", *(keys.generate_user_keys().ecdh_public for _ in range(2))
        ),
    }
    blob = keys.seal_keyring(pins, 7, derived.keyring_key, KEY_ID)
    assert keys.open_keyring(blob, derived.keyring_key, str(KEY_ID)) == (7, pins)
    nonce = bytes(range(12))
    fixed = keys.seal_keyring(pins, 7, derived.keyring_key, KEY_ID, nonce=nonce)
    plain = AESGCM(derived.keyring_key).decrypt(nonce, fixed[12:], b"sxf/v1/keyring" + KEY_ID.bytes)
    assert fixed[:12] == nonce
    assert json.loads(plain) == {"version": 7, "pins": pins}
    assert keys.open_keyring(
        keys.seal_keyring({}, 1, derived.keyring_key, KEY_ID), derived.keyring_key, KEY_ID
    ) == (1, {})


def test_keyring_refuses_rollback_other_keys_and_changes(derived):
    blob = keys.seal_keyring({"bob@example.org": "0" * 64}, 5, derived.keyring_key, KEY_ID)
    assert keys.open_keyring(blob, derived.keyring_key, KEY_ID, min_version=5)[0] == 5
    with pytest.raises(keys.KeyringRollback, match="version 5, but version 6"):
        keys.open_keyring(blob, derived.keyring_key, KEY_ID, min_version=6)
    with pytest.raises(keys.KeyringError, match="another key"):
        keys.open_keyring(blob, derived.keyring_key, uuid.uuid4())
    with pytest.raises(keys.KeyringError, match="another key"):
        keys.open_keyring(blob, derived.wrap_key, KEY_ID)
    with pytest.raises(keys.KeyringError, match="changed"):
        keys.open_keyring(flip(blob, 20), derived.keyring_key, KEY_ID)
    # Contents a client would not write are refused, even when they authenticate.
    for document in [
        {"version": 0, "pins": {}},
        {"version": "2", "pins": {}},
        {"version": 2, "pins": {"Bob@example.org": "0" * 64}},
        {"version": 2, "pins": {"bob@example.org": "0" * 63}},
        {"version": 2, "pins": {"bob@example.org": "A" * 64}},
        {"version": 2, "pins": []},
        {"version": 2},
        {"version": 2, "pins": {}, "extra": True},
    ]:
        nonce = os.urandom(12)
        sealed = nonce + AESGCM(derived.keyring_key).encrypt(
            nonce, json.dumps(document).encode(), b"sxf/v1/keyring" + KEY_ID.bytes
        )
        with pytest.raises(keys.KeyringError):
            keys.open_keyring(sealed, derived.keyring_key, KEY_ID)
    with pytest.raises(keys.KeyringError, match="not normalised"):
        keys.seal_keyring({"Bob@Example.org": "0" * 64}, 2, derived.keyring_key, KEY_ID)
    with pytest.raises(keys.KeyringError, match="version"):
        keys.seal_keyring({}, True, derived.keyring_key, KEY_ID)


# Manifest and signature.


def manifest(level=3, **changes):
    files = [
        {
            "file_id": FILE_A,
            "name": "Bericht.pdf",
            "type": "application/pdf",
            "size": 1000,
            "digest": "a" * 64,
        },
        {"file_id": FILE_B, "name": "leer.txt", "type": "", "size": 0, "digest": "b" * 64},
    ]
    value = {"files": files}
    if level == 3:
        value["message_sha256"] = hashlib.sha256(b"Hallo").hexdigest()
    else:
        value["message"] = "Geheime Nachricht"
    value.update(changes)
    return {k: v for k, v in value.items() if v is not None}


SIZES = {FILE_A: 1000, FILE_B: 0}


def seal_raw(document, delivery_id=DELIVERY, key=DELIVERY_KEY):
    """A manifest sealed without the writer's checks, as a hostile writer could."""
    nonce = os.urandom(12)
    aead = AESGCM(keys.message_key(key, delivery_id))
    data = json.dumps(document).encode()
    return nonce + aead.encrypt(nonce, data, b"sxf/v1/message" + uuid.UUID(str(delivery_id)).bytes)


def test_manifest_keys_follow_the_design():
    info = DELIVERY.bytes
    assert keys.message_key(DELIVERY_KEY, DELIVERY) == hkdf_sha256(
        DELIVERY_KEY, b"", b"sxf/v1/message" + info
    )
    assert keys.commit(DELIVERY_KEY, str(DELIVERY)) == hkdf_sha256(
        DELIVERY_KEY, b"", b"sxf/v1/commit" + info
    )


@pytest.mark.parametrize("level", [3, 4])
def test_manifest_round_trip(level):
    value = manifest(level)
    value["files"][0]["name"] = "Cafe\u0301.txt"
    value["files"][1]["file_id"] = uuid.UUID(FILE_B)
    blob = keys.seal_manifest(value, DELIVERY_KEY, DELIVERY)
    files = {uuid.UUID(FILE_A): 1000, FILE_B.upper(): 0}
    opened = keys.open_manifest(blob, DELIVERY_KEY, DELIVERY, level, files)
    assert opened["files"][0]["name"] == "Café.txt"
    assert opened["files"][1]["file_id"] == FILE_B
    assert list(opened) == ["files", "message_sha256" if level == 3 else "message"]
    assert list(opened["files"][0]) == ["file_id", "name", "type", "size", "digest"]
    nonce = bytes(12)
    fixed = keys.seal_manifest(value, DELIVERY_KEY, DELIVERY, nonce=nonce)
    plain = AESGCM(keys.message_key(DELIVERY_KEY, DELIVERY)).decrypt(
        nonce, fixed[12:], b"sxf/v1/message" + DELIVERY.bytes
    )
    assert plain == json.dumps(opened, ensure_ascii=False, separators=(",", ":")).encode()


def test_manifest_digest_is_the_blob_digest():
    content = os.urandom(70_000)
    encryptor = sxf.Encryptor(DELIVERY_KEY, DELIVERY, FILE_A, len(content))
    digest = sxf.BlobDigest()
    blob = b"".join(encryptor.encrypt_stream(io.BytesIO(content), digest=digest))
    expected = hashlib.sha256(b"sxf/v1/blob" + blob[:80])
    for start, size in ((80, 65536 + 16), (80 + 65536 + 16, 70_000 - 65536 + 16)):
        expected.update(hashlib.sha256(blob[start : start + size]).digest())
    entry = {
        "file_id": FILE_A,
        "name": "x.bin",
        "type": "application/octet-stream",
        "size": len(content),
        "digest": digest.hexdigest(),
    }
    assert digest.hexdigest() == expected.hexdigest()
    sealed = keys.seal_manifest({"files": [entry], "message": ""}, DELIVERY_KEY, DELIVERY)
    opened = keys.open_manifest(sealed, DELIVERY_KEY, DELIVERY, 4, {FILE_A: len(content)})
    assert opened == {"files": [entry], "message": ""}


def test_manifest_rejections():
    good = keys.seal_manifest(manifest(3), DELIVERY_KEY, DELIVERY)
    level4 = keys.seal_manifest(manifest(4), DELIVERY_KEY, DELIVERY)
    other_file = "12345678-1234-4234-8234-123456789abc"
    both = manifest(3, message="x")
    duplicate = manifest(3)
    duplicate["files"].append(dict(duplicate["files"][0]))
    cases = [
        (good, 4, SIZES, "level 4 manifest must not carry message_sha256"),
        (level4, 3, SIZES, "level 3 manifest must not carry message"),
        (seal_raw(manifest(3, message_sha256=None)), 3, SIZES, "must carry message_sha256"),
        (seal_raw(manifest(4, message=None)), 4, SIZES, "must carry message"),
        (seal_raw(both), 4, SIZES, "must not carry message_sha256"),
        (seal_raw(manifest(4, message=5)), 4, SIZES, "message is not text"),
        (seal_raw(manifest(3, message_sha256="AB" * 32)), 3, SIZES, "64 lowercase hex"),
        (seal_raw(manifest(3, note="x")), 3, SIZES, "nothing else"),
        (good, 3, {FILE_A: 1000}, f"lists file {FILE_B}, which is not in the delivery"),
        (good, 3, {**SIZES, other_file: 5}, f"does not list file {other_file}"),
        (good, 3, {FILE_A: 1001, FILE_B: 0}, "has 1000 bytes, but the stored file has 1001"),
        (seal_raw(duplicate), 3, SIZES, "twice"),
        (seal_raw(manifest(3, files=[{"file_id": FILE_A}])), 3, SIZES, "exactly file_id"),
        (seal_raw(manifest(3, files={})), 3, SIZES, "not a list"),
        (seal_raw([1]), 3, SIZES, "not a JSON object"),
        (seal_raw(manifest(3), delivery_id=uuid.uuid4()), 3, SIZES, "another delivery"),
        (seal_raw(manifest(3), key=bytes(32)), 3, SIZES, "another delivery"),
        (flip(good, 30), 3, SIZES, "changed"),
        (good[:27], 3, SIZES, "changed"),
    ]
    for blob, level, files, message in cases:
        with pytest.raises(keys.ManifestError, match=re.escape(message)):
            keys.open_manifest(blob, DELIVERY_KEY, DELIVERY, level, files)
    for field, value, message in [
        ("size", -1, "size"),
        ("size", 1.5, "size"),
        ("size", True, "size"),
        ("digest", "z" * 64, "digest"),
        ("name", "", "no name"),
        ("type", None, "type"),
        ("file_id", FILE_A.upper(), "lowercase UUID"),
    ]:
        bad = manifest(4)
        bad["files"][0][field] = value
        with pytest.raises(keys.ManifestError, match=message):
            keys.open_manifest(seal_raw(bad), DELIVERY_KEY, DELIVERY, 4, SIZES)
        with pytest.raises(keys.ManifestError, match=message):
            keys.seal_manifest(bad, DELIVERY_KEY, DELIVERY)
    with pytest.raises(ValueError, match="level 3 and 4"):
        keys.open_manifest(good, DELIVERY_KEY, DELIVERY, 2, SIZES)


def test_signed_bytes_layout():
    c = keys.commit(DELIVERY_KEY, DELIVERY)
    blob = b"manifest blob"
    data = keys.signed_bytes(DELIVERY, 4, c, blob)
    assert data == b"sxf/v1/delivery" + DELIVERY.bytes + b"\x04" + c + hashlib.sha256(blob).digest()
    with pytest.raises(ValueError, match="level 3 and 4"):
        keys.signed_bytes(DELIVERY, 2, c, blob)


def test_signatures(user_keys):
    blob = keys.seal_manifest(manifest(3), DELIVERY_KEY, DELIVERY)
    signature = keys.sign_delivery(user_keys.ecdsa, DELIVERY, 3, DELIVERY_KEY, blob)
    public = user_keys.ecdsa_public
    assert len(signature) == 64
    r, s = int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:], "big")
    user_keys.ecdsa.public_key().verify(
        encode_dss_signature(r, s),
        keys.signed_bytes(DELIVERY, 3, keys.commit(DELIVERY_KEY, DELIVERY), blob),
        ec.ECDSA(hashes.SHA256()),
    )
    assert keys.verify_delivery(public, signature, DELIVERY, 3, DELIVERY_KEY, blob)
    other_blob = keys.seal_manifest(manifest(3), DELIVERY_KEY, DELIVERY)
    other_key = os.urandom(32)
    refused = [
        (public, signature, DELIVERY, 4, DELIVERY_KEY, blob),  # another level
        (public, signature, DELIVERY, 3, DELIVERY_KEY, other_blob),  # another manifest
        (public, signature, DELIVERY, 3, other_key, blob),  # another delivery key (commit)
        (public, signature, uuid.uuid4(), 3, DELIVERY_KEY, blob),  # another delivery
        (user_keys.ecdh_public, signature, DELIVERY, 3, DELIVERY_KEY, blob),  # another key
        (public, flip(signature, 10), DELIVERY, 3, DELIVERY_KEY, blob),
        (public, flip(signature, 40), DELIVERY, 3, DELIVERY_KEY, blob),
        (public, signature[:63], DELIVERY, 3, DELIVERY_KEY, blob),
        (public, bytes(64), DELIVERY, 3, DELIVERY_KEY, blob),
        (public, N.to_bytes(32, "big") + signature[32:], DELIVERY, 3, DELIVERY_KEY, blob),
    ]
    assert [keys.verify_delivery(*args) for args in refused] == [False] * len(refused)
    # A DER signature (what cryptography returns) is not the wire form.
    data = keys.signed_bytes(DELIVERY, 3, keys.commit(DELIVERY_KEY, DELIVERY), blob)
    der = user_keys.ecdsa.sign(data, ec.ECDSA(hashes.SHA256()))
    assert keys.verify(public, data, der) is False
    r, s = decode_dss_signature(der)
    assert keys.verify(public, data, r.to_bytes(32, "big") + s.to_bytes(32, "big")) is True
    with pytest.raises(sxf.FormatError):
        keys.verify(public[:64], data, signature)


# Pepper and fingerprints.


def test_pepper_wrap():
    master = os.urandom(32)
    pepper = keys.new_pepper()
    entry = keys.wrap_pepper(master, "k2025", KEY_ID, pepper)
    assert set(entry) == {"kind", "kek_id", "nonce", "ct"}
    assert entry["kind"] == "kek"
    assert entry["kek_id"] == "k2025"
    sxf.validate_entry(entry)
    assert keys.unwrap_pepper(master, entry, str(KEY_ID)) == pepper
    nonce, ct = b64u_decode(entry["nonce"]), b64u_decode(entry["ct"])
    assert AESGCM(master).decrypt(nonce, ct, b"sxf/v1/pepper" + KEY_ID.bytes) == pepper
    with pytest.raises(sxf.AuthenticationError, match="another key"):
        keys.unwrap_pepper(master, entry, uuid.uuid4())
    with pytest.raises(sxf.AuthenticationError):
        keys.unwrap_pepper(os.urandom(32), entry, KEY_ID)
    # A delivery-key entry's aad differs, so neither opens as the other.
    with pytest.raises(sxf.AuthenticationError):
        sxf.unwrap_kek(master, entry, KEY_ID)
    with pytest.raises(sxf.FormatError):
        keys.unwrap_pepper(master, {**entry, "ct": entry["ct"][:-2]}, KEY_ID)


def test_full_fingerprint_hex(user_keys):
    full = keys.full_fingerprint_hex(
        "Bob@Example.org", user_keys.ecdh_public, user_keys.ecdsa_public
    )
    fp = sxf.fingerprint("bob@example.org", user_keys.ecdh_public, user_keys.ecdsa_public)
    assert full == fp.hex()
    assert re.fullmatch(r"[0-9a-f]{64}", full)
    assert sxf.format_fingerprint(fp).replace(" ", "") == full[:32]


# The workflows over the key API, at the real iteration count.


def test_create_unlock_and_change_the_secupass():
    key_id = str(uuid.uuid4())
    pepper = keys.new_pepper()
    with pytest.raises(ValueError, match="at least 12"):
        keys.create_key("too short", key_id, pepper)
    with pytest.raises(ValueError, match="login password"):
        keys.create_key(SECUPASS, key_id, pepper, login_password=SECUPASS)
    unlocked, body = keys.create_key(SECUPASS, key_id, b64u_encode(pepper))
    assert body["kdf"] == "pbkdf2-sha256"
    assert body["iterations"] == 600_000
    assert len(b64u_decode(body["salt"])) == 16
    assert b64u_decode(body["ecdh_public"]) == unlocked.keys.ecdh_public
    info = {"key_id": key_id, **body, "keyring_version": 1}
    assert keys.open_keyring(
        b64u_decode(body["keyring"]), unlocked.derived.keyring_key, key_id
    ) == (1, {})

    opened = keys.unlock(SECUPASS, info, pepper)
    assert keys.private_json(opened.keys) == keys.private_json(unlocked.keys)

    pins = {"bob@example.org": "c" * 64}
    info["keyring"] = b64u_encode(keys.seal_keyring(pins, 3, unlocked.derived.keyring_key, key_id))
    new = "a completely different SecuPass"
    change = keys.change_secupass(SECUPASS, new, info, pepper)
    assert set(change) == {
        "kdf",
        "iterations",
        "salt",
        "private_record",
        "keyring",
        "keyring_version",
    }
    assert change["salt"] != body["salt"]
    assert change["keyring_version"] == 4
    changed = {**info, **change}
    after = keys.unlock(new, changed, pepper)
    assert after.key_id == key_id
    assert keys.private_json(after.keys) == keys.private_json(unlocked.keys)
    keyring = b64u_decode(change["keyring"])
    assert keys.open_keyring(keyring, after.derived.keyring_key, key_id) == (4, pins)
    with pytest.raises(keys.WrongSecuPass):
        keys.unlock(SECUPASS, changed, pepper)
