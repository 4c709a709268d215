"""static/js/sxf.js in Chromium against secupass/sxf.py: the same bytes both ways."""

import base64
import hashlib
import io
import os
import random
import struct
import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from secupass import sxf

pytestmark = pytest.mark.browser

SXF_JS = Path(__file__).resolve().parents[2] / "static" / "js" / "sxf.js"
CHUNK = 1 << 16
KEY = os.urandom(32)
DELIVERY = uuid.uuid4()
FILE = uuid.uuid4()

# An ES module needs an http origin; the helpers move bytes as base64 through evaluate().
TEST_PAGE = b"""<!doctype html>
<meta charset="utf-8">
<title>sxf.js</title>
<script type="module">
import * as sxf from "/sxf.js";
window.sxf = sxf;
window.fromB64 = (s) => {
  const binary = atob(s);
  const bytes = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
  return bytes;
};
window.toB64 = (bytes) => {
  let s = "";
  for (let i = 0; i < bytes.length; i += 0x8000) {
    s += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  }
  return btoa(s);
};
window.sha256hex = async (bytes) => Array.from(
  new Uint8Array(await crypto.subtle.digest("SHA-256", bytes)),
  (b) => b.toString(16).padStart(2, "0"),
).join("");
window.collect = async (chunks) => {
  const parts = [];
  for await (const part of chunks) parts.push(part);
  return new Uint8Array(await new Blob(parts).arrayBuffer());
};
window.sxfReady = true;
</script>
"""


class Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        if self.path == "/":
            body, content_type = TEST_PAGE, "text/html; charset=utf-8"
        elif self.path == "/sxf.js":
            body, content_type = SXF_JS.read_bytes(), "text/javascript; charset=utf-8"
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
    page.set_default_timeout(15_000)
    page.goto(origin + "/")
    page.wait_for_function("window.sxfReady === true")
    yield page
    context.close()


def b64(data):
    return base64.b64encode(data).decode("ascii")


def unb64(text):
    return base64.b64decode(text)


def encrypt(content, *, salt=None, digest=None):
    encryptor = sxf.Encryptor(KEY, DELIVERY, FILE, len(content), salt=salt)
    return b"".join(encryptor.encrypt_stream(io.BytesIO(content), digest=digest))


def raw_public(key):
    return key.public_key().public_bytes(Encoding.X962, PublicFormat.UncompressedPoint)


def flip(data, offset, bit=0x01):
    changed = bytearray(data)
    changed[offset] ^= bit
    return bytes(changed)


# 17 chunks span two of the 1 MiB reads that encryptFile and decryptStream make.
SIZES = [0, 1, CHUNK - 1, CHUNK, CHUNK + 1, 200_000, 17 * CHUNK + 5, random.randrange(2, 3 * CHUNK)]


def test_javascript_decrypts_python_blobs(js):
    cases, expected = [], []
    for n in SIZES:
        content = os.urandom(n)
        digest = sxf.BlobDigest()
        blob = encrypt(content, digest=digest)
        cases.append({"blob": b64(blob), "size": len(blob)})
        expected.append([hashlib.sha256(content).hexdigest(), digest.hexdigest()])

    result = js.evaluate(
        """async ({key, deliveryId, fileId, cases}) => {
            const out = [];
            for (const c of cases) {
                const digest = new sxf.BlobDigest();
                const stream = new Blob([fromB64(c.blob)]).stream();
                const expect = {deliveryId, fileId, blobLength: c.size, digest};
                const plain = await collect(sxf.decryptStream(fromB64(key), stream, expect));
                out.push([await sha256hex(plain), await digest.hexdigest()]);
            }
            return out;
        }""",
        {"key": b64(KEY), "deliveryId": str(DELIVERY), "fileId": str(FILE), "cases": cases},
    )
    assert result == expected


