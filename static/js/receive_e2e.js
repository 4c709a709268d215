// The recipient's delivery page at levels 3 and 4: unlock the SecuPass key, check the
// sender's signature against the pinned fingerprint, open the manifest and save the files,
// decrypted here (e2e_download.js). The SecuPass, the private keys and the delivery key never
// leave this page; the pepper is fetched for every unlock and kept only in memory.

import {
  fullFingerprintHex,
  KeyringError,
  KeyringRollback,
  ManifestError,
  openKeyring,
  openManifest,
  sealKeyring,
  unlock,
  verifyDelivery,
  WrongSecuPass,
} from "./secupass.js";
import {
  b64uDecode,
  b64uEncode,
  fingerprint,
  fingerprintsEqual,
  formatFingerprint,
  normalizeEmail,
  SXFError,
  toHex,
  unwrapP256,
} from "./sxf.js";
import { formatBytes, formatPercent, interpolate } from "./format.js";
import { jsonApi } from "./page_api.js";
import {
  Cancelled,
  DigestMismatch,
  HttpError,
  NetworkError,
  openSink,
  safeName,
  TooLarge,
  transfer,
} from "./e2e_download.js";
import { noteKeyringVersion, seenKeyringVersion } from "./compose_e2e.js";

const config = JSON.parse(document.getElementById("e2e-config").textContent);
const S = config.strings;
const urls = config.urls;
const $ = (id) => document.getElementById(id);
const utf8 = new TextEncoder();
const running = new Set();
// ms between progress updates while saving: each one costs the page time that decryption needs
const PROGRESS_EVERY = 250;

/** An error whose message is meant for the person at the page. */
class PageError extends Error {
  constructor(message, { field = null, alarm = false } = {}) {
    super(message);
    this.field = field;
    this.alarm = alarm;
  }
}

/** Something is wrong in a way that means "do not trust this delivery": stop loudly. */
const alarm = (message) => new PageError(message, { alarm: true });

const api = jsonApi({
  csrfToken: config.csrfToken,
  strings: S,
  makeError: (message, status) => Object.assign(new PageError(message), { status }),
});

function fromHex(hex) {
  return Uint8Array.from(hex.match(/../g), (pair) => parseInt(pair, 16));
}

async function sha256Hex(bytes) {
  return toHex(new Uint8Array(await crypto.subtle.digest("SHA-256", bytes)));
}

function setStatus(text) {
  $("unlock-status").textContent = text;
}

function showError(error) {
  if (!(error instanceof PageError)) console.error(error);
  const message =
    error instanceof PageError ? error.message : interpolate(S.failed, { message: error.message });
  setStatus("");
  if (error.alarm) {
    $("replace-pin-box").hidden = true;
    $("alarm-text").textContent = message;
    $("alarm").hidden = false;
    $("unlock-card").hidden = true;
    $("sender-check").hidden = true;
    $("alarm").scrollIntoView();
    return;
  }
  const box = $("unlock-error");
  box.textContent = message;
  box.hidden = false;
  const input = error.field && $(error.field);
  if (input) {
    input.closest(".field")?.classList.add("invalid");
    input.setAttribute("aria-invalid", "true");
    input.focus();
  }
}

function clearError() {
  const box = $("unlock-error");
  box.hidden = true;
  box.textContent = "";
  $("secupass").closest(".field")?.classList.remove("invalid");
  $("secupass").removeAttribute("aria-invalid");
}

// -- the keyring and the sender's pin ---------------------------------------------------------

async function openRing(mine, keyringKey) {
  const seen = seenKeyringVersion(mine.key_id);
  let ring;
  try {
    ring = await openKeyring(b64uDecode(mine.keyring), keyringKey, mine.key_id, {
      minVersion: seen,
    });
  } catch (error) {
    if (error instanceof KeyringRollback) throw alarm(S.keyringRollback);
    if (error instanceof KeyringError) throw alarm(S.keyringBroken);
    throw error;
  }
  noteKeyringVersion(mine.key_id, ring.version);
  return { ...ring, newDevice: seen === undefined };
}

