// SXF1, the container every SecuShare file is stored in (DESIGN.md section 4).
//
// The browser twin of secupass/sxf.py: the same bytes and the same checks, in camelCase.
// A plain ES module on WebCrypto; no build step, no dependencies. Plaintext lengths are
// BigInt (the header field is a uint64); chunk indices and offsets are Numbers.
// Data problems throw SXFError subclasses with a message for people; wrong use of the
// functions throws TypeError or RangeError.

const subtle = globalThis.crypto.subtle;
const utf8 = new TextEncoder();

export const MAGIC = utf8.encode("SXF1");
export const VERSION = 1;
export const SUITE = 1;
export const HEADER_LEN = 80;
export const TAG_LEN = 16;
export const DEFAULT_CHUNK_LOG2 = 16;
export const MIN_CHUNK_LOG2 = 16;
export const MAX_CHUNK_LOG2 = 22;
export const KEY_LEN = 32;
export const SALT_LEN = 32;
const MAX_CHUNKS = 2n ** 32n;
const MAX_LENGTH = 2n ** 64n - 1n;
const P256 = { name: "ECDH", namedCurve: "P-256" };
const PAYLOAD_INFO = utf8.encode("sxf/v1/payload");
const P256_INFO = utf8.encode("sxf/v1/wrap/p256");
const BLOB_PREFIX = utf8.encode("sxf/v1/blob");
const FPR_PREFIX = utf8.encode("sxf/v1/fpr");
const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export class SXFError extends Error {
  constructor(message) {
    super(message);
    this.name = new.target.name;
  }
}

/** The bytes are not what was expected: header, length, ids or encoding. */
export class FormatError extends SXFError {}

/** A tag did not verify (changed data, wrong key) or the blob ends early. */
export class AuthenticationError extends SXFError {}

/** Shared with secupass.js. */
export function bytesOf(data) {
  if (data instanceof Uint8Array) return data;
  if (data instanceof ArrayBuffer) return new Uint8Array(data);
  if (ArrayBuffer.isView(data)) {
    return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  }
  throw new TypeError("expected bytes (Uint8Array or ArrayBuffer)");
}

/** Shared with secupass.js. */
export function concat(...parts) {
  const out = new Uint8Array(parts.reduce((sum, part) => sum + part.length, 0));
  let pos = 0;
  for (const part of parts) {
    out.set(part, pos);
    pos += part.length;
  }
  return out;
}

