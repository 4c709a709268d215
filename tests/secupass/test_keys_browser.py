"""static/js/secupass.js in Chromium against secupass/keys.py: keys, keyrings, manifests and
signatures made in one runtime open in the other."""

import base64
import hashlib
import json
import os
import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from secupass import keys, sxf
from secupass.sxf import b64u_decode, b64u_encode

pytestmark = pytest.mark.browser

JS_DIR = Path(__file__).resolve().parents[2] / "static" / "js"
MODULES = {"/secupass.js", "/sxf.js"}
SECUPASS = "Tr0ub4dor & 3 brave owls"
FAST = 1000  # iterations where the test is not about the parameter
KEY_ID = str(uuid.uuid4())
DELIVERY = str(uuid.uuid4())
FILE_A = str(uuid.uuid4())
FILE_B = str(uuid.uuid4())

# An ES module needs an http origin; bytes travel as base64 through evaluate().
TEST_PAGE = b"""<!doctype html>
<meta charset="utf-8">
<title>secupass.js</title>
<script type="module">
import * as sp from "/secupass.js";
import * as sxf from "/sxf.js";
window.sp = sp;
window.sxf = sxf;
window.fromB64 = (s) => Uint8Array.from(atob(s), (c) => c.charCodeAt(0));
window.toB64 = (bytes) => btoa(String.fromCharCode(...bytes));
window.utf8 = (bytes) => new TextDecoder().decode(bytes);
window.attempt = async (fn) => {
  try {
    await fn();
    return "ok";
  } catch (e) {
    return e instanceof sxf.SXFError ? `${e.name}: ${e.message}` : `unexpected ${e}`;
  }
};
window.ready = true;
</script>
"""


class Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        if self.path == "/":
            body, content_type = TEST_PAGE, "text/html; charset=utf-8"
        elif self.path in MODULES:
            body = (JS_DIR / self.path.lstrip("/")).read_bytes()
            content_type = "text/javascript; charset=utf-8"
        else:
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format, *args):
        pass


@pytest.fixture(scope="module")
def origin():
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    server.server_close()
    thread.join()


@pytest.fixture(scope="module")
def js(browser, origin):
    context = browser.new_context()
    page = context.new_page()
    page.set_default_timeout(30_000)
    page.goto(origin + "/")
    page.wait_for_function("window.ready === true")
    yield page
    context.close()


@pytest.fixture(scope="module")
def salt():
    return os.urandom(16)


@pytest.fixture(scope="module")
def pepper():
    return os.urandom(32)


@pytest.fixture(scope="module")
def derived(salt, pepper):
    return keys.derive(SECUPASS, salt, FAST, pepper)


def b64(data):
    return base64.b64encode(data).decode("ascii")


def unb64(text):
    return base64.b64decode(text)


def flip(data, offset):
    changed = bytearray(data)
    changed[offset] ^= 0x01
    return bytes(changed)


def jwk(key, **changes):
    raw = key.public_key().public_bytes(Encoding.X962, PublicFormat.UncompressedPoint)
    d = key.private_numbers().private_value.to_bytes(32, "big")
    value = {"crv": "P-256", "d": b64u_encode(d), "kty": "EC"}
    value |= {"x": b64u_encode(raw[1:33]), "y": b64u_encode(raw[33:])}
    return value | changes


def seal_raw(document, key, aad):
    nonce = os.urandom(12)
    return nonce + AESGCM(key).encrypt(nonce, json.dumps(document).encode(), aad)


def outcome(fn):
    try:
        fn()
    except sxf.SXFError as error:
        return f"{type(error).__name__}: {error}"
    return "ok"


