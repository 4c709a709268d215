// SecuPass keys, keyrings, manifests and delivery signatures (DESIGN.md section 4).
//
// The browser twin of secupass/keys.py: the same bytes and the same checks, in camelCase.
// A plain ES module on WebCrypto. Byte values are Uint8Array; ids are UUID strings.
// Opening a private record throws one error, WrongSecuPass, for every failure.

import {
  b64uDecode,
  b64uEncode,
  bytesOf,
  concat,
  FormatError,
  fingerprint,
  hkdf,
  normalizeEmail,
  SXFError,
  sha256,
  toHex,
  uuidToBytes,
} from "./sxf.js";

const subtle = globalThis.crypto.subtle;
const utf8 = new TextEncoder();
const strictUtf8 = new TextDecoder("utf-8", { fatal: true });

export const KDF_NAME = "pbkdf2-sha256";
export const DEFAULT_ITERATIONS = 600_000;
export const MIN_ITERATIONS = 600_000; // for new keys; readers honour any stored count from 1
export const MAX_ITERATIONS = 10_000_000; // a reader refuses more, so a server cannot stall it
export const MIN_SECUPASS_LENGTH = 12;
export const KDF_SALT_LEN = 16;
export const PEPPER_LEN = 32;
const NONCE_LEN = 12;
const SIGNATURE_LEN = 64;
const ECDH = { name: "ECDH", namedCurve: "P-256" };
const ECDSA = { name: "ECDSA", namedCurve: "P-256" };
const ECDSA_SHA256 = { name: "ECDSA", hash: "SHA-256" };
const INFO = {
  secupass: utf8.encode("sxf/v1/secupass"),
  wrap: utf8.encode("sxf/v1/privkey-wrap"),
  keyring: utf8.encode("sxf/v1/keyring"),
  privkey: utf8.encode("sxf/v1/privkey"),
  message: utf8.encode("sxf/v1/message"),
  commit: utf8.encode("sxf/v1/commit"),
  delivery: utf8.encode("sxf/v1/delivery"),
};
const HEX64 = /^[0-9a-f]{64}$/;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const JWK_MEMBERS = ["crv", "d", "kty", "x", "y"];
const FILE_MEMBERS = ["file_id", "name", "type", "size", "digest"];
const LEVEL_MEMBER = { 3: "message_sha256", 4: "message" };
const CHECK_MESSAGE = utf8.encode("sxf/v1/privkey-check");

/** The private record did not open: wrong SecuPass, or the record is not intact. */
export class WrongSecuPass extends SXFError {
  constructor(message = "wrong SecuPass") {
    super(message);
  }
}

/** The keyring does not open or is not well formed. */
export class KeyringError extends SXFError {}

/** The server offered an older keyring than this client has seen. */
export class KeyringRollback extends KeyringError {}

/** The manifest does not open or does not describe the delivery's files. */
export class ManifestError extends SXFError {}

// -- small helpers ---------------------------------------------------------------------------

function equalBytes(a, b) {
  return a.length === b.length && a.every((v, i) => v === b[i]);
}

function sized(data, length, what) {
  data = bytesOf(data);
  if (data.length !== length) throw new RangeError(`the ${what} must be ${length} bytes`);
  return data;
}

function nonceOf(nonce) {
  if (nonce === undefined) return crypto.getRandomValues(new Uint8Array(NONCE_LEN));
  return sized(nonce, NONCE_LEN, "nonce");
}

function isInt(value, max = Number.MAX_SAFE_INTEGER) {
  return Number.isSafeInteger(value) && value >= 0 && value <= max;
}

async function aesGcm(op, rawKey, iv, data, additionalData) {
  const key = await subtle.importKey("raw", sized(rawKey, 32, "key"), "AES-GCM", false, [op]);
  const result = await subtle[op]({ name: "AES-GCM", iv, additionalData }, key, data);
  return new Uint8Array(result);
}

/** Decrypt iv || ciphertext; null when the tag does not verify. */
async function openSealed(rawKey, sealed, additionalData) {
  sealed = bytesOf(sealed);
  if (sealed.length < NONCE_LEN + 16) return null;
  try {
    const iv = sealed.subarray(0, NONCE_LEN);
    return await aesGcm("decrypt", rawKey, iv, sealed.subarray(NONCE_LEN), additionalData);
  } catch (error) {
    if (error.name === "OperationError") return null;
    throw error;
  }
}