def test_javascript_random_access_and_digest(js):
    content = os.urandom(200_000)
    digest = sxf.BlobDigest()
    blob = encrypt(content, digest=digest)
    result = js.evaluate(
        """async ({key, blob, deliveryId, fileId}) => {
            const bytes = fromB64(blob);
            const expect = {deliveryId, fileId, blobLength: bytes.length};
            const dec = await sxf.Decryptor.create(fromB64(key), bytes.subarray(0, 80), expect);
            const at = sxf.chunkOffset(dec.parsed, 3);
            const stored = bytes.subarray(at, at + sxf.storedChunkLength(dec.parsed, 3));
            // Chunks fed without waiting for each hash still count in order.
            const digest = new sxf.BlobDigest();
            await digest.updateHeader(dec.header);
            for (let i = 0; i < dec.parsed.chunkCount; i++) {
                const offset = sxf.chunkOffset(dec.parsed, i);
                const size = sxf.storedChunkLength(dec.parsed, i);
                digest.updateChunk(bytes.subarray(offset, offset + size));
            }
            return {
                digest: await digest.hexdigest(),
                chunk: toB64(await dec.decryptChunk(3, stored)),
                count: dec.parsed.chunkCount,
                length: dec.parsed.length.toString(),
                range: sxf.chunksForRange(dec.parsed, 65535, 131072),
            };
        }""",
        {"key": b64(KEY), "blob": b64(blob), "deliveryId": str(DELIVERY), "fileId": str(FILE)},
    )
    assert unb64(result["chunk"]) == content[3 * CHUNK :]
    assert result["digest"] == digest.hexdigest()
    assert result["count"] == 4
    assert result["length"] == "200000"
    assert result["range"] == [0, 2]


def test_python_decrypts_javascript_blobs(js):
    salt = os.urandom(32)
    contents = [os.urandom(n) for n in SIZES]
    result = js.evaluate(
        """async ({key, deliveryId, fileId, salt, contents}) => {
            const out = [];
            for (const content of contents) {
                const file = new Blob([fromB64(content)]);
                const digest = new sxf.BlobDigest();
                const options = {digest};
                const blob = await collect(
                    sxf.encryptFile(file, fromB64(key), deliveryId, fileId, options));
                const fixed = await collect(sxf.encryptFile(
                    file, fromB64(key), deliveryId, fileId, {salt: fromB64(salt)}));
                const hex = await digest.hexdigest();
                out.push({blob: toB64(blob), digest: hex, fixed: toB64(fixed)});
            }
            return out;
        }""",
        {
            "key": b64(KEY),
            "deliveryId": str(DELIVERY),
            "fileId": str(FILE),
            "salt": b64(salt),
            "contents": [b64(c) for c in contents],
        },
    )
    for content, item in zip(contents, result, strict=True):
        blob = unb64(item["blob"])
        digest = sxf.BlobDigest()
        plain = sxf.decrypt_stream(
            KEY,
            io.BytesIO(blob),
            delivery_id=DELIVERY,
            file_id=FILE,
            blob_length=len(blob),
            digest=digest,
        )
        assert b"".join(plain) == content
        assert digest.hexdigest() == item["digest"]
        # Encryption is deterministic given the salt: both runtimes write identical bytes.
        assert unb64(item["fixed"]) == encrypt(content, salt=salt)


def stored_chunks(blob):
    header = sxf.Header.parse(blob)
    offsets = [sxf.chunk_offset(header, i) for i in range(header.chunk_count)]
    return [blob[at : at + sxf.stored_chunk_len(header, i)] for i, at in enumerate(offsets)]


def case(blob, error, released, *, size=None, expect=None, key=KEY):
    """A blob for decryptStream, the error it must raise and the plaintext released first."""
    return {
        "blob": b64(blob),
        "size": len(blob) if size is None else size,
        "expect": expect or {},
        "key": b64(key),
        "outcome": [error, released],
    }


def test_javascript_rejects_tampering(js):
    content = os.urandom(2 * CHUNK + 100)
    blob = encrypt(content)
    c0, c1, c2 = stored_chunks(blob)
    second = 80 + len(c0)
    # 17 chunks: decryptStream reads 15 per read, so chunk 16 is in its second read.
    big = encrypt(os.urandom(17 * CHUNK + 5))
    sixteenth = 80 + 16 * (CHUNK + 16)
    other = str(uuid.uuid4())
    cases = [
        case(blob, "none", len(content)),
        case(flip(blob, second + 5), "AuthenticationError", CHUNK),
        case(flip(blob, len(blob) - 1, 0x80), "AuthenticationError", 2 * CHUNK),
        case(flip(big, sixteenth + 3), "AuthenticationError", 16 * CHUNK),
        case(flip(blob, 50), "AuthenticationError", 0),  # salt
        case(flip(blob, 0), "FormatError", 0),  # magic
        case(flip(blob, 7), "FormatError", 0),  # reserved
        case(flip(blob, 79), "FormatError", 0),  # length
        case(blob, "FormatError", 0, expect={"fileId": other}),
        case(blob, "FormatError", 0, expect={"deliveryId": other}),
        case(blob[:-1], "AuthenticationError", 2 * CHUNK, size=len(blob)),
        case(big[:-CHUNK], "AuthenticationError", 16 * CHUNK, size=len(big)),
        case(blob[:-1], "FormatError", 0),
        case(blob + b"\0", "FormatError", 0, size=len(blob)),
        case(blob[:80] + c0 + c2 + c1, "AuthenticationError", CHUNK),
        case(blob, "AuthenticationError", 0, key=os.urandom(32)),
    ]
    result = js.evaluate(
        """async ({cases, deliveryId, fileId}) => {
            const out = [];
            for (const c of cases) {
                const expect = {deliveryId, fileId, blobLength: c.size, ...c.expect};
                const stream = new Blob([fromB64(c.blob)]).stream();
                let released = 0;
                let error = "none";
                try {
                    for await (const part of sxf.decryptStream(fromB64(c.key), stream, expect)) {
                        released += part.length;
                    }
                } catch (e) {
                    error = e instanceof sxf.SXFError ? e.name : `unexpected ${e}`;
                }
                out.push([error, released]);
            }
            return out;
        }""",
        {"deliveryId": str(DELIVERY), "fileId": str(FILE), "cases": cases},
    )
    assert result == [c["outcome"] for c in cases]