def test_derive_gives_identical_bytes(js):
    cases = [
        (SECUPASS, os.urandom(16), FAST, os.urandom(32)),
        ("Cre\u0300me bru\u0302le\u0301e a\u0300 la carte", os.urandom(16), 1, os.urandom(32)),
        ("\U0001f989 owls at night \u00df", os.urandom(16), 2500, os.urandom(32)),
    ]
    result = js.evaluate(
        """async (cases) => Promise.all(cases.map(async ([secupass, salt, n, pepper]) => {
            const d = await sp.derive(secupass, fromB64(salt), n, fromB64(pepper));
            return [toB64(d.root), toB64(d.wrapKey), toB64(d.keyringKey)];
        }))""",
        [[s, b64(salt), n, b64(pepper)] for s, salt, n, pepper in cases],
    )
    for (secupass, salt, n, pepper), item in zip(cases, result, strict=True):
        expected = keys.derive(secupass, salt, n, pepper)
        assert [unb64(v) for v in item] == [expected.root, expected.wrap_key, expected.keyring_key]
    refused = js.evaluate(
        """async () => Promise.all([
            attempt(() => sp.derive("x", new Uint8Array(15), 1, new Uint8Array(32))),
            attempt(() => sp.derive("x", new Uint8Array(16), 0, new Uint8Array(32))),
            attempt(() => sp.derive("x", new Uint8Array(16), 1e8, new Uint8Array(32))),
            attempt(() => sp.derive("x", new Uint8Array(16), 1, new Uint8Array(31))),
            attempt(() => sp.derive("x", new Uint8Array(16), 1, new Uint8Array(32), "scrypt")),
        ])"""
    )
    assert [r.split(":")[0] for r in refused] == ["FormatError"] * 5


def test_secupass_policy_agrees(js):
    cases = [
        ["eleven char", None],
        ["twelve chars", None],
        ["e\u0301" * 6, None],
        ["e\u0301" * 12, None],
        ["\U0001f989" * 11, None],
        ["\U0001f989" * 12, None],
        ["correct horse battery", "correct horse battery"],
        ["Ame\u0301lie's long secret", "Amélie's long secret"],
        ["short", "short"],
        ["correct horse battery", "Correct horse battery"],
    ]
    result = js.evaluate(
        """(cases) => cases.map(
            ([s, login]) => [sp.secuPassLength(s), sp.checkSecuPass(s, login)])""",
        cases,
    )
    expected = [[keys.secupass_length(s), keys.check_secupass(s, login)] for s, login in cases]
    assert result == expected
    assert [problems == [] for _, problems in result] == [
        False,
        True,
        False,
        True,
        False,
        True,
        False,
        False,
        False,
        True,
    ]
    translated = js.evaluate(
        """() => sp.checkSecuPass("kurz", "kurz", {
            tooShort: "Mindestens {min} Zeichen, nicht {length}.",
            sameAsPassword: "Nicht das Anmeldepasswort.",
        })"""
    )
    assert translated == ["Mindestens 12 Zeichen, nicht 4.", "Nicht das Anmeldepasswort."]
    params = js.evaluate(
        """async () => {
            const p = sp.newKdfParams();
            const weak = await attempt(() => sp.newKdfParams(599999));
            return [p.kdf, p.iterations, p.salt.length, weak];
        }"""
    )
    assert params == [
        "pbkdf2-sha256",
        600_000,
        16,
        "unexpected RangeError: a new key needs 600000 to 10000000 iterations",
    ]