/** Shared with secupass.js. */
export function toHex(bytes) {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

function checkKey(key, what = "delivery key") {
  key = bytesOf(key);
  if (key.length !== KEY_LEN) throw new RangeError(`the ${what} must be ${KEY_LEN} bytes`);
  return key;
}

function toLength(n) {
  if (typeof n === "bigint" && n >= 0n) return n;
  if (Number.isSafeInteger(n) && n >= 0) return BigInt(n);
  throw new RangeError("a length must be a non-negative integer (Number or BigInt)");
}

/** Shared with secupass.js. */
export async function sha256(data) {
  return new Uint8Array(await subtle.digest("SHA-256", data));
}

/** Shared with secupass.js. */
export async function hkdf(ikm, salt, info) {
  const key = await subtle.importKey("raw", ikm, "HKDF", false, ["deriveBits"]);
  const params = { name: "HKDF", hash: "SHA-256", salt, info };
  return new Uint8Array(await subtle.deriveBits(params, key, 256));
}

function aesKey(raw, usage) {
  return subtle.importKey("raw", raw, { name: "AES-GCM" }, false, [usage]);
}

/** Unpadded base64url. */
export function b64uEncode(bytes) {
  bytes = bytesOf(bytes);
  let binary = "";
  for (let i = 0; i < bytes.length; i += 0x8000) {
    binary += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  }
  return btoa(binary).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

/** Decode unpadded base64url, rejecting padding, other alphabets and non-canonical forms. */
export function b64uDecode(text) {
  if (typeof text !== "string" || !/^[A-Za-z0-9_-]*$/.test(text) || text.length % 4 === 1) {
    throw new FormatError("a value is not unpadded base64url");
  }
  const base64 = text.replace(/-/g, "+").replace(/_/g, "/");
  const padded = base64 + "=".repeat((4 - (text.length % 4)) % 4);
  const bytes = Uint8Array.from(atob(padded), (c) => c.charCodeAt(0));
  if (b64uEncode(bytes) !== text) throw new FormatError("a value is not canonical base64url");
  return bytes;
}

/** The 16 raw bytes of a UUID given as a hyphenated string. */
export function uuidToBytes(id) {
  if (typeof id !== "string" || !UUID_RE.test(id)) throw new TypeError(`not a UUID: ${id}`);
  const hex = id.replace(/-/g, "");
  return Uint8Array.from({ length: 16 }, (_, i) => parseInt(hex.slice(2 * i, 2 * i + 2), 16));
}

/** The lowercase hyphenated form of 16 raw UUID bytes. */
export function bytesToUuid(bytes) {
  const h = toHex(bytesOf(bytes));
  if (h.length !== 32) throw new RangeError("a UUID is 16 bytes");
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

/** Size of the blob holding an n-byte file (a BigInt for a BigInt n, else a Number). */
export function blobLength(n, chunkLog2 = DEFAULT_CHUNK_LOG2) {
  const length = toLength(n);
  const chunk = 1n << BigInt(chunkLog2);
  const count = length === 0n ? 1n : (length + chunk - 1n) / chunk;
  const total = BigInt(HEADER_LEN) + length + BigInt(TAG_LEN) * count;
  return typeof n === "bigint" ? total : Number(total);
}

function headerInfo(bytes, deliveryId, fileId, salt, length, chunkLog2) {
  if (salt.length !== SALT_LEN) throw new FormatError(`the header salt must be ${SALT_LEN} bytes`);
  if (!Number.isInteger(chunkLog2) || chunkLog2 < MIN_CHUNK_LOG2 || chunkLog2 > MAX_CHUNK_LOG2) {
    throw new FormatError(`the chunk size 2^${chunkLog2} is not supported (2^16 to 2^22)`);
  }
  if (length > MAX_LENGTH) throw new FormatError("the plaintext length does not fit in 64 bits");
  const chunkSize = 2 ** chunkLog2;
  const count = (length + BigInt(chunkSize) - 1n) / BigInt(chunkSize);
  if (count > MAX_CHUNKS) throw new FormatError("the file has more than 2^32 chunks");
  const chunkCount = count === 0n ? 1 : Number(count);
  const total = blobLength(length, chunkLog2);
  const info = { bytes, deliveryId, fileId, salt, length, chunkLog2, chunkSize, chunkCount };
  return { ...info, blobLength: total };
}

/** The 80-byte header for {deliveryId, fileId, salt, length, chunkLog2}. */
export function packHeader({ deliveryId, fileId, salt, length, chunkLog2 = DEFAULT_CHUNK_LOG2 }) {
  salt = bytesOf(salt);
  length = toLength(length);
  headerInfo(null, deliveryId, fileId, salt, length, chunkLog2);
  const bytes = new Uint8Array(HEADER_LEN);
  const view = new DataView(bytes.buffer);
  bytes.set(MAGIC, 0);
  bytes.set([VERSION, SUITE, chunkLog2, 0], 4);
  bytes.set(uuidToBytes(deliveryId), 8);
  bytes.set(uuidToBytes(fileId), 24);
  bytes.set(salt, 40);
  view.setBigUint64(72, length, false);
  return bytes;
}

/**
 * Parse the first 80 bytes with every check a reader makes. `deliveryId` and `fileId` are the
 * ids of the record the blob should belong to, `blobLength` its actual size; each is checked
 * when given. Returns {bytes, deliveryId, fileId, salt, length (BigInt), chunkLog2, chunkSize,
 * chunkCount, blobLength (BigInt)}.
 */
export function parseHeader(data, { deliveryId, fileId, blobLength: size } = {}) {
  data = bytesOf(data);
  if (data.length < HEADER_LEN) {
    throw new FormatError("this is not an SXF1 file: it is shorter than the header");
  }
  const bytes = data.slice(0, HEADER_LEN);
  const view = new DataView(bytes.buffer);
  if (MAGIC.some((b, i) => bytes[i] !== b)) {
    throw new FormatError("this is not an SXF1 file (wrong magic bytes)");
  }
  if (bytes[4] !== VERSION) throw new FormatError(`SXF1 version ${bytes[4]} is not supported`);
  if (bytes[5] !== SUITE) throw new FormatError(`cipher suite ${bytes[5]} is not supported`);
  if (bytes[7] !== 0) throw new FormatError("the header's reserved byte is not zero");
  const header = headerInfo(
    bytes,
    bytesToUuid(bytes.subarray(8, 24)),
    bytesToUuid(bytes.subarray(24, 40)),
    bytes.slice(40, 72),
    view.getBigUint64(72, false),
    bytes[6],
  );
  if (deliveryId !== undefined && header.deliveryId !== bytesToUuid(uuidToBytes(deliveryId))) {
    throw new FormatError("the file belongs to another delivery");
  }
  if (fileId !== undefined && header.fileId !== bytesToUuid(uuidToBytes(fileId))) {
    throw new FormatError("the file was stored under another file's record");
  }
  if (size !== undefined && toLength(size) !== header.blobLength) {
    throw new FormatError(
      `the stored file is ${size} bytes, but its header says ${header.blobLength}: ` +
        "it was truncated or extended",
    );
  }
  return header;
}

/** Plaintext size of chunk i: the chunk size, except for the last chunk. */
export function plaintextChunkLength(header, i) {
  if (!Number.isInteger(i) || i < 0 || i >= header.chunkCount) {
    throw new RangeError(`chunk ${i} does not exist (the file has ${header.chunkCount})`);
  }
  if (i < header.chunkCount - 1) return header.chunkSize;
  return Number(header.length - BigInt(i) * BigInt(header.chunkSize));
}

/** Size of stored chunk i: its plaintext plus the tag. */
export function storedChunkLength(header, i) {
  return plaintextChunkLength(header, i) + TAG_LEN;
}

/** Byte offset of stored chunk i in the blob. */
export function chunkOffset(header, i) {
  plaintextChunkLength(header, i);
  return HEADER_LEN + i * (header.chunkSize + TAG_LEN);
}

/** [first, last] chunk indices holding plaintext bytes start..endInclusive. */
export function chunksForRange(header, start, endInclusive) {
  if (!(start >= 0 && start <= endInclusive && BigInt(endInclusive) < header.length)) {
    throw new RangeError(`bytes ${start}-${endInclusive} are outside a ${header.length}-byte file`);
  }
  return [Math.floor(start / header.chunkSize), Math.floor(endInclusive / header.chunkSize)];
}

/** 7 zero bytes || uint32(i) || 0x01 for the last chunk, else 0x00. */
export function chunkNonce(i, last) {
  const nonce = new Uint8Array(12);
  new DataView(nonce.buffer).setUint32(7, i, false);
  nonce[11] = last ? 1 : 0;
  return nonce;
}

async function payloadKey(deliveryKey, header, usage) {
  const raw = await hkdf(checkKey(deliveryKey), header.salt, concat(PAYLOAD_INFO, header.bytes));
  return aesKey(raw, usage);
}

function tampered(i) {
  if (i === 0) {
    return (
      "the file cannot be decrypted with this key: the key is wrong, or the file was changed " +
      "or damaged after it was encrypted (chunk 0 failed authentication)"
    );
  }
  return (
    "the file was changed or damaged after it was encrypted " +
    `(chunk ${i} failed authentication)`
  );
}

/** Encrypts one file into an SXF1 blob, each chunk exactly once, in order. */
export class Encryptor {
  static async create(deliveryKey, deliveryId, fileId, length, { chunkLog2, salt } = {}) {
    salt = salt === undefined ? crypto.getRandomValues(new Uint8Array(SALT_LEN)) : bytesOf(salt);
    chunkLog2 ??= DEFAULT_CHUNK_LOG2;
    const parsed = parseHeader(packHeader({ deliveryId, fileId, salt, length, chunkLog2 }));
    return new Encryptor(await payloadKey(deliveryKey, parsed, "encrypt"), parsed);
  }

  constructor(key, parsed) {
    this.key = key;
    this.parsed = parsed;
    this.header = parsed.bytes;
    this.next = 0;
  }

  /** Stored chunk i (ciphertext || tag). Chunks go in order 0, 1, 2, ...: never twice. */
  async encryptChunk(i, plaintext) {
    if (i !== this.next) {
      throw new RangeError(`chunk ${i} cannot be encrypted now; the next chunk is ${this.next}`);
    }
    plaintext = bytesOf(plaintext);
    const expected = plaintextChunkLength(this.parsed, i);
    if (plaintext.length !== expected) {
      throw new RangeError(`chunk ${i} must be ${expected} bytes, not ${plaintext.length}`);
    }
    this.next += 1;
    const iv = chunkNonce(i, i === this.parsed.chunkCount - 1);
    return new Uint8Array(await subtle.encrypt({ name: "AES-GCM", iv }, this.key, plaintext));
  }

  /**
   * Stored chunks first, first + 1, ... of `plaintext`, which holds their plaintext back to
   * back (whole chunks only), as one Uint8Array of stored bytes; written into `into` when it is
   * large enough. `digest` (a BlobDigest), when given, is fed every stored chunk in order.
   * Every chunk is handed to WebCrypto (which copies it) before this returns its promise, so
   * the caller may reuse `plaintext` at once.
   */
  async encryptChunks(first, plaintext, { into, digest } = {}) {
    plaintext = bytesOf(plaintext);
    const { chunkSize } = this.parsed;
    const count = Math.max(1, Math.ceil(plaintext.length / chunkSize));
    const sealed = [];
    let size = 0;
    for (let k = 0; k < count; k++) {
      const part = plaintext.subarray(k * chunkSize, (k + 1) * chunkSize);
      const pending = this.encryptChunk(first + k, part);
      pending.catch(() => {}); // awaited below, in order
      sealed.push(pending);
      size += part.length + TAG_LEN;
    }
    into = into === undefined ? null : bytesOf(into);
    const stored =
      into && into.length >= size
        ? new Uint8Array(into.buffer, into.byteOffset, size)
        : new Uint8Array(size);
    let pos = 0;
    for (const pending of sealed) {
      const chunk = await pending;
      digest?.updateChunk(chunk);
      stored.set(chunk, pos);
      pos += chunk.length;
    }
    return stored;
  }
}

/** Decrypts the chunks of one blob; create() checks the header against `expect`. */
export class Decryptor {
  static async create(deliveryKey, headerBytes, expect = {}) {
    const parsed = parseHeader(headerBytes, expect);
    return new Decryptor(await payloadKey(deliveryKey, parsed, "decrypt"), parsed);
  }

  constructor(key, parsed) {
    this.key = key;
    this.parsed = parsed;
    this.header = parsed.bytes;
  }

  /** Plaintext of stored chunk i; throws AuthenticationError unless its tag verifies. */
  async decryptChunk(i, stored) {
    stored = bytesOf(stored);
    const expected = storedChunkLength(this.parsed, i);
    if (stored.length !== expected) {
      throw new AuthenticationError(
        `the file was truncated or damaged (chunk ${i} is ${stored.length} bytes, not ${expected})`,
      );
    }
    const iv = chunkNonce(i, i === this.parsed.chunkCount - 1);
    try {
      return new Uint8Array(await subtle.decrypt({ name: "AES-GCM", iv }, this.key, stored));
    } catch (error) {
      if (error.name === "OperationError") throw new AuthenticationError(tampered(i));
      throw error;
    }
  }
}

/**
 * The manifest digest, SHA-256("sxf/v1/blob" || header || SHA-256(chunk 0) || ...). WebCrypto
 * has no streaming hash, so the 32-byte hash of each stored chunk is kept until hexdigest().
 */
export class BlobDigest {
  constructor() {
    this.headerBytes = null;
    this.hashes = new Uint8Array(32 * 64);
    this.count = 0;
    this.pending = Promise.resolve();
  }

  async updateHeader(headerBytes) {
    headerBytes = bytesOf(headerBytes);
    if (this.headerBytes || headerBytes.length !== HEADER_LEN) {
      throw new RangeError("give the 80-byte header once, before any chunk");
    }
    this.headerBytes = headerBytes.slice();
  }

  /** Add the next chunk as stored (ciphertext || tag). */
  updateChunk(stored) {
    if (!this.headerBytes) throw new RangeError("give the header before the chunks");
    const index = this.count++;
    const done = sha256(bytesOf(stored)).then((hash) => {
      if (this.hashes.length < 32 * (index + 1)) {
        const grown = new Uint8Array(Math.max(this.hashes.length * 2, 32 * (index + 1)));
        grown.set(this.hashes);
        this.hashes = grown;
      }
      this.hashes.set(hash, 32 * index);
    });
    this.pending = Promise.all([this.pending, done]);
    return done;
  }

  async hexdigest() {
    if (!this.headerBytes) throw new RangeError("nothing was hashed");
    await this.pending;
    const hashes = this.hashes.subarray(0, 32 * this.count);
    return toHex(await sha256(concat(BLOB_PREFIX, this.headerBytes, hashes)));
  }
}

// Blobs and streams are read about this many bytes at a time (a Blob slice of 64 KiB reads
// several times slower than one of 1 MiB); the next read runs while a read is encrypted.
const READ_SIZE = 1 << 20;

/**
 * Encrypt a Blob (or File): yields the 80-byte header, then each stored chunk, reading about
 * 1 MiB at a time with slice() (never the whole file). `digest` (a BlobDigest), when given, is
 * fed everything yielded. Options: {chunkLog2, salt, digest}.
 */
export async function* encryptFile(file, deliveryKey, deliveryId, fileId, options = {}) {
  const { chunkLog2, salt, digest } = options;
  const encryptor = await Encryptor.create(deliveryKey, deliveryId, fileId, file.size, {
    chunkLog2,
    salt,
  });
  const header = encryptor.parsed;
  const { chunkCount, chunkSize } = header;
  const perRead = Math.max(1, Math.floor(READ_SIZE / chunkSize));
  const read = (first) => {
    const last = Math.min(chunkCount, first + perRead) - 1;
    const size = (last - first) * chunkSize + plaintextChunkLength(header, last);
    const begin = first * chunkSize;
    const pending = file
      .slice(begin, begin + size)
      .arrayBuffer()
      .then(
        (buffer) => ({ first, last, size, plaintext: new Uint8Array(buffer) }),
        (error) => {
          throw new SXFError(`the file could not be read while it was being encrypted (${error})`);
        },
      );
    pending.catch(() => {}); // awaited below; this keeps an abandoned read from being "unhandled"
    return pending;
  };
  if (digest) await digest.updateHeader(encryptor.header);
  yield encryptor.header;
  let next = read(0);
  while (next) {
    const { first, last, size, plaintext } = await next;
    next = last + 1 < chunkCount ? read(last + 1) : null;
    if (plaintext.length !== size) {
      throw new SXFError("the file changed while it was being encrypted");
    }
    for (let i = first; i <= last; i++) {
      const begin = (i - first) * chunkSize;
      const part = plaintext.subarray(begin, begin + plaintextChunkLength(header, i));
      const stored = await encryptor.encryptChunk(i, part);
      if (digest) await digest.updateChunk(stored);
      yield stored;
    }
  }
}

function byteReader(stream) {
  const reader = stream.getReader();
  let parts = [];
  let buffered = 0;
  let done = false;
  return {
    reader,
    async take(n) {
      while (buffered < n && !done) {
        const result = await reader.read();
        if (result.done) done = true;
        else if (result.value.length) {
          parts.push(bytesOf(result.value));
          buffered += result.value.length;
        }
      }
      const out = new Uint8Array(Math.min(n, buffered));
      let pos = 0;
      while (pos < out.length) {
        const part = parts[0];
        const k = Math.min(part.length, out.length - pos);
        out.set(part.subarray(0, k), pos);
        pos += k;
        if (k === part.length) parts.shift();
        else parts[0] = part.subarray(k);
      }
      buffered -= out.length;
      return out;
    },
  };
}

/**
 * Decrypt a whole blob from a ReadableStream of bytes (e.g. a fetch() body): yields each
 * chunk's plaintext only after its tag verified, and throws if the blob ends early or runs on.
 * `expect` is {deliveryId, fileId, blobLength, digest}; digest (a BlobDigest) is optional.
 */
export async function* decryptStream(deliveryKey, stream, expect = {}) {
  const { digest, ...record } = expect;
  const source = byteReader(stream);
  let finished = false;
  try {
    const headerBytes = await source.take(HEADER_LEN);
    const decryptor = await Decryptor.create(deliveryKey, headerBytes, record);
    const header = decryptor.parsed;
    if (digest) await digest.updateHeader(headerBytes);
    const final = header.chunkCount - 1;
    const perRead = Math.max(1, Math.floor(READ_SIZE / (header.chunkSize + TAG_LEN)));
    for (let first = 0; first <= final; first += perRead) {
      const last = Math.min(final, first + perRead - 1);
      const want = chunkOffset(header, last) + storedChunkLength(header, last) -
        chunkOffset(header, first);
      const data = await source.take(want + (last === final ? 1 : 0));
      if (data.length > want) {
        throw new FormatError("the file has extra bytes after its last chunk");
      }
      for (let i = first, pos = 0; i <= last; i++) {
        const need = storedChunkLength(header, i);
        const stored = data.subarray(pos, pos + need);
        pos += need;
        if (stored.length < need) {
          const missing = `chunk ${i} of ${final + 1} is missing`;
          throw new AuthenticationError(`the file ends early: ${missing}`);
        }
        const plaintext = await decryptor.decryptChunk(i, stored);
        if (digest) await digest.updateChunk(stored);
        if (plaintext.length) yield plaintext;
      }
    }
    finished = true;
  } finally {
    if (!finished) await source.reader.cancel().catch(() => {});
    source.reader.releaseLock();
  }
}

// Public-key entries (the server entry, kind "kek", is made and opened only on the server).

function checkPublic(raw) {
  raw = bytesOf(raw);
  if (raw.length !== 65 || raw[0] !== 4) {
    throw new FormatError("a P-256 public key must be its 65-byte uncompressed point");
  }
  return raw;
}

async function importPublic(raw) {
  try {
    return await subtle.importKey("raw", checkPublic(raw), P256, true, []);
  } catch (error) {
    if (error instanceof SXFError) throw error;
    throw new FormatError("a P-256 public key is not a point on the curve");
  }
}

function entryBytes(entry, kind, idField, sizes) {
  if (!entry || typeof entry !== "object" || entry.kind !== kind) {
    throw new FormatError(`this is not a ${kind} key entry`);
  }
  const members = ["kind", idField, ...Object.keys(sizes)];
  const keys = Object.keys(entry);
  if (keys.length !== members.length || !members.every((m) => keys.includes(m))) {
    throw new FormatError(`a ${kind} key entry has exactly the members ${members.join(", ")}`);
  }
  if (typeof entry[idField] !== "string" || !entry[idField]) {
    throw new FormatError(`the key entry's ${idField} is missing`);
  }
  const decoded = {};
  for (const [name, size] of Object.entries(sizes)) {
    decoded[name] = b64uDecode(entry[name]);
    if (decoded[name].length !== size) {
      throw new FormatError(`the key entry's ${name} must be ${size} bytes`);
    }
  }
  return decoded;
}

async function p256Key(z, ephRaw, readerRaw, info, usage) {
  return aesKey(await hkdf(z, concat(ephRaw, readerRaw), info), usage);
}

/** Public-key entry wrapping deliveryKey for the reader's 65-byte ECDH public key. */
export async function wrapP256(readerPublic, keyId, deliveryId, deliveryKey) {
  const readerRaw = checkPublic(readerPublic);
  const reader = await importPublic(readerRaw);
  const eph = await subtle.generateKey(P256, false, ["deriveBits"]);
  const ephRaw = new Uint8Array(await subtle.exportKey("raw", eph.publicKey));
  const z = await subtle.deriveBits({ name: "ECDH", public: reader }, eph.privateKey, 256);
  const info = concat(P256_INFO, uuidToBytes(deliveryId));
  const key = await p256Key(z, ephRaw, readerRaw, info, "encrypt");
  const params = { name: "AES-GCM", iv: new Uint8Array(12), additionalData: info };
  const ct = new Uint8Array(await subtle.encrypt(params, key, checkKey(deliveryKey)));
  return { kind: "p256", key_id: keyId, eph: b64uEncode(ephRaw), ct: b64uEncode(ct) };
}

async function readerPublicOf(privateKey) {
  if (!privateKey.extractable) {
    throw new TypeError(
      "unwrapP256 needs the reader's public key: pass a CryptoKeyPair or readerPublic",
    );
  }
  const jwk = await subtle.exportKey("jwk", privateKey);
  return concat([4], b64uDecode(jwk.x), b64uDecode(jwk.y));
}

/**
 * The delivery key from a public-key entry. `key` is the reader's ECDH private CryptoKey, or
 * a CryptoKeyPair; the HKDF salt needs the reader's public key, taken from the pair, from an
 * extractable private key, or from `readerPublic` (65 bytes) for a non-extractable one.
 */
export async function unwrapP256(key, entry, deliveryId, readerPublic) {
  const fields = entryBytes(entry, "p256", "key_id", { eph: 65, ct: 48 });
  const eph = await importPublic(fields.eph);
  const privateKey = key.privateKey ?? key;
  let readerRaw;
  if (readerPublic !== undefined) readerRaw = checkPublic(readerPublic);
  else if (key.publicKey) readerRaw = new Uint8Array(await subtle.exportKey("raw", key.publicKey));
  else readerRaw = await readerPublicOf(privateKey);
  const z = await subtle.deriveBits({ name: "ECDH", public: eph }, privateKey, 256);
  const info = concat(P256_INFO, uuidToBytes(deliveryId));
  const aes = await p256Key(z, fields.eph, readerRaw, info, "decrypt");
  try {
    const params = { name: "AES-GCM", iv: new Uint8Array(12), additionalData: info };
    return new Uint8Array(await subtle.decrypt(params, aes, fields.ct));
  } catch (error) {
    if (error.name !== "OperationError") throw error;
    throw new AuthenticationError(
      "the key entry does not open with this key: it is for another key or delivery, " +
        "or it was changed",
    );
  }
}

// Fingerprints.

/** NFC, then ASCII A-Z lowercased only, then NFC again (the same in every runtime). */
export function normalizeEmail(email) {
  return email
    .normalize("NFC")
    .replace(/[A-Z]/g, (c) => c.toLowerCase())
    .normalize("NFC");
}

function lp(bytes) {
  if (bytes.length > 0xffff) throw new RangeError("a fingerprint field is longer than 65535 bytes");
  return concat([bytes.length >> 8, bytes.length & 0xff], bytes);
}

/** The full 32-byte fingerprint hash of a user key (pins store it as 64 hex digits). */
export async function fingerprint(email, ecdhPublic, ecdsaPublic) {
  const ecdh = checkPublic(ecdhPublic);
  const ecdsa = checkPublic(ecdsaPublic);
  await importPublic(ecdh);
  await importPublic(ecdsa);
  const email8 = utf8.encode(normalizeEmail(email));
  return sha256(concat(FPR_PREFIX, lp(utf8.encode("p256")), lp(email8), lp(ecdh), lp(ecdsa)));
}

/** The first 16 bytes in hex, as 8 groups of 4 separated by a space. */
export function formatFingerprint(fp) {
  fp = bytesOf(fp);
  if (fp.length !== 32) throw new RangeError("a fingerprint is 32 bytes");
  return toHex(fp.subarray(0, 16)).match(/.{4}/g).join(" ");
}

/** Compare two shown fingerprints, ignoring case and spaces. */
export function fingerprintsEqual(a, b) {
  const clean = (s) => s.replace(/\s+/g, "").toLowerCase();
  a = clean(a);
  b = clean(b);
  return /^[0-9a-f]+$/.test(a) && a === b;
}