async function seal(rawKey, nonce, plaintext, additionalData) {
  const iv = nonceOf(nonce);
  return concat(iv, await aesGcm("encrypt", rawKey, iv, plaintext, additionalData));
}

function parseJson(bytes) {
  return JSON.parse(strictUtf8.decode(bytes));
}

function isObject(value) {
  return value !== null && typeof value === "object" && !Array.isArray(value);
}

function hasExactly(object, members) {
  const keys = Object.keys(object);
  return keys.length === members.length && members.every((m) => Object.hasOwn(object, m));
}

function pepperBytes(pepper) {
  return typeof pepper === "string" ? b64uDecode(pepper) : bytesOf(pepper);
}

// -- SecuPass policy and key derivation ------------------------------------------------------

/** Length in code points after NFC, the number the policy counts. */
export function secuPassLength(secupass) {
  return [...secupass.normalize("NFC")].length;
}

const CHECK_STRINGS = {
  tooShort: "The SecuPass must be at least {min} characters long (this one has {length}).",
  sameAsPassword: "The SecuPass must differ from your login password.",
};

/**
 * Problems with a new SecuPass as sentences; empty means acceptable. `strings` may replace
 * the English sentences ({tooShort, sameAsPassword}; {min} and {length} are filled in).
 */
export function checkSecuPass(secupass, loginPassword, strings = {}) {
  const text = { ...CHECK_STRINGS, ...strings };
  const problems = [];
  const length = secuPassLength(secupass);
  if (length < MIN_SECUPASS_LENGTH) {
    problems.push(
      text.tooShort.replace("{min}", String(MIN_SECUPASS_LENGTH)).replace("{length}", length),
    );
  }
  if (
    loginPassword !== undefined &&
    loginPassword !== null &&
    secupass.normalize("NFC") === loginPassword.normalize("NFC")
  ) {
    problems.push(text.sameAsPassword);
  }
  return problems;
}

/** Parameters for a new key or SecuPass: {kdf, iterations, salt}, at least MIN_ITERATIONS. */
export function newKdfParams(iterations = DEFAULT_ITERATIONS) {
  if (!isInt(iterations, MAX_ITERATIONS) || iterations < MIN_ITERATIONS) {
    throw new RangeError(`a new key needs ${MIN_ITERATIONS} to ${MAX_ITERATIONS} iterations`);
  }
  const salt = crypto.getRandomValues(new Uint8Array(KDF_SALT_LEN));
  return { kdf: KDF_NAME, iterations, salt };
}

/**
 * {root, wrapKey, keyringKey} (32 bytes each) from the SecuPass (NFC), the key's salt and
 * iteration count, and the pepper. Any stored count from 1 to MAX_ITERATIONS is honoured.
 */
export async function derive(secupass, salt, iterations, pepper, kdf = KDF_NAME) {
  if (kdf !== KDF_NAME) throw new FormatError(`the key derivation ${kdf} is not supported`);
  if (!isInt(iterations, MAX_ITERATIONS) || iterations < 1) {
    throw new FormatError(`the iteration count must be between 1 and ${MAX_ITERATIONS}`);
  }
  salt = bytesOf(salt);
  pepper = bytesOf(pepper);
  if (salt.length !== KDF_SALT_LEN) {
    throw new FormatError(`the SecuPass salt must be ${KDF_SALT_LEN} bytes`);
  }
  if (pepper.length !== PEPPER_LEN) throw new FormatError(`the pepper must be ${PEPPER_LEN} bytes`);
  const password = utf8.encode(secupass.normalize("NFC"));
  const base = await subtle.importKey("raw", password, "PBKDF2", false, ["deriveBits"]);
  const params = { name: "PBKDF2", hash: "SHA-256", salt, iterations };
  const m = new Uint8Array(await subtle.deriveBits(params, base, 256));
  const root = await hkdf(m, pepper, INFO.secupass);
  const empty = new Uint8Array(0);
  return {
    root,
    wrapKey: await hkdf(root, empty, INFO.wrap),
    keyringKey: await hkdf(root, empty, INFO.keyring),
  };
}