def test_javascript_key_opens_in_python(js, salt, pepper, derived):
    result = js.evaluate(
        """async ({secupass, salt, n, pepper, keyId, deliveryId}) => {
            const d = await sp.derive(secupass, fromB64(salt), n, fromB64(pepper));
            const k = await sp.generateUserKeys();
            const entryKey = crypto.getRandomValues(new Uint8Array(32));
            return {
                ecdh: toB64(k.ecdhPublic),
                ecdsa: toB64(k.ecdsaPublic),
                record: toB64(await sp.sealPrivateRecord(k, d.wrapKey, keyId)),
                fixed: toB64(await sp.sealPrivateRecord(k, d.wrapKey, keyId, new Uint8Array(12))),
                json: utf8(await sp.privateJson(k)),
                signature: toB64(await sp.sign(k.ecdsa, new TextEncoder().encode("hello"))),
                entry: await sxf.wrapP256(k.ecdhPublic, keyId, deliveryId, entryKey),
                entryKey: toB64(entryKey),
            };
        }""",
        {
            "secupass": SECUPASS,
            "salt": b64(salt),
            "n": FAST,
            "pepper": b64(pepper),
            "keyId": KEY_ID,
            "deliveryId": DELIVERY,
        },
    )
    ecdh, ecdsa = unb64(result["ecdh"]), unb64(result["ecdsa"])
    opened = keys.open_private_record(
        unb64(result["record"]), derived.wrap_key, KEY_ID, ecdh, ecdsa
    )
    assert opened.ecdh_public == ecdh
    assert opened.ecdsa_public == ecdsa
    # Both runtimes write the same JSON and, with the same iv, the same record.
    assert keys.private_json(opened).decode() == result["json"]
    fixed = keys.seal_private_record(opened, derived.wrap_key, KEY_ID, iv=bytes(12))
    assert fixed == unb64(result["fixed"])
    # The opened private keys work: the ECDH key unwraps, the signature verifies.
    assert sxf.unwrap_p256(opened.ecdh, result["entry"], DELIVERY) == unb64(result["entryKey"])
    assert keys.verify(ecdsa, b"hello", unb64(result["signature"]))
    assert not keys.verify(ecdsa, b"hellO", unb64(result["signature"]))
    wrong = keys.derive(SECUPASS + " ", salt, FAST, pepper)
    with pytest.raises(keys.WrongSecuPass):
        keys.open_private_record(unb64(result["record"]), wrong.wrap_key, KEY_ID, ecdh, ecdsa)


def test_python_key_opens_in_javascript(js, salt, pepper, derived):
    user = keys.generate_user_keys()
    record = keys.seal_private_record(user, derived.wrap_key, KEY_ID)
    delivery_key = os.urandom(32)
    key_info = {
        "key_id": KEY_ID,
        "kdf": keys.KDF_NAME,
        "iterations": FAST,
        "salt": b64u_encode(salt),
        "ecdh_public": b64u_encode(user.ecdh_public),
        "ecdsa_public": b64u_encode(user.ecdsa_public),
        "private_record": b64u_encode(record),
    }
    result = js.evaluate(
        """async ({secupass, info, pepper, entry, deliveryId}) => {
            const unlocked = await sp.unlock(secupass, info, pepper);
            const again = await sp.unlock(secupass, info, sxf.b64uDecode(pepper),
                                          {extractable: true});
            const data = new TextEncoder().encode("signed in the browser");
            return {
                keyId: unlocked.keyId,
                extractable: [unlocked.ecdh.privateKey.extractable,
                              unlocked.ecdsa.privateKey.extractable],
                deliveryKey: toB64(await sxf.unwrapP256(unlocked.ecdh, entry, deliveryId)),
                signature: toB64(await sp.sign(unlocked.ecdsa, data)),
                json: utf8(await sp.privateJson(again)),
                wrapKey: toB64(unlocked.derived.wrapKey),
            };
        }""",
        {
            "secupass": SECUPASS,
            "info": key_info,
            "pepper": b64u_encode(pepper),
            "entry": sxf.wrap_p256(user.ecdh_public, KEY_ID, DELIVERY, delivery_key),
            "deliveryId": DELIVERY,
        },
    )
    assert result["keyId"] == KEY_ID
    assert result["extractable"] == [False, False]
    assert unb64(result["deliveryKey"]) == delivery_key
    assert keys.verify(user.ecdsa_public, b"signed in the browser", unb64(result["signature"]))
    assert result["json"] == keys.private_json(user).decode()
    assert unb64(result["wrapKey"]) == derived.wrap_key


