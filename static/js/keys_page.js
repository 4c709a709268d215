// The SecuPass pages: create a key, reset it, change the SecuPass, and check the fingerprint
// shown on the profile. Everything secret happens here, in the browser: the SecuPass and the
// private keys never leave it; the server gets only public keys and encrypted records.

import {
  changeSecuPass,
  createKey,
  KeyringRollback,
  secuPassLength,
  WrongSecuPass,
} from "./secupass.js";
import { b64uDecode, fingerprint, fingerprintsEqual, formatFingerprint } from "./sxf.js";
import { noteKeyringVersion, seenKeyringVersion } from "./compose_e2e.js";
import { interpolate } from "./format.js";
import { jsonApi } from "./page_api.js";

const config = JSON.parse(document.getElementById("keys-config").textContent);
const S = config.strings;
const ZERO_UUID = "00000000-0000-0000-0000-000000000000";
const $ = (id) => document.getElementById(id);

// -- helpers --------------------------------------------------------------------------------

const api = jsonApi({
  csrfToken: config.csrfToken,
  strings: S,
  makeError: (message) => new PageError(message),
});

/** An error whose message is meant for the person at the page; `field` gets the focus. */
class PageError extends Error {
  constructor(message, field) {
    super(message);
    this.field = field;
  }
}

function nfc(text) {
  return text.normalize("NFC");
}

function value(id) {
  return $(id)?.value ?? "";
}

function setStatus(text) {
  $("status").textContent = text;
}

function clearErrors() {
  const box = $("form-error");
  box.hidden = true;
  box.textContent = "";
  for (const field of document.querySelectorAll(".field.invalid")) {
    field.classList.remove("invalid");
    field.querySelector("input")?.removeAttribute("aria-invalid");
  }
}

function showError(error) {
  const message =
    error instanceof PageError ? error.message : interpolate(S.failed, { message: error });
  if (!(error instanceof PageError)) console.error(error);
  const box = $("form-error");
  const line = document.createElement("p");
  line.textContent = message;
  box.replaceChildren(line);
  box.hidden = false;
  setStatus("");
  const input = error.field && $(error.field);
  if (input) {
    input.closest(".field")?.classList.add("invalid");
    input.setAttribute("aria-invalid", "true");
    input.focus();
  }
}

function clearInputs() {
  for (const input of document.querySelectorAll("#key-form input[type=password]")) {
    input.value = "";
  }
}

/** What the browser refuses before anything is sent: returns the checked login password. */
function checkNewSecuPass() {
  const secupass = value("secupass");
  const length = secuPassLength(secupass);
  if (length < config.minLength) {
    throw new PageError(interpolate(S.tooShort, { min: config.minLength, count: length }), "secupass");
  }
  if (nfc(secupass) !== nfc(value("secupass2"))) throw new PageError(S.mismatch, "secupass2");
  const login = value("login-password");
  if (!login) throw new PageError(S.loginMissing, "login-password");
  // Compared before the login password is checked on the server, so a SecuPass equal to it
  // is never sent anywhere.
  if (nfc(secupass) === nfc(login)) throw new PageError(S.sameAsLogin, "secupass");
  return { secupass, login };
}

async function checkLoginPassword(login) {
  setStatus(S.checking);
  const answer = await api("POST", config.api.checkPassword, { password: login });
  if (!answer.ok) throw new PageError(S.wrongLogin, "login-password");
}

async function shownFingerprint(ecdhPublic, ecdsaPublic) {
  return formatFingerprint(await fingerprint(config.email, ecdhPublic, ecdsaPublic));
}

// -- the flows ------------------------------------------------------------------------------

async function create() {
  const { secupass, login } = checkNewSecuPass();
  if (config.mode === "reset" && !$("confirm-reset").checked) {
    throw new PageError(S.confirmMissing, "confirm-reset");
  }
  await checkLoginPassword(login);
  const issued = await api("POST", config.api.issue);
  setStatus(S.making);
  const { unlocked, body } = await createKey(secupass, issued.key_id, issued.pepper, {
    loginPassword: login,
  });
  setStatus(S.saving);
  const registered = await api("POST", config.api.register.replace(ZERO_UUID, issued.key_id), body);
  clearInputs();
  noteKeyringVersion(issued.key_id, 1);
  const shown = await shownFingerprint(unlocked.ecdhPublic, unlocked.ecdsaPublic);
  if (!fingerprintsEqual(shown, registered.fingerprint)) throw new PageError(S.fingerprintMismatch);
  $("new-fingerprint").textContent = shown;
  $("key-form").hidden = true;
  $("done").hidden = false;
  $("continue").focus();
}

async function change() {
  const old = value("old-secupass");
  if (!old) throw new PageError(S.oldMissing, "old-secupass");
  const { secupass, login } = checkNewSecuPass();
  await checkLoginPassword(login);
  const mine = await api("GET", config.api.mine);
  const { pepper } = await api("POST", config.api.pepper);
  setStatus(S.unlocking);
  let body;
  try {
    body = await changeSecuPass(old, secupass, mine, pepper, {
      loginPassword: login,
      minKeyringVersion: seenKeyringVersion(mine.key_id),
    });
  } catch (error) {
    if (error instanceof WrongSecuPass) throw new PageError(S.wrongSecupass, "old-secupass");
    if (error instanceof KeyringRollback) throw new PageError(S.keyringRollback);
    throw error;
  }
  setStatus(S.saving);
  await api("POST", config.api.change, { ...body, key_id: mine.key_id });
  noteKeyringVersion(mine.key_id, body.keyring_version);
  clearInputs();
  setStatus("");
  $("key-form").hidden = true;
  $("done").hidden = false;
}

async function checkProfile() {
  const key = config.key;
  const shown = await shownFingerprint(b64uDecode(key.ecdh_public), b64uDecode(key.ecdsa_public));
  const element = $("fingerprint");
  if (!fingerprintsEqual(shown, element.textContent)) {
    const box = $("fingerprint-error");
    box.textContent = S.fingerprintMismatch;
    box.hidden = false;
  }
  element.textContent = shown;
}

// -- wiring ---------------------------------------------------------------------------------

function wire(flow) {
  const form = $("key-form");
  const button = $("submit");
  let busy = false;
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    if (busy) return;
    busy = true;
    button.disabled = true;
    clearErrors();
    try {
      await flow();
    } catch (error) {
      showError(error);
    } finally {
      busy = false;
      button.disabled = false;
    }
  });
  button.disabled = false;
}

if (!globalThis.crypto?.subtle) {
  const box = $("form-error") || $("fingerprint-error");
  if (box) {
    box.textContent = S.unsupported;
    box.hidden = false;
  }
} else if (config.mode === "create" || config.mode === "reset") {
  wire(create);
} else if (config.mode === "change") {
  wire(change);
} else if (config.mode === "profile" && config.key) {
  checkProfile().catch((error) => console.error(error));
}
