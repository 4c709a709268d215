// The approvals page: the sender compares a recipient's fingerprint (computed here from the
// public keys, never taken from the server), unlocks their own key once, and this browser
// re-wraps every waiting delivery's key for the recipient's key and pins the key in the
// keyring. The server gets only the new entries and the re-encrypted keyring.

import { fullFingerprintHex, KeyringRollback, verifyDelivery, WrongSecuPass } from "./secupass.js";
import { b64uDecode, fingerprintsEqual, unwrapP256, wrapP256 } from "./sxf.js";
import { jsonApi, KeySession, shownFingerprint } from "./compose_e2e.js";

const config = JSON.parse(document.getElementById("approvals-config").textContent);
const S = config.strings;
const call = jsonApi(config.csrfToken, S);
const session = new KeySession(call, config.api);
const $ = (id) => document.getElementById(id);
const fill = (text, values) =>
  text.replace(/\{(\w+)\}/g, (match, name) => (name in values ? values[name] : match));

const pending = new Map(); // key_id -> the API's JSON for that key, plus {card, fingerprintHex}
let waitingForUnlock = null; // the card whose approval waits for the SecuPass

function setCardStatus(item, text, isError = false) {
  const status = item.card.querySelector("[data-role=status]");
  status.textContent = text;
  status.classList.toggle("field-errors", isError);
}

function warn(item, text) {
  const box = item.card.querySelector("[data-role=warning]");
  box.textContent = text;
  box.hidden = !text;
}

function pageError(text) {
  const box = $("page-error");
  box.textContent = text;
  box.hidden = !text;
}

function describe(error) {
  if (error instanceof KeyringRollback) return S.rollback;
  if (error?.name === "ApiError") return error.message;
  console.error(error);
  return fill(S.failed, { message: error?.message || String(error) });
}

// -- showing what waits -------------------------------------------------------------------

async function load() {
  const answer = await call("GET", config.api.approvals);
  for (const card of document.querySelectorAll(".pending-key")) {
    const item = answer.pending.find((p) => p.key_id === card.dataset.keyId);
    if (!item) {
      card.remove(); // approved meanwhile (another tab or the CLI)
      continue;
    }
    item.card = card;
    item.fingerprintHex = await fullFingerprintHex(
      item.email,
      b64uDecode(item.ecdh_public),
      b64uDecode(item.ecdsa_public),
    );
    const shown = shownFingerprint(item.fingerprintHex);
    card.querySelector("[data-role=fingerprint]").textContent = shown;
    pending.set(item.key_id, item);
    const button = card.querySelector("[data-role=approve]");
    if (!fingerprintsEqual(shown, item.fingerprint || "")) {
      warn(item, S.fingerprintMismatch);
      button?.remove();
      continue;
    }
    if (!button) continue;
    const confirm = card.querySelector("[data-role=confirm]");
    confirm.addEventListener("change", () => {
      if (confirm.checked) setCardStatus(item, "");
    });
    button.disabled = false;
    button.addEventListener("click", () => start(item));
  }
}

// -- approving ------------------------------------------------------------------------------

function start(item) {
  const confirm = item.card.querySelector("[data-role=confirm]");
  if (!confirm.checked) {
    setCardStatus(item, fill(S.confirmFirst, { email: item.email }), true);
    confirm.focus();
    return;
  }
  if (!session.unlocked) {
    waitingForUnlock = item;
    const form = $("unlock");
    form.hidden = false;
    item.card.before(form);
    $("secupass").focus();
    return;
  }
  approve(item).catch((error) => setCardStatus(item, describe(error), true));
}

async function unlockThenApprove(event) {
  event.preventDefault();
  const input = $("secupass");
  const errorBox = $("unlock-error");
  errorBox.hidden = true;
  if (!input.value) {
    errorBox.textContent = S.secupassMissing;
    errorBox.hidden = false;
    return;
  }
  const submit = $("unlock-submit");
  submit.disabled = true;
  $("unlock-status").textContent = S.unlocking;
  try {
    await session.unlock(input.value);
  } catch (error) {
    $("unlock-status").textContent = "";
    errorBox.textContent = error instanceof WrongSecuPass ? S.wrongSecupass : describe(error);
    errorBox.hidden = false;
    input.focus();
    return;
  } finally {
    submit.disabled = false;
  }
  input.value = "";
  $("unlock-status").textContent = "";
  $("unlock").hidden = true;
  const item = waitingForUnlock;
  waitingForUnlock = null;
  if (item) approve(item).catch((error) => setCardStatus(item, describe(error), true));
}

async function approve(item) {
  const button = item.card.querySelector("[data-role=approve]");
  if (button.disabled) return;
  button.disabled = true;
  try {
    const { pins } = await session.keyring();
    const pinned = pins[item.email];
    if (pinned && pinned !== item.fingerprintHex && item.acknowledged !== pinned) {
      // Another key was approved for this address before: say so, and ask once more.
      item.acknowledged = pinned;
      warn(item, fill(S.pinnedOther, { email: item.email, pinned: shownFingerprint(pinned) }));
      button.textContent = S.approveNew;
      return;
    }
    setCardStatus(item, S.approving);
    const entries = [];
    const problems = [];
    for (const d of item.deliveries) {
      if (!d.sender_entry || d.sender_entry.key_id !== session.keyId) {
        problems.push(fill(S.oldSenderKey, { subject: d.subject, email: item.email }));
        continue;
      }
      const deliveryKey = await unwrapP256(
        session.unlocked.ecdh,
        d.sender_entry,
        d.delivery_id,
        session.unlocked.ecdhPublic,
      );
      // Only a delivery key this sender signed is passed on (not one the server slipped in).
      const signed = await verifyDelivery(
        session.unlocked.ecdsaPublic,
        b64uDecode(d.signature),
        d.delivery_id,
        d.level,
        deliveryKey,
        b64uDecode(d.manifest),
      );
      if (!signed) {
        problems.push(fill(S.badSignature, { subject: d.subject }));
        continue;
      }
      const entry = await wrapP256(
        b64uDecode(item.ecdh_public),
        item.key_id,
        d.delivery_id,
        deliveryKey,
      );
      entries.push({ delivery_id: d.delivery_id, entry });
    }
    warn(item, problems.join(" "));
    if (!entries.length) {
      setCardStatus(item, S.nothingToApprove, true);
      return;
    }
    await session.pin(item.email, item.fingerprintHex);
    const answer = await call("POST", config.api.approvals, { key_id: item.key_id, entries });
    for (const id of answer.approved) {
      item.card.querySelector(`[data-delivery-id="${id}"]`)?.classList.add("approved");
    }
    setCardStatus(item, fill(S.approved, { email: item.email, count: answer.approved.length }));
    item.card.querySelector("[data-role=confirm]")?.closest(".field")?.remove();
    button.remove();
    item.card.dataset.approved = "true";
  } finally {
    if (button.isConnected) button.disabled = false;
  }
}

// -- wiring ---------------------------------------------------------------------------------

if (!globalThis.crypto?.subtle) {
  pageError(S.unsupported);
} else {
  $("unlock").addEventListener("submit", unlockThenApprove);
  $("unlock-cancel").addEventListener("click", () => {
    $("unlock").hidden = true;
    waitingForUnlock = null;
  });
  load()
    .then(() => {
      document.body.dataset.approvalsReady = "true";
    })
    .catch((error) => pageError(describe(error)));
}