def test_javascript_refuses_bad_records_with_one_error(js, salt, pepper, derived):
    user, other = keys.generate_user_keys(), keys.generate_user_keys()
    aad = b"sxf/v1/privkey" + uuid.UUID(KEY_ID).bytes
    record = keys.seal_private_record(user, derived.wrap_key, KEY_ID)
    ecdh, ecdsa = user.ecdh, user.ecdsa

    def crafted(document):
        return seal_raw(document, derived.wrap_key, aad)

    good = crafted({"ecdh": jwk(ecdh), "ecdsa": jwk(ecdsa)})
    cases = [
        (record, SECUPASS, KEY_ID, user),
        (good, SECUPASS, KEY_ID, user),
        (record, SECUPASS + "!", KEY_ID, user),
        (flip(record, 5), SECUPASS, KEY_ID, user),
        (flip(record, len(record) - 3), SECUPASS, KEY_ID, user),
        (record[:40], SECUPASS, KEY_ID, user),
        (record, SECUPASS, str(uuid.uuid4()), user),
        (record, SECUPASS, KEY_ID, keys.UserKeys(other.ecdh, ecdsa)),
        (record, SECUPASS, KEY_ID, keys.UserKeys(ecdh, other.ecdsa)),
        (
            crafted({"ecdh": jwk(ecdh, d=jwk(other.ecdh)["d"]), "ecdsa": jwk(ecdsa)}),
            SECUPASS,
            KEY_ID,
            user,
        ),
        (
            crafted({"ecdh": jwk(ecdh), "ecdsa": jwk(ecdsa, d=jwk(other.ecdsa)["d"])}),
            SECUPASS,
            KEY_ID,
            user,
        ),
        (crafted({"ecdh": jwk(ecdh, ext=True), "ecdsa": jwk(ecdsa)}), SECUPASS, KEY_ID, user),
        (
            crafted({"ecdh": jwk(ecdh, key_ops=["sign"]), "ecdsa": jwk(ecdsa)}),
            SECUPASS,
            KEY_ID,
            user,
        ),
        (crafted({"ecdh": jwk(ecdh), "ecdsa": jwk(ecdsa, crv="P-384")}), SECUPASS, KEY_ID, user),
        (crafted({"ecdh": jwk(ecdsa), "ecdsa": jwk(ecdh)}), SECUPASS, KEY_ID, user),
        (crafted({"ecdh": jwk(ecdh)}), SECUPASS, KEY_ID, user),
        (crafted([jwk(ecdh), jwk(ecdsa)]), SECUPASS, KEY_ID, user),
        (seal_raw("a JSON string", derived.wrap_key, aad), SECUPASS, KEY_ID, user),
    ]

    def python_outcome(blob, secupass, key_id, stored):
        d = keys.derive(secupass, salt, FAST, pepper)
        return outcome(
            lambda: keys.open_private_record(
                blob, d.wrap_key, key_id, stored.ecdh_public, stored.ecdsa_public
            )
        )

    expected = [python_outcome(*case) for case in cases]
    assert expected[:2] == ["ok", "ok"]
    assert set(expected[2:]) == {"WrongSecuPass: wrong SecuPass"}
    result = js.evaluate(
        """async ({cases, salt, pepper, n}) => {
            const out = [];
            for (const [record, secupass, keyId, ecdh, ecdsa] of cases) {
                const d = await sp.derive(secupass, fromB64(salt), n, fromB64(pepper));
                out.push(await attempt(() => sp.openPrivateRecord(
                    fromB64(record), d.wrapKey, keyId, fromB64(ecdh), fromB64(ecdsa))));
            }
            return out;
        }""",
        {
            "cases": [
                [b64(blob), s, key_id, b64(u.ecdh_public), b64(u.ecdsa_public)]
                for blob, s, key_id, u in cases
            ],
            "salt": b64(salt),
            "pepper": b64(pepper),
            "n": FAST,
        },
    )
    assert result == expected