// -- user keys and the private record --------------------------------------------------------

async function rawPublic(publicKey) {
  return new Uint8Array(await subtle.exportKey("raw", publicKey));
}

async function withPublics(ecdh, ecdsa) {
  return {
    ecdh,
    ecdsa,
    ecdhPublic: await rawPublic(ecdh.publicKey),
    ecdsaPublic: await rawPublic(ecdsa.publicKey),
  };
}

/**
 * Two new P-256 key pairs: {ecdh, ecdsa (CryptoKeyPairs), ecdhPublic, ecdsaPublic (65 bytes)}.
 * The private keys are extractable, so that sealPrivateRecord can write them.
 */
export async function generateUserKeys() {
  const ecdh = await subtle.generateKey(ECDH, true, ["deriveBits"]);
  const ecdsa = await subtle.generateKey(ECDSA, true, ["sign", "verify"]);
  return withPublics(ecdh, ecdsa);
}

function jwkValue(value) {
  const bytes = b64uDecode(value);
  if (bytes.length > 32) throw new FormatError("a P-256 JWK value is longer than 32 bytes");
  const padded = new Uint8Array(32);
  padded.set(bytes, 32 - bytes.length);
  return b64uEncode(padded);
}

async function jwkString(privateKey) {
  const jwk = await subtle.exportKey("jwk", privateKey);
  const [d, x, y] = [jwk.d, jwk.x, jwk.y].map(jwkValue);
  return `{"crv":"P-256","d":"${d}","kty":"EC","x":"${x}","y":"${y}"}`;
}

/** {"ecdh":JWK,"ecdsa":JWK} as UTF-8, each JWK exactly {"crv","d","kty","x","y"}. */
export async function privateJson(keys) {
  const ecdh = await jwkString(keys.ecdh.privateKey);
  const ecdsa = await jwkString(keys.ecdsa.privateKey);
  return utf8.encode(`{"ecdh":${ecdh},"ecdsa":${ecdsa}}`);
}

/** iv || AES-256-GCM(wrapKey, iv, privateJson, aad="sxf/v1/privkey" || keyId). */
export async function sealPrivateRecord(keys, wrapKey, keyId, iv) {
  const aad = concat(INFO.privkey, uuidToBytes(keyId));
  return seal(wrapKey, iv, await privateJson(keys), aad);
}

/**
 * Import a private JWK from only kty, crv, x, y and d, and prove d*G = (x, y) = the stored
 * public key: a signature made with d must verify under the stored public key.
 */
async function importChecked(jwk, expectedPublic, algorithm, usages, extractable) {
  if (!isObject(jwk) || !hasExactly(jwk, JWK_MEMBERS)) throw new Error("not a private JWK");
  if (jwk.kty !== "EC" || jwk.crv !== "P-256") throw new Error("not a P-256 key");
  const [x, y, d] = [jwk.x, jwk.y, jwk.d].map(b64uDecode);
  if (x.length !== 32 || y.length !== 32 || d.length !== 32) throw new Error("bad JWK value");
  if (!equalBytes(concat([4], x, y), expectedPublic)) throw new Error("another public key");
  const clean = { kty: "EC", crv: "P-256", x: jwk.x, y: jwk.y, d: jwk.d };
  const signer = await subtle.importKey("jwk", clean, ECDSA, false, ["sign"]);
  const verifier = await subtle.importKey("raw", expectedPublic, ECDSA, false, ["verify"]);
  const signature = await subtle.sign(ECDSA_SHA256, signer, CHECK_MESSAGE);
  if (!(await subtle.verify(ECDSA_SHA256, verifier, signature, CHECK_MESSAGE))) {
    throw new Error("d does not match the public key");
  }
  const privateKey = await subtle.importKey("jwk", clean, algorithm, extractable, usages);
  const publicUsages = algorithm === ECDSA ? ["verify"] : [];
  const publicKey = await subtle.importKey("raw", expectedPublic, algorithm, true, publicUsages);
  return { privateKey, publicKey };
}

/**
 * The user's keys from a private record, like generateUserKeys() returns them; private keys
 * are not extractable unless {extractable: true}. Throws WrongSecuPass for any failure.
 */