function askToPin() {
  $("pin-ask").hidden = false;
  $("pin-sender").focus();
  return new Promise((resolve) => {
    const answer = (yes) => () => {
      $("pin-ask").hidden = true;
      resolve(yes);
    };
    $("pin-sender").addEventListener("click", answer(true), { once: true });
    $("pin-cancel").addEventListener("click", answer(false), { once: true });
  });
}

/**
 * Store the pin as a new keyring version; a concurrent change is merged once. `replacing` is
 * the pin this replaces (the person confirmed the sender's new key), else there must be none.
 */
async function storePin(keyId, keyringKey, ring, address, pin, replacing = undefined) {
  let current = ring;
  for (let attempt = 0; attempt < 2; attempt++) {
    if (current.pins[address] === pin) return;
    if (current.pins[address] !== replacing) throw alarm(S.pinChanged);
    const version = current.version + 1;
    const blob = await sealKeyring({ ...current.pins, [address]: pin }, version, keyringKey, keyId);
    try {
      await api("PUT", urls.keyring, { keyring: b64uEncode(blob), version, key_id: keyId });
      noteKeyringVersion(keyId, version);
      return;
    } catch (error) {
      if (error.status !== 409 || attempt > 0) throw error;
    }
    const fresh = await api("GET", urls.mine);
    if (fresh.key_id !== keyId) throw new PageError(S.keyChanged);
    current = await openRing(fresh, keyringKey);
  }
}

async function checkSender(info, ring) {
  const sender = info.sender_key;
  if (!sender || normalizeEmail(sender.email) !== normalizeEmail(info.sender.email)) {
    throw alarm(S.noSenderKey);
  }
  const ecdh = b64uDecode(sender.ecdh_public);
  const ecdsa = b64uDecode(sender.ecdsa_public);
  const full = await fullFingerprintHex(sender.email, ecdh, ecdsa);
  const shown = formatFingerprint(fromHex(full));
  const address = normalizeEmail(sender.email);
  const pin = ring.pins[address];
  const pinnedShown = pin ? formatFingerprint(fromHex(pin)) : "";
  return { email: sender.email, ecdsa, full, shown, address, pin, pinnedShown };
}

/** The pin differs: stop loudly; only an explicit confirmation replaces the pin. */
async function confirmNewSenderKey(sender, mine, keyringKey, ring) {
  $("alarm-text").textContent = interpolate(S.pinMismatch, {
    email: sender.email,
    pinned: sender.pinnedShown,
    shown: sender.shown,
  });
  $("replace-pin-box").hidden = false;
  $("alarm").hidden = false;
  $("unlock-card").hidden = true;
  $("alarm").scrollIntoView();
  await new Promise((resolve) => {
    $("replace-pin").addEventListener("click", resolve, { once: true });
  });
  $("replace-pin").disabled = true;
  await storePin(mine.key_id, keyringKey, ring, sender.address, sender.full, sender.pin);
  $("alarm").hidden = true;
  $("sender-fingerprint").textContent = sender.shown;
  $("sender-check-text").textContent = interpolate(S.newKeyPinned, { email: sender.address });
  $("sender-check").hidden = false;
}

async function pinSender(sender, mine, keyringKey, ring) {
  $("sender-fingerprint").textContent = sender.shown;
  $("sender-check").hidden = false;
  if (ring.newDevice) {
    $("sender-check-text").textContent = interpolate(S.askPin, { email: sender.address });
    if (!(await askToPin())) throw new PageError(S.pinCancelled);
  }
  $("sender-check-text").textContent = interpolate(S.firstFrom, { email: sender.address });
  try {
    await storePin(mine.key_id, keyringKey, ring, sender.address, sender.full);
  } catch (error) {
    if (error instanceof PageError && error.alarm) throw error;
    $("sender-check-text").textContent = interpolate(S.pinFailed, { message: error.message });
  }
}

// -- opening the delivery ---------------------------------------------------------------------

async function checkLevel3(info, manifest) {
  const hash = await sha256Hex(utf8.encode(info.message));
  if (hash !== manifest.message_sha256 || info.message_sha256 !== manifest.message_sha256) {
    throw alarm(S.messageChanged);
  }
  const signed = new Map(manifest.files.map((item) => [item.file_id, item.name.normalize("NFC")]));
  return info.files.some((f) => {
    const name = (f.name || "").normalize("NFC");
    const want = signed.get(f.id);
    return name !== want && name !== safeName(want);
  });
}