def test_keyrings_both_ways(js, derived):
    pins = {
        "bob@example.org": "0f" * 32,
        "zoë@example.de": "1e" * 32,
        "alice@example.org": "2d" * 32,
    }
    python_blob = keys.seal_keyring(pins, 5, derived.keyring_key, KEY_ID)
    fixed_nonce = os.urandom(12)
    result = js.evaluate(
        """async ({pins, key, keyId, nonce, blob}) => {
            const k = fromB64(key);
            const other = crypto.randomUUID();
            const opened = await sp.openKeyring(fromB64(blob), k, keyId, {minVersion: 5});
            return {
                sealed: toB64(await sp.sealKeyring(pins, 3, k, keyId)),
                fixed: toB64(await sp.sealKeyring(pins, 3, k, keyId, fromB64(nonce))),
                opened: [opened.version, opened.pins],
                rollback: await attempt(() => sp.openKeyring(fromB64(blob), k, keyId,
                                                           {minVersion: 6})),
                otherKey: await attempt(() => sp.openKeyring(fromB64(blob), k, other)),
                badPin: await attempt(() => sp.sealKeyring({"Bob@example.org": "0".repeat(64)},
                                                           4, k, keyId)),
            };
        }""",
        {
            "pins": pins,
            "key": b64(derived.keyring_key),
            "keyId": KEY_ID,
            "nonce": b64(fixed_nonce),
            "blob": b64(python_blob),
        },
    )
    sealed = unb64(result["sealed"])
    assert keys.open_keyring(sealed, derived.keyring_key, KEY_ID, min_version=3) == (3, pins)
    with pytest.raises(keys.KeyringRollback):
        keys.open_keyring(sealed, derived.keyring_key, KEY_ID, min_version=4)
    fixed = keys.seal_keyring(pins, 3, derived.keyring_key, KEY_ID, nonce=fixed_nonce)
    assert unb64(result["fixed"]) == fixed
    assert result["opened"] == [5, pins]
    assert result["rollback"] == (
        "KeyringRollback: the server offered keyring version 5, but version 6 was seen "
        "before: an older keyring is refused"
    )
    assert result["otherKey"].startswith("KeyringError: the keyring does not open")
    assert result["badPin"].startswith("KeyringError: the keyring address")


def manifest_for(level, message="Geheime Nachricht"):
    value = {
        "files": [
            {
                "file_id": FILE_A,
                "name": "Cafe\u0301 Bericht.pdf",
                "type": "application/pdf",
                "size": 200_000,
                "digest": hashlib.sha256(b"a").hexdigest(),
            },
            {
                "file_id": FILE_B,
                "name": "leer.txt",
                "type": "text/plain",
                "size": 0,
                "digest": hashlib.sha256(b"b").hexdigest(),
            },
        ]
    }
    if level == 4:
        value["message"] = message
    else:
        value["message_sha256"] = hashlib.sha256(message.encode()).hexdigest()
    return value


SIZES = {FILE_A: 200_000, FILE_B: 0}


def test_manifest_and_signature_made_in_javascript_verify_in_python(js):
    delivery_key = os.urandom(32)
    nonce = os.urandom(12)
    result = js.evaluate(
        """async ({manifests, key, deliveryId, nonce}) => {
            const k = fromB64(key);
            const signer = await sp.generateUserKeys();
            const out = {public: toB64(signer.ecdsaPublic), levels: []};
            for (const [level, manifest] of manifests) {
                const blob = await sp.sealManifest(manifest, k, deliveryId);
                out.levels.push({
                    blob: toB64(blob),
                    fixed: toB64(await sp.sealManifest(manifest, k, deliveryId, fromB64(nonce))),
                    signature: toB64(await sp.signDelivery(signer.ecdsa, deliveryId, level, k,
                                                           blob)),
                });
            }
            out.messageKey = toB64(await sp.messageKey(k, deliveryId));
            out.commit = toB64(await sp.commit(k, deliveryId));
            return out;
        }""",
        {
            "manifests": [[3, manifest_for(3)], [4, manifest_for(4)]],
            "key": b64(delivery_key),
            "deliveryId": DELIVERY,
            "nonce": b64(nonce),
        },
    )
    public = unb64(result["public"])
    assert unb64(result["messageKey"]) == keys.message_key(delivery_key, DELIVERY)
    assert unb64(result["commit"]) == keys.commit(delivery_key, DELIVERY)
    for level, item in zip((3, 4), result["levels"], strict=True):
        blob, signature = unb64(item["blob"]), unb64(item["signature"])
        opened = keys.open_manifest(blob, delivery_key, DELIVERY, level, SIZES)
        assert opened["files"][0]["name"] == "Café Bericht.pdf"
        if level == 4:
            assert opened["message"] == "Geheime Nachricht"
        else:
            assert opened["message_sha256"] == hashlib.sha256(b"Geheime Nachricht").hexdigest()
        assert unb64(item["fixed"]) == keys.seal_manifest(
            manifest_for(level), delivery_key, DELIVERY, nonce=nonce
        )
        assert keys.verify_delivery(public, signature, DELIVERY, level, delivery_key, blob)
        assert not keys.verify_delivery(public, signature, DELIVERY, 7 - level, delivery_key, blob)
        with pytest.raises(keys.ManifestError, match=f"level {7 - level} manifest must"):
            keys.open_manifest(blob, delivery_key, DELIVERY, 7 - level, SIZES)
    # The level 3 signature does not cover the level 4 manifest.
    four = unb64(result["levels"][1]["blob"])
    sig3 = unb64(result["levels"][0]["signature"])
    assert not keys.verify_delivery(public, sig3, DELIVERY, 3, delivery_key, four)