def test_p256_entries_across_runtimes(js):
    python_reader = ec.generate_private_key(ec.SECP256R1())
    result = js.evaluate(
        """async ({pythonReader, deliveryId, key}) => {
            const P256 = {name: "ECDH", namedCurve: "P-256"};
            window.reader = await crypto.subtle.generateKey(P256, true, ["deriveBits"]);
            window.locked = await crypto.subtle.generateKey(P256, false, ["deriveBits"]);
            const raw = async (k) => new Uint8Array(await crypto.subtle.exportKey("raw", k));
            const entry = await sxf.wrapP256(fromB64(pythonReader), "py-key", deliveryId,
                                             fromB64(key));
            return {
                reader: toB64(await raw(reader.publicKey)),
                locked: toB64(await raw(locked.publicKey)),
                entry,
            };
        }""",
        {
            "pythonReader": b64(raw_public(python_reader)),
            "deliveryId": str(DELIVERY),
            "key": b64(KEY),
        },
    )
    # JavaScript wrapped for a Python key.
    entry = result["entry"]
    assert entry["kind"] == "p256"
    assert entry["key_id"] == "py-key"
    sxf.validate_entry(entry)
    assert sxf.unwrap_p256(python_reader, entry, DELIVERY) == KEY

    # Python wraps for JavaScript keys.
    for_reader = sxf.wrap_p256(unb64(result["reader"]), "js-key", DELIVERY, KEY)
    for_locked = sxf.wrap_p256(unb64(result["locked"]), "js-locked", DELIVERY, KEY)
    eph = sxf.b64u_decode(for_reader["eph"])
    x_parity = bytes([2 + (eph[-1] & 1)]) + eph[1:33]
    tampered_ct = bytearray(sxf.b64u_decode(for_reader["ct"]))
    tampered_ct[5] ^= 1
    outcome = js.evaluate(
        """async ({forReader, forLocked, lockedPublic, deliveryId, otherDelivery, variants}) => {
            const attempt = async (fn) => {
                try {
                    return toB64(await fn());
                } catch (e) {
                    return e.name;
                }
            };
            const locked = fromB64(lockedPublic);
            const unwrap = (...args) => attempt(() => sxf.unwrapP256(...args));
            return {
                privateKey: await unwrap(reader.privateKey, forReader, deliveryId),
                pair: await unwrap(reader, forReader, deliveryId),
                lockedAlone: await unwrap(window.locked.privateKey, forLocked, deliveryId),
                lockedWithPublic: await unwrap(
                    window.locked.privateKey, forLocked, deliveryId, locked),
                otherDelivery: await unwrap(reader, forReader, otherDelivery),
                otherKey: await unwrap(window.locked, forReader, deliveryId),
                variants: await Promise.all(variants.map(
                    (v) => unwrap(reader, {...forReader, ...v}, deliveryId))),
            };
        }""",
        {
            "forReader": for_reader,
            "forLocked": for_locked,
            "lockedPublic": result["locked"],
            "deliveryId": str(DELIVERY),
            "otherDelivery": str(uuid.uuid4()),
            "variants": [
                {"ct": sxf.b64u_encode(bytes(tampered_ct))},
                {"eph": sxf.b64u_encode(x_parity)},
                {"eph": sxf.b64u_encode(bytes([6 + (eph[-1] & 1)]) + eph[1:])},
                {"eph": sxf.b64u_encode(eph[:-1] + bytes([eph[-1] ^ 1]))},
                {"eph": for_reader["eph"] + "="},
                {"ct": sxf.b64u_encode(bytes(49))},
                {"kind": "kek"},
                {"extra": "x"},
            ],
        },
    )
    assert unb64(outcome["privateKey"]) == KEY
    assert unb64(outcome["pair"]) == KEY
    assert outcome["lockedAlone"] == "TypeError"
    assert unb64(outcome["lockedWithPublic"]) == KEY
    assert outcome["otherDelivery"] == "AuthenticationError"
    assert outcome["otherKey"] == "AuthenticationError"
    assert outcome["variants"] == ["AuthenticationError"] + ["FormatError"] * 7