async function openDelivery(secupass) {
  setStatus(S.unlocking);
  const [mine, info] = await Promise.all([api("GET", urls.mine), api("GET", urls.e2e)]);
  if (!info.entry || !info.reader || info.reader.key_id !== mine.key_id) {
    throw new PageError(S.keyChanged);
  }
  const { pepper } = await api("POST", urls.pepper);
  let unlocked;
  try {
    unlocked = await unlock(secupass, mine, pepper);
  } catch (error) {
    if (error instanceof WrongSecuPass) throw new PageError(S.wrongSecupass, { field: "secupass" });
    throw error;
  }
  $("secupass").value = "";
  setStatus(S.checking);
  const keyringKey = unlocked.derived.keyringKey;
  let deliveryKey;
  try {
    deliveryKey = await unwrapP256(unlocked.ecdh, info.entry, info.delivery_id);
  } catch (error) {
    if (error instanceof SXFError) throw alarm(S.entryBroken);
    throw error;
  }
  const ring = await openRing(mine, keyringKey);
  const sender = await checkSender(info, ring);
  const manifestBlob = b64uDecode(info.manifest);
  let signed = false;
  try {
    const signature = b64uDecode(info.signature);
    signed = await verifyDelivery(
      sender.ecdsa, signature, info.delivery_id, info.level, deliveryKey, manifestBlob,
    );
  } catch (error) {
    if (!(error instanceof SXFError)) throw error;
  }
  if (!signed) throw alarm(S.badSignature);
  let manifest;
  const sizes = Object.fromEntries(info.files.map((f) => [f.id, f.size]));
  try {
    manifest = await openManifest(manifestBlob, deliveryKey, info.delivery_id, info.level, sizes);
  } catch (error) {
    if (error instanceof ManifestError) {
      throw alarm(interpolate(S.manifestBroken, { error: error.message }));
    }
    throw error;
  }
  const namesDiffer = info.level === 3 ? await checkLevel3(info, manifest) : false;
  if (!sender.pin) await pinSender(sender, mine, keyringKey, ring);
  else if (sender.pin !== sender.full) await confirmNewSenderKey(sender, mine, keyringKey, ring);
  return { info, manifest, deliveryKey, namesDiffer };
}

// -- the opened delivery ----------------------------------------------------------------------

function leftText(left) {
  if (left === null) return "";
  return left === 1 ? S.leftOne : interpolate(S.leftMany, { left });
}

function fileError(error) {
  if (error instanceof Cancelled || error.name === "AbortError") return S.cancelled;
  if (error instanceof TooLarge) return S.tooLarge;
  if (error instanceof HttpError) {
    if (error.status === 410) return S.gone;
    if (error.status === 404) return S.notFound;
    return interpolate(S.serverError, { status: error.status });
  }
  if (error instanceof NetworkError) return S.networkFailed;
  if (error instanceof DigestMismatch) return S.digestMismatch;
  if (error instanceof SXFError) return interpolate(S.tampered, { error: error.message });
  console.error(error);
  return interpolate(S.failed, { message: error.message });
}

async function refreshLeft(files) {
  try {
    const info = await api("GET", urls.e2e);
    for (const f of info.files) {
      const item = files.get(f.id);
      if (item) item.setLeft(f.left);
    }
  } catch {
    // the counts shown stay as they were
  }
}