def test_manifest_and_signature_made_in_python_verify_in_javascript(js):
    delivery_key = os.urandom(32)
    signer = keys.generate_user_keys()
    aad = b"sxf/v1/message" + uuid.UUID(DELIVERY).bytes
    mkey = keys.message_key(delivery_key, DELIVERY)
    blob3 = keys.seal_manifest(manifest_for(3), delivery_key, DELIVERY)
    blob4 = keys.seal_manifest(manifest_for(4, message=""), delivery_key, DELIVERY)
    both = manifest_for(3) | {"message": "x"}
    extra_file = manifest_for(4)
    extra_file["files"].append(dict(extra_file["files"][1], file_id=str(uuid.uuid4())))
    duplicate = manifest_for(4)
    duplicate["files"].append(dict(duplicate["files"][1]))
    other = str(uuid.uuid4())
    # (blob, level, files): outcomes are computed by Python and must be the same in JavaScript.
    manifest_cases = [
        (blob3, 3, SIZES),
        (blob4, 4, SIZES),
        (blob3, 4, SIZES),
        (blob4, 3, SIZES),
        (blob3, 3, {FILE_A: 200_000}),
        (blob3, 3, SIZES | {other: 1}),
        (blob3, 3, {FILE_A: 200_001, FILE_B: 0}),
        (blob4, 4, {FILE_A: 200_000, FILE_B: 1}),
        (seal_raw(both, mkey, aad), 3, SIZES),
        (seal_raw(manifest_for(4) | {"message": None}, mkey, aad), 4, SIZES),
        (seal_raw(extra_file, mkey, aad), 4, SIZES),
        (seal_raw(duplicate, mkey, aad), 4, SIZES),
        (seal_raw({"files": manifest_for(4)["files"]}, mkey, aad), 4, SIZES),
        (seal_raw(manifest_for(4) | {"note": ""}, mkey, aad), 4, SIZES),
        (flip(blob3, 40), 3, SIZES),
        (seal_raw(manifest_for(3), mkey, b"sxf/v1/message" + os.urandom(16)), 3, SIZES),
    ]
    expected = [
        outcome(lambda b=b, lv=lv, f=f: keys.open_manifest(b, delivery_key, DELIVERY, lv, f))
        for b, lv, f in manifest_cases
    ]
    assert expected[:2] == ["ok", "ok"]
    assert all(e.startswith("ManifestError") for e in expected[2:])

    signature = keys.sign_delivery(signer.ecdsa, DELIVERY, 4, delivery_key, blob4)
    signature_cases = [
        (signature, 4, delivery_key, blob4, signer.ecdsa_public),
        (signature, 3, delivery_key, blob4, signer.ecdsa_public),
        (signature, 4, delivery_key, blob3, signer.ecdsa_public),
        (signature, 4, os.urandom(32), blob4, signer.ecdsa_public),
        (signature, 4, delivery_key, blob4, signer.ecdh_public),
        (flip(signature, 63), 4, delivery_key, blob4, signer.ecdsa_public),
        (signature[:-1], 4, delivery_key, blob4, signer.ecdsa_public),
    ]
    result = js.evaluate(
        """async ({key, deliveryId, manifests, signatures}) => {
            const k = fromB64(key);
            const opened = [];
            for (const [blob, level, files] of manifests) {
                opened.push(await attempt(() => sp.openManifest(fromB64(blob), k, deliveryId,
                                                                level, files)));
            }
            const content = await sp.openManifest(fromB64(manifests[1][0]), k, deliveryId, 4,
                                                  new Map(Object.entries(manifests[1][2])));
            const verified = [];
            for (const [sig, level, dkey, blob, pub] of signatures) {
                verified.push(await sp.verifyDelivery(fromB64(pub), fromB64(sig), deliveryId,
                                                      level, fromB64(dkey), fromB64(blob)));
            }
            return {opened, content, verified};
        }""",
        {
            "key": b64(delivery_key),
            "deliveryId": DELIVERY,
            "manifests": [[b64(b), lv, f] for b, lv, f in manifest_cases],
            "signatures": [
                [b64(s), lv, b64(k), b64(b), b64(p)] for s, lv, k, b, p in signature_cases
            ],
        },
    )
    assert result["opened"] == expected
    assert result["content"] == keys.open_manifest(blob4, delivery_key, DELIVERY, 4, SIZES)
    assert result["content"]["message"] == ""
    assert result["verified"] == [True] + [False] * (len(signature_cases) - 1)