def test_fingerprints_agree(js):
    ecdh = raw_public(ec.generate_private_key(ec.SECP256R1()))
    ecdsa = raw_public(ec.generate_private_key(ec.SECP256R1()))
    emails = [
        "Ä@Example.ORG",
        "A\u0308@EXAMPLE.org",
        "\u212aelvin@Example.org",
        "J\u030c@Example.org",
        "ÉLODIE@exämple.DE",
        "plain@example.org",
    ]
    result = js.evaluate(
        """async ({emails, ecdh, ecdsa}) => Promise.all(emails.map(async (email) => {
            const fp = await sxf.fingerprint(email, fromB64(ecdh), fromB64(ecdsa));
            const shown = sxf.formatFingerprint(fp);
            return {
                normalised: sxf.normalizeEmail(email),
                full: toB64(fp),
                shown,
                equal: sxf.fingerprintsEqual(shown.toUpperCase(), shown.replace(/ /g, "")),
            };
        }))""",
        {"emails": emails, "ecdh": b64(ecdh), "ecdsa": b64(ecdsa)},
    )
    for email, item in zip(emails, result, strict=True):
        fp = sxf.fingerprint(email, ecdh, ecdsa)
        assert item["normalised"] == sxf.normalize_email(email)
        assert unb64(item["full"]) == fp
        assert item["shown"] == sxf.format_fingerprint(fp)
        assert item["equal"] is True


def outcome(fn):
    try:
        fn()
    except sxf.SXFError as error:
        return type(error).__name__
    return "ok"


def test_headers_and_encodings_agree(js):
    salt = os.urandom(32)
    length = 2**40 + 5
    good = sxf.Header(DELIVERY, FILE, salt, length).pack()
    bad_headers = [
        good,
        good[:79],
        b"SXF2" + good[4:],
        good[:4] + b"\x02" + good[5:],
        good[:5] + b"\x02" + good[6:],
        good[:6] + b"\x0f" + good[7:],
        good[:6] + b"\x16" + good[7:],
        good[:6] + b"\x17" + good[7:],
        good[:7] + b"\x01" + good[8:],
        good[:72] + struct.pack(">Q", 2**64 - 1),
        good[:6] + b"\x16" + good[7:72] + struct.pack(">Q", 2**54 + 1),
    ]
    texts = ["", "AQ", "AR", "AQ==", "AQ=", "+/8", "-_8", "A", " AQ", "AQ\n", "Zm9v", "Zm9v!"]
    result = js.evaluate(
        """({deliveryId, fileId, salt, length, headers, texts}) => {
            const attempt = (fn) => {
                try {
                    fn();
                    return "ok";
                } catch (e) {
                    return e.name;
                }
            };
            const packed = sxf.packHeader({deliveryId, fileId, salt: fromB64(salt),
                                            length: BigInt(length)});
            return {
                packed: toB64(packed),
                blobLength: sxf.blobLength(BigInt(length)).toString(),
                blobLengthNumber: sxf.blobLength(200000),
                headers: headers.map((h) => attempt(() => sxf.parseHeader(fromB64(h)))),
                texts: texts.map((t) => attempt(() => sxf.b64uDecode(t))),
            };
        }""",
        {
            "deliveryId": str(DELIVERY),
            "fileId": str(FILE),
            "salt": b64(salt),
            "length": str(length),
            "headers": [b64(h) for h in bad_headers],
            "texts": texts,
        },
    )
    assert unb64(result["packed"]) == good
    assert result["blobLength"] == str(sxf.blob_length(length))
    assert result["blobLengthNumber"] == sxf.blob_length(200_000)
    assert result["headers"] == [outcome(lambda h=h: sxf.Header.parse(h)) for h in bad_headers]
    assert result["headers"].count("ok") == 2
    assert result["texts"] == [outcome(lambda t=t: sxf.b64u_decode(t)) for t in texts]