export async function openPrivateRecord(record, wrapKey, keyId, ecdhPublic, ecdsaPublic, options) {
  const extractable = Boolean(options?.extractable);
  const publics = [bytesOf(ecdhPublic), bytesOf(ecdsaPublic)];
  for (const raw of publics) {
    if (raw.length !== 65 || raw[0] !== 4) {
      throw new FormatError("a P-256 public key must be its 65-byte uncompressed point");
    }
  }
  const aad = concat(INFO.privkey, uuidToBytes(keyId));
  sized(wrapKey, 32, "wrap key");
  try {
    const plain = await openSealed(wrapKey, record, aad);
    if (plain === null) throw new Error("tag");
    const document = parseJson(plain);
    if (!isObject(document) || !hasExactly(document, ["ecdh", "ecdsa"])) {
      throw new Error("not a private record");
    }
    const ecdh = await importChecked(document.ecdh, publics[0], ECDH, ["deriveBits"], extractable);
    const ecdsa = await importChecked(document.ecdsa, publics[1], ECDSA, ["sign"], extractable);
    return { ecdh, ecdsa, ecdhPublic: publics[0], ecdsaPublic: publics[1] };
  } catch {
    throw new WrongSecuPass();
  }
}

// -- the keyring -----------------------------------------------------------------------------

/** The 64 hex digits of the full fingerprint hash, as keyrings pin it. */
export async function fullFingerprintHex(email, ecdhPublic, ecdsaPublic) {
  return toHex(await fingerprint(email, ecdhPublic, ecdsaPublic));
}

function checkPins(pins) {
  if (!isObject(pins)) throw new KeyringError("the keyring's pins are not a mapping");
  for (const [address, pin] of Object.entries(pins)) {
    if (!address || normalizeEmail(address) !== address) {
      throw new KeyringError(`the keyring address ${address} is not normalised`);
    }
    if (typeof pin !== "string" || !HEX64.test(pin)) {
      throw new KeyringError(`the keyring pin for ${address} is not 64 lowercase hex digits`);
    }
  }
  return pins;
}

function checkVersion(version) {
  if (!isInt(version) || version < 1) {
    throw new KeyringError("the keyring version must be a whole number from 1");
  }
  return version;
}

function byCodePoint(a, b) {
  const x = [...a].map((c) => c.codePointAt(0));
  const y = [...b].map((c) => c.codePointAt(0));
  for (let i = 0; i < Math.min(x.length, y.length); i++) if (x[i] !== y[i]) return x[i] - y[i];
  return x.length - y.length;
}

/** nonce || AES-256-GCM(keyringKey, nonce, {"version","pins"}, aad="sxf/v1/keyring" || keyId). */
export async function sealKeyring(pins, version, keyringKey, keyId, nonce) {
  checkPins(pins);
  const sorted = {};
  for (const address of Object.keys(pins).sort(byCodePoint)) sorted[address] = pins[address];
  const json = JSON.stringify({ version: checkVersion(version), pins: sorted });
  return seal(keyringKey, nonce, utf8.encode(json), concat(INFO.keyring, uuidToBytes(keyId)));
}

/**
 * {version, pins} from a keyring blob. `minVersion` is the highest version this client saw
 * for keyId; an older keyring throws KeyringRollback.
 */
export async function openKeyring(blob, keyringKey, keyId, { minVersion } = {}) {
  const plain = await openSealed(keyringKey, blob, concat(INFO.keyring, uuidToBytes(keyId)));
  if (plain === null) {
    throw new KeyringError(
      "the keyring does not open: it belongs to another key or it was changed",
    );
  }
  let document;
  try {
    document = parseJson(plain);
  } catch {
    throw new KeyringError("the keyring is not valid JSON");
  }
  if (!isObject(document) || !hasExactly(document, ["version", "pins"])) {
    throw new KeyringError("the keyring has exactly the members version and pins");
  }
  const version = checkVersion(document.version);
  const pins = checkPins(document.pins);
  if (minVersion !== undefined && minVersion !== null && version < minVersion) {
    throw new KeyringRollback(
      `the server offered keyring version ${version}, but version ${minVersion} was seen ` +
        "before: an older keyring is refused",
    );
  }
  return { version, pins };
}