def test_key_creation_and_secupass_change_across_runtimes(js):
    """The full-strength workflows (600,000 iterations) of the key pages and the CLI."""
    key_id = str(uuid.uuid4())
    pepper = keys.new_pepper()
    first, second, third = SECUPASS, "a second SecuPass, longer", "dritter SecuPass ßüä"
    created = js.evaluate(
        """async ({secupass, keyId, pepper}) => {
            const refused = await attempt(() => sp.createKey("short", keyId, pepper));
            const {unlocked, body} = await sp.createKey(secupass, keyId, pepper);
            return {body, refused, keyringKey: toB64(unlocked.derived.keyringKey)};
        }""",
        {"secupass": first, "keyId": key_id, "pepper": b64u_encode(pepper)},
    )
    assert created["refused"].startswith("unexpected RangeError: The SecuPass must be at least")
    body = created["body"]
    assert body["kdf"] == "pbkdf2-sha256"
    assert body["iterations"] == 600_000
    info = {"key_id": key_id, **body}
    unlocked = keys.unlock(first, info, pepper)
    assert unlocked.keys.ecdh_public == b64u_decode(body["ecdh_public"])
    assert unlocked.derived.keyring_key == unb64(created["keyringKey"])
    keyring = b64u_decode(body["keyring"])
    assert keys.open_keyring(keyring, unlocked.derived.keyring_key, key_id) == (1, {})

    # Python (the CLI) changes the SecuPass, the browser unlocks and changes it again.
    info["keyring"] = b64u_encode(
        keys.seal_keyring({"bob@example.org": "ab" * 32}, 2, unlocked.derived.keyring_key, key_id)
    )
    info |= keys.change_secupass(first, second, info, pepper)
    changed = js.evaluate(
        """async ({info, old, secupass, next, pepper}) => {
            const wrong = await attempt(() => sp.unlock(old, info, pepper));
            const unlocked = await sp.unlock(secupass, info, pepper);
            const ring = await sp.openKeyring(sxf.b64uDecode(info.keyring),
                                              unlocked.derived.keyringKey, info.key_id);
            const change = await sp.changeSecuPass(secupass, next, info, pepper,
                                                   {minKeyringVersion: ring.version});
            return {wrong, ring: [ring.version, ring.pins], change};
        }""",
        {
            "info": info,
            "old": first,
            "secupass": second,
            "next": third,
            "pepper": b64u_encode(pepper),
        },
    )
    assert changed["wrong"] == "WrongSecuPass: wrong SecuPass"
    assert changed["ring"] == [3, {"bob@example.org": "ab" * 32}]
    change = changed["change"]
    assert change["keyring_version"] == 4
    assert change["iterations"] == 600_000
    info |= change
    final = keys.unlock(third, info, pepper)
    assert keys.private_json(final.keys) == keys.private_json(unlocked.keys)
    assert keys.open_keyring(
        b64u_decode(info["keyring"]), final.derived.keyring_key, key_id, min_version=4
    ) == (4, {"bob@example.org": "ab" * 32})