function fileRow(file, signed, opened, files) {
  const row = document.querySelector(`tr[data-file-id="${file.id}"]`);
  const name = safeName(signed.name);
  row.querySelector(".receive-name").textContent = signed.name;
  const cell = row.querySelector(".e2e-action");
  const button = document.createElement("button");
  button.type = "button";
  button.className = "primary e2e-save";
  button.textContent = S.save;
  const left = document.createElement("span");
  left.className = "hint e2e-left";
  const progress = document.createElement("progress");
  progress.max = 1;
  progress.value = 0;
  progress.hidden = true;
  const status = document.createElement("p");
  status.className = "e2e-status";
  status.setAttribute("role", "status");
  const note = document.createElement("p");
  note.className = "hint e2e-note";
  note.hidden = true;
  cell.replaceChildren(button, left, progress, status, note);
  const item = {
    setLeft(value) {
      file.left = value;
      left.textContent = leftText(value);
      button.disabled = value === 0 || running.has(file.id);
    },
  };
  item.setLeft(file.left);
  button.addEventListener("click", async () => {
    if (running.has(file.id)) return;
    running.add(file.id);
    button.disabled = true;
    status.textContent = "";
    status.className = "e2e-status";
    const controller = new AbortController();
    let sink = null;
    try {
      sink = await openSink(name, file.size, {
        worker: { url: urls.serviceWorker, scope: urls.serviceWorkerScope },
        memoryLimit: config.memoryLimit,
        onCancel: () => controller.abort(),
      });
      note.textContent = S.memoryNote;
      note.hidden = sink.kind !== "memory";
      progress.hidden = false;
      const expect = {
        deliveryKey: opened.deliveryKey,
        deliveryId: config.deliveryId,
        digest: signed.digest,
      };
      const total = Math.max(1, file.size);
      let shown = -Infinity;
      await transfer(file, expect, sink, {
        signal: controller.signal,
        onProgress: (done) => {
          const now = performance.now();
          if (now - shown < PROGRESS_EVERY) return;
          shown = now;
          progress.value = done / total;
          status.textContent = interpolate(S.saving, {
            percent: formatPercent(done / total),
            done: formatBytes(done),
          });
        },
      });
      await sink.close();
      // Recorded (audit, receipt) before the page says it is done, so nothing is still
      // under way when the person leaves.
      await api("POST", urls.downloaded, { file_id: file.id }).catch((error) => console.warn(error));
      progress.value = 1;
      status.textContent = S.saved;
      status.classList.add("ok");
    } catch (error) {
      await sink?.abort(error.message);
      progress.hidden = true;
      status.textContent = fileError(error);
      status.classList.add("failed");
    } finally {
      running.delete(file.id);
      item.setLeft(file.left);
      refreshLeft(files);
    }
  });
  return item;
}

function show(opened) {
  const { info, manifest, namesDiffer } = opened;
  $("unlock-card").hidden = true;
  $("opened").hidden = false;
  if (info.level === 4) {
    $("e2e-message-text").textContent = manifest.message;
    $("e2e-message").hidden = !manifest.message;
  } else {
    $("message-check")?.replaceChildren(S.messageVerified);
    $("message-check")?.classList.add("ok");
  }
  $("names-differ").hidden = !namesDiffer;
  const signed = new Map(manifest.files.map((item) => [item.file_id, item]));
  const files = new Map();
  for (const file of info.files) {
    files.set(file.id, fileRow(file, signed.get(file.id), opened, files));
  }
  document.querySelector(".e2e-save:not(:disabled)")?.focus();
}

function wireUnlock() {
  const form = $("unlock-form");
  const button = $("unlock");
  let busy = false;
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    if (busy) return;
    clearError();
    const secupass = $("secupass").value;
    if (!secupass) {
      showError(new PageError(S.secupassMissing, { field: "secupass" }));
      return;
    }
    busy = true;
    button.disabled = true;
    try {
      show(await openDelivery(secupass));
      setStatus("");
    } catch (error) {
      showError(error);
    } finally {
      busy = false;
      button.disabled = false;
    }
  });
  button.disabled = false;
  window.addEventListener("beforeunload", (event) => {
    if (running.size) event.preventDefault();
  });
}

async function checkOwnFingerprint() {
  const key = config.ownKey;
  const element = $("own-fingerprint");
  if (!key || !element) return;
  const [ecdh, ecdsa] = [key.ecdh_public, key.ecdsa_public].map(b64uDecode);
  const shown = formatFingerprint(await fingerprint(config.email, ecdh, ecdsa));
  if (!fingerprintsEqual(shown, element.textContent)) {
    $("own-fingerprint-error").hidden = false;
  }
  element.textContent = shown;
}

if (!globalThis.crypto?.subtle) {
  const box = $("unlock-error") || $("own-fingerprint-error");
  if (box) {
    box.textContent = S.unsupported;
    box.hidden = false;
  }
} else if (config.state === "ready") {
  wireUnlock();
} else if (config.state === "waiting") {
  checkOwnFingerprint().catch((error) => console.error(error));
}