// -- manifest and delivery signature ---------------------------------------------------------

/** HKDF-SHA256(deliveryKey, salt=empty, info="sxf/v1/message" || deliveryId). */
export async function messageKey(deliveryKey, deliveryId) {
  const key = sized(deliveryKey, 32, "delivery key");
  return hkdf(key, new Uint8Array(0), concat(INFO.message, uuidToBytes(deliveryId)));
}

/** HKDF-SHA256(deliveryKey, salt=empty, info="sxf/v1/commit" || deliveryId). */
export async function commit(deliveryKey, deliveryId) {
  const key = sized(deliveryKey, 32, "delivery key");
  return hkdf(key, new Uint8Array(0), concat(INFO.commit, uuidToBytes(deliveryId)));
}

function manifestLevel(manifest) {
  for (const [level, member] of Object.entries(LEVEL_MEMBER)) {
    if (hasExactly(manifest, ["files", member])) return Number(level);
  }
  throw new ManifestError(
    "a manifest has the members files and message (level 4) or files and " +
      "message_sha256 (level 3), nothing else",
  );
}

function checkManifest(manifest) {
  if (!isObject(manifest)) throw new ManifestError("the manifest is not a JSON object");
  const level = manifestLevel(manifest);
  if (level === 4 && typeof manifest.message !== "string") {
    throw new ManifestError("the manifest's message is not text");
  }
  const sha = manifest.message_sha256;
  if (level === 3 && !(typeof sha === "string" && HEX64.test(sha))) {
    throw new ManifestError("the manifest's message_sha256 is not 64 lowercase hex digits");
  }
  if (!Array.isArray(manifest.files)) {
    throw new ManifestError("the manifest's files are not a list");
  }
  const seen = new Set();
  for (const item of manifest.files) {
    if (!isObject(item) || !hasExactly(item, FILE_MEMBERS)) {
      throw new ManifestError(
        "each file in the manifest has exactly file_id, name, type, size and digest",
      );
    }
    const id = item.file_id;
    if (typeof id !== "string" || !UUID.test(id)) {
      throw new ManifestError("a file_id in the manifest is not a lowercase UUID");
    }
    if (seen.has(id)) throw new ManifestError(`the manifest lists file ${id} twice`);
    seen.add(id);
    if (typeof item.name !== "string" || !item.name) {
      throw new ManifestError(`the manifest has no name for file ${id}`);
    }
    if (typeof item.type !== "string") {
      throw new ManifestError(`the manifest's type for file ${id} is not text`);
    }
    if (!isInt(item.size)) {
      throw new ManifestError(`the manifest's size for file ${id} is not a whole number`);
    }
    if (typeof item.digest !== "string" || !HEX64.test(item.digest)) {
      throw new ManifestError(`the manifest's digest for file ${id} is not 64 hex digits`);
    }
  }
  return level;
}

/**
 * nonce || AES-256-GCM(messageKey, nonce, json, aad="sxf/v1/message" || deliveryId). The
 * manifest is {files: [{file_id, name, type, size, digest}], message} at level 4 or
 * {files, message_sha256} at level 3; names are NFC-normalised; members go in a fixed order.
 */
export async function sealManifest(manifest, deliveryKey, deliveryId, nonce) {
  if (!isObject(manifest) || !Array.isArray(manifest.files)) {
    throw new ManifestError("the manifest needs a list of files");
  }
  const files = manifest.files.map((item) => {
    if (!isObject(item) || !hasExactly(item, FILE_MEMBERS)) return item;
    const { file_id, name, type, size, digest } = item;
    const cleanName = typeof name === "string" ? name.normalize("NFC") : name;
    const cleanSize = typeof size === "bigint" ? Number(size) : size;
    return { file_id, name: cleanName, type, size: cleanSize, digest };
  });
  const document = { files };
  for (const [member, value] of Object.entries(manifest)) {
    if (member !== "files") document[member] = value;
  }
  checkManifest(document);
  const key = await messageKey(deliveryKey, deliveryId);
  const aad = concat(INFO.message, uuidToBytes(deliveryId));
  return seal(key, nonce, utf8.encode(JSON.stringify(document)), aad);
}

function sizeMap(files) {
  const entries = files instanceof Map ? [...files.entries()] : Object.entries(files);
  return new Map(entries.map(([id, size]) => [id.toLowerCase(), BigInt(size)]));
}

/**
 * Decrypt and check a manifest against the delivery's files ({fileId: plaintext size} or a
 * Map; sizes Number or BigInt): exactly those files, once each, with the headers' sizes, and
 * its level's member (message at 4, message_sha256 at 3) and not the other.
 */
export async function openManifest(blob, deliveryKey, deliveryId, level, files) {
  if (!(level in LEVEL_MEMBER)) throw new RangeError("only level 3 and 4 deliveries have one");
  const key = await messageKey(deliveryKey, deliveryId);
  const plain = await openSealed(key, blob, concat(INFO.message, uuidToBytes(deliveryId)));
  if (plain === null) {
    throw new ManifestError(
      "the manifest does not open: it belongs to another delivery or it was changed",
    );
  }
  let manifest;
  try {
    manifest = parseJson(plain);
  } catch {
    throw new ManifestError("the manifest is not valid JSON");
  }
  if (!isObject(manifest)) throw new ManifestError("the manifest is not a JSON object");
  const member = LEVEL_MEMBER[level];
  const other = LEVEL_MEMBER[7 - level];
  if (Object.hasOwn(manifest, other)) {
    throw new ManifestError(`a level ${level} manifest must not carry ${other}`);
  }
  if (!Object.hasOwn(manifest, member)) {
    throw new ManifestError(`a level ${level} manifest must carry ${member}`);
  }
  checkManifest(manifest);
  const expected = sizeMap(files);
  const listed = new Map(manifest.files.map((item) => [item.file_id, BigInt(item.size)]));
  const missing = [...expected.keys()].filter((id) => !listed.has(id)).sort();
  if (missing.length) throw new ManifestError(`the manifest does not list file ${missing[0]}`);
  const extra = [...listed.keys()].filter((id) => !expected.has(id)).sort();
  if (extra.length) {
    throw new ManifestError(`the manifest lists file ${extra[0]}, which is not in the delivery`);
  }
  for (const [id, size] of expected) {
    if (listed.get(id) !== size) {
      throw new ManifestError(
        `the manifest says file ${id} has ${listed.get(id)} bytes, but the stored file has ${size}`,
      );
    }
  }
  return manifest;
}

/** "sxf/v1/delivery" || deliveryId || uint8(level) || commit || SHA-256(manifest blob). */
export async function signedBytes(deliveryId, level, commitBytes, manifestBlob) {
  if (!(level in LEVEL_MEMBER)) throw new RangeError("only level 3 and 4 deliveries are signed");
  const c = sized(commitBytes, 32, "commit");
  const digest = await sha256(bytesOf(manifestBlob));
  return concat(INFO.delivery, uuidToBytes(deliveryId), [level], c, digest);
}

/** ECDSA-SHA256 over data as 64 bytes r || s; `key` is a private CryptoKey or a key pair. */
export async function sign(key, data) {
  const privateKey = key.privateKey ?? key;
  return new Uint8Array(await subtle.sign(ECDSA_SHA256, privateKey, bytesOf(data)));
}

/** Whether signature (64 bytes r || s) is ecdsaPublic's (65 bytes) signature of data. */
export async function verify(ecdsaPublic, data, signature) {
  const raw = bytesOf(ecdsaPublic);
  if (raw.length !== 65 || raw[0] !== 4) {
    throw new FormatError("a P-256 public key must be its 65-byte uncompressed point");
  }
  let publicKey;
  try {
    publicKey = await subtle.importKey("raw", raw, ECDSA, false, ["verify"]);
  } catch {
    throw new FormatError("a P-256 public key is not a point on the curve");
  }
  signature = bytesOf(signature);
  if (signature.length !== SIGNATURE_LEN) return false;
  return subtle.verify(ECDSA_SHA256, publicKey, signature, bytesOf(data));
}

/** The sender's signature of a level 3/4 delivery. */
export async function signDelivery(key, deliveryId, level, deliveryKey, manifestBlob) {
  const c = await commit(deliveryKey, deliveryId);
  return sign(key, await signedBytes(deliveryId, level, c, manifestBlob));
}

/** Check a delivery signature, recomputing commit from the unwrapped delivery key. */
export async function verifyDelivery(
  ecdsaPublic, signature, deliveryId, level, deliveryKey, manifestBlob,
) {
  const c = await commit(deliveryKey, deliveryId);
  return verify(ecdsaPublic, await signedBytes(deliveryId, level, c, manifestBlob), signature);
}

// -- whole workflows over the key API's JSON (values in unpadded base64url) -----------------

async function freshRecord(keys, secupass, keyId, pepper, iterations) {
  const params = newKdfParams(iterations);
  const derived = await derive(secupass, params.salt, params.iterations, pepper);
  const record = await sealPrivateRecord(keys, derived.wrapKey, keyId);
  const fields = {
    kdf: params.kdf,
    iterations: params.iterations,
    salt: b64uEncode(params.salt),
    private_record: b64uEncode(record),
  };
  return { derived, fields };
}

/**
 * A new key for an issued keyId and pepper. Returns {unlocked, body}: unlocked as unlock()
 * returns it, body the JSON for POST /api/v1/keys/<key_id>/register. Throws RangeError with
 * the problems if the SecuPass is refused. Options: {iterations, loginPassword}.
 */
export async function createKey(secupass, keyId, pepper, options = {}) {
  const problems = checkSecuPass(secupass, options.loginPassword);
  if (problems.length) throw new RangeError(problems.join(" "));
  pepper = pepperBytes(pepper);
  const keys = await generateUserKeys();
  const { derived, fields } = await freshRecord(
    keys, secupass, keyId, pepper, options.iterations ?? DEFAULT_ITERATIONS,
  );
  const keyring = await sealKeyring({}, 1, derived.keyringKey, keyId);
  const body = {
    ecdh_public: b64uEncode(keys.ecdhPublic),
    ecdsa_public: b64uEncode(keys.ecdsaPublic),
    ...fields,
    keyring: b64uEncode(keyring),
  };
  return { unlocked: { keyId, ...keys, derived }, body };
}

/**
 * Open the private record described by GET /api/v1/keys/mine (keyInfo) with the pepper from
 * POST mine/pepper. Returns {keyId, ecdh, ecdsa (CryptoKeyPairs with non-extractable private
 * keys), ecdhPublic, ecdsaPublic, derived: {root, wrapKey, keyringKey}}; throws WrongSecuPass.
 */
export async function unlock(secupass, keyInfo, pepper, options = {}) {
  const derived = await derive(
    secupass,
    b64uDecode(keyInfo.salt),
    keyInfo.iterations,
    pepperBytes(pepper),
    keyInfo.kdf,
  );
  const keys = await openPrivateRecord(
    b64uDecode(keyInfo.private_record),
    derived.wrapKey,
    keyInfo.key_id,
    b64uDecode(keyInfo.ecdh_public),
    b64uDecode(keyInfo.ecdsa_public),
    options,
  );
  return { keyId: keyInfo.key_id, ...keys, derived };
}

/**
 * The JSON for POST /api/v1/keys/mine/change: the same key under a new SecuPass, record and
 * keyring re-encrypted with a new salt and nonces, keyring version + 1. Options:
 * {iterations, loginPassword, minKeyringVersion}.
 */
export async function changeSecuPass(oldSecupass, newSecupass, keyInfo, pepper, options = {}) {
  const problems = checkSecuPass(newSecupass, options.loginPassword);
  if (problems.length) throw new RangeError(problems.join(" "));
  pepper = pepperBytes(pepper);
  const unlocked = await unlock(oldSecupass, keyInfo, pepper, { extractable: true });
  const { version, pins } = await openKeyring(
    b64uDecode(keyInfo.keyring),
    unlocked.derived.keyringKey,
    unlocked.keyId,
    { minVersion: options.minKeyringVersion },
  );
  const { derived, fields } = await freshRecord(
    unlocked, newSecupass, unlocked.keyId, pepper, options.iterations ?? DEFAULT_ITERATIONS,
  );
  const keyring = await sealKeyring(pins, version + 1, derived.keyringKey, unlocked.keyId);
  return { ...fields, keyring: b64uEncode(keyring), keyring_version: version + 1 };
}
