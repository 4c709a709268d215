// Sending at levels 3 and 4 (DESIGN.md section 4): everything secret happens here, in the
// browser. The sender's SecuPass unlocks their key; the keyring says which recipient keys they
// approved; the delivery key is wrapped for the sender's own key and for every recipient whose
// key matches its pin; the manifest (names, types, sizes, digests, and at level 4 the message)
// is sealed and signed. The server gets entries, the sealed manifest and the signature.
//
// The library part (KeySession, recipientKeys, buildSendBody, ...) is shared with the
// approvals page; ComposeE2E wires it into the compose page (static/js/compose.js).

import {
  fullFingerprintHex,
  KeyringRollback,
  openKeyring,
  sealKeyring,
  sealManifest,
  signDelivery,
  unlock,
  WrongSecuPass,
} from "./secupass.js";
import { b64uDecode, b64uEncode, normalizeEmail, wrapP256 } from "./sxf.js";

const VERSIONS_KEY = "secushare.keyring-versions";
const TYPED_KEY = "secushare.compose.typed";

// -- talking to the server ------------------------------------------------------------------

/** An answer other than 2xx: `message` is the server's sentence when it gave one. */
export class ApiError extends Error {
  constructor(message, status, data) {
    super(message);
    this.name = "ApiError";
    this.status = status;
    this.data = data;
  }
}

/** call(method, url, body) → the JSON answer; throws ApiError (status 0: no connection). */
export function jsonApi(csrfToken, strings = {}) {
  return async function call(method, url, body) {
    const init = {
      method,
      credentials: "same-origin",
      cache: "no-store",
      headers: { Accept: "application/json", "X-CSRFToken": csrfToken },
    };
    if (body !== undefined) {
      init.headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    let response;
    try {
      response = await fetch(url, init);
    } catch {
      throw new ApiError(strings.networkError || "The server cannot be reached.", 0, {});
    }
    let data = {};
    try {
      data = await response.json();
    } catch {
      data = {};
    }
    if (!response.ok) {
      const first = data.errors && Object.values(data.errors).flat()[0];
      const fallback = (strings.serverError || "The server answered with an error ({status}).")
        .replace("{status}", response.status);
      throw new ApiError(data.error || first || fallback, response.status, data);
    }
    return data;
  };
}

// -- keyring versions this browser has seen --------------------------------------------------

function versions() {
  try {
    const stored = JSON.parse(localStorage.getItem(VERSIONS_KEY) || "{}");
    return stored && typeof stored === "object" ? stored : {};
  } catch {
    return {};
  }
}

/** The highest keyring version this browser saw for keyId (undefined on a new device). */
export function seenKeyringVersion(keyId) {
  const seen = versions()[keyId];
  return Number.isSafeInteger(seen) ? seen : undefined;
}

export function noteKeyringVersion(keyId, version) {
  const all = versions();
  if (!(all[keyId] >= version)) {
    all[keyId] = version;
    try {
      localStorage.setItem(VERSIONS_KEY, JSON.stringify(all));
    } catch {
      // Storage disabled: this browser then cannot notice a rollback later.
    }
  }
}

/** "abcd ef01 …": the 8 groups people compare, from 64 hex digits. */
export function shownFingerprint(hex) {
  return hex.slice(0, 32).match(/.{4}/g).join(" ");
}

// -- the sender's own key ---------------------------------------------------------------------

/** The unlocked key of the person at this page, for this page's lifetime only. */
export class KeySession {
  /** urls: {mine, pepper, keyring}. */
  constructor(call, urls) {
    this.call = call;
    this.urls = urls;
    this.info = null; // GET /api/v1/keys/mine
    this.unlocked = null; // secupass.unlock()
  }

  get keyId() {
    return this.info?.key_id;
  }

  /** Has the user a key at all? (No SecuPass needed.) */
  async exists() {
    try {
      this.info = await this.call("GET", this.urls.mine);
      return true;
    } catch (error) {
      if (error.status === 404) return false;
      throw error;
    }
  }

  /** Fetch the key and the pepper, open the private record (throws WrongSecuPass). */
  async unlock(secupass) {
    const info = await this.call("GET", this.urls.mine);
    const { pepper } = await this.call("POST", this.urls.pepper);
    this.unlocked = await unlock(secupass, info, pepper);
    this.info = info;
    return this.unlocked;
  }

  /** {version, pins} of the keyring; an older version than seen here throws KeyringRollback. */
  async keyring() {
    const keyId = this.info.key_id;
    const opened = await openKeyring(
      b64uDecode(this.info.keyring),
      this.unlocked.derived.keyringKey,
      keyId,
      { minVersion: seenKeyringVersion(keyId) },
    );
    noteKeyringVersion(keyId, opened.version);
    return opened;
  }

  /** Pin address → full fingerprint (64 hex) in a new keyring version on the server. */
  async pin(email, fingerprintHex) {
    const keyId = this.info.key_id;
    for (let attempt = 0; ; attempt++) {
      const { version, pins } = await this.keyring();
      if (pins[email] === fingerprintHex) return false;
      const next = Math.max(version, this.info.keyring_version || 0) + 1;
      const blob = await sealKeyring(
        { ...pins, [email]: fingerprintHex },
        next,
        this.unlocked.derived.keyringKey,
        keyId,
      );
      const keyring = b64uEncode(blob);
      try {
        await this.call("PUT", this.urls.keyring, { keyring, version: next, key_id: keyId });
      } catch (error) {
        if (error.status !== 409 || attempt > 0) throw error;
        // Changed meanwhile (another tab or device): take the newer keyring and pin again.
        const fresh = await this.call("GET", this.urls.mine);
        if (fresh.key_id !== keyId) throw error;
        this.info = fresh;
        continue;
      }
      this.info = { ...this.info, keyring, keyring_version: next };
      noteKeyringVersion(keyId, next);
      return true;
    }
  }
}

// -- recipients' keys -------------------------------------------------------------------------

/**
 * Sort the recipients by what their keys allow, recomputing every fingerprint here:
 * readers (pinned, same fingerprint: encrypt to them), refused (pinned, different: never
 * encrypt to it), unapproved (a key, not pinned: waits for approval), withoutKey.
 */
export async function recipientKeys(session, lookupUrl, addresses) {
  const { pins } = await session.keyring();
  const result = { readers: [], refused: [], unapproved: [], withoutKey: [] };
  const seen = new Set();
  for (const address of addresses) {
    const email = normalizeEmail(address);
    if (seen.has(email)) continue;
    seen.add(email);
    let key;
    try {
      key = await session.call("GET", `${lookupUrl}?email=${encodeURIComponent(email)}`);
    } catch (error) {
      if (error.status !== 404) throw error;
      result.withoutKey.push({ email });
      continue;
    }
    const ecdhPublic = b64uDecode(key.ecdh_public);
    const offered = await fullFingerprintHex(email, ecdhPublic, b64uDecode(key.ecdsa_public));
    const pinned = pins[email];
    if (!pinned) {
      result.unapproved.push({ email, fingerprint: shownFingerprint(offered) });
    } else if (pinned === offered) {
      result.readers.push({ email, keyId: key.key_id, ecdhPublic });
    } else {
      result.refused.push({
        email,
        pinned: shownFingerprint(pinned),
        offered: shownFingerprint(offered),
        offeredHex: offered,
      });
    }
  }
  return result;
}

/** Hex SHA-256 of the UTF-8 text. */
export async function sha256Hex(text) {
  const digest = new Uint8Array(
    await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text)),
  );
  return Array.from(digest, (b) => b.toString(16).padStart(2, "0")).join("");
}

/**
 * The body of POST /api/v1/deliveries/<id>/send at level 3 or 4. files: [{file_id, name,
 * type, size, digest}]; level 4 takes `message`, level 3 `messageSha256`.
 */
export async function buildSendBody(session, plan) {
  const { deliveryId, level, deliveryKey, readers, files } = plan;
  const own = session.unlocked;
  const entries = [await wrapP256(own.ecdhPublic, session.keyId, deliveryId, deliveryKey)];
  const done = new Set([session.keyId]);
  for (const reader of readers) {
    if (done.has(reader.keyId)) continue;
    done.add(reader.keyId);
    entries.push(await wrapP256(reader.ecdhPublic, reader.keyId, deliveryId, deliveryKey));
  }
  const manifest = {
    files: files.map(({ file_id, name, type, size, digest }) => ({
      file_id,
      name,
      type,
      size,
      digest,
    })),
  };
  if (level === 4) manifest.message = plan.message;
  else manifest.message_sha256 = plan.messageSha256;
  const sealed = await sealManifest(manifest, deliveryKey, deliveryId);
  const signature = await signDelivery(own.ecdsa, deliveryId, level, deliveryKey, sealed);
  const body = { entries, manifest: b64uEncode(sealed), signature: b64uEncode(signature) };
  if (level === 3) body.message_sha256 = plan.messageSha256;
  return body;
}

// -- the compose page -------------------------------------------------------------------------

function paragraph(text, className) {
  const p = document.createElement("p");
  p.textContent = text;
  if (className) p.className = className;
  return p;
}

function fill(text, values) {
  return text.replace(/\{(\w+)\}/g, (match, name) => (name in values ? values[name] : match));
}

/** Fields the sender typed, kept while they go and create a key. */
const TYPED_FIELDS = [
  "recipients",
  "subject",
  "message",
  "expires_in_days",
  "download_limit",
  "language",
];

/**
 * Levels 3 and 4 on the compose page. compose.js calls, in this order: prepare(values) before
 * the draft is made (false: stop), draftBody(body), created(answer, values), uploadMetadata(),
 * and sendBody(delivery, files) for the final POST.
 */
export class ComposeE2E {
  /** hooks: {csrfToken, fieldErrors(errors), formError(...messages), setStatus(text), sendButton}. */
  constructor(form, hooks) {
    this.form = form;
    this.hooks = hooks;
    this.config = JSON.parse(document.getElementById("compose-e2e-config").textContent);
    this.S = this.config.strings;
    this.call = jsonApi(hooks.csrfToken, this.S);
    this.session = new KeySession(this.call, this.config.api);
    this.hasKey = null; // unknown until level 3 or 4 is chosen
    this.accepted = null; // the refusals the sender chose to send past
    this.plan = null; // {message, messageSha256} of the draft
    this.box = document.getElementById("e2e");
    this.notes = document.getElementById("e2e-notes");
    this.secupass = document.getElementById("id_secupass");
    form.addEventListener("change", (event) => {
      if (event.target.name === "level") this.levelChanged();
    });
    form.addEventListener("input", (event) => {
      if (event.target.name === "recipients") this.resetNotes();
    });
    document.getElementById("create-key")?.addEventListener("click", () => this.keepTyped());
    this.restoreTyped();
    this.levelChanged();
  }

  level() {
    return Number(this.form.querySelector("input[name=level]:checked")?.value || 0);
  }

  active(level = this.level()) {
    return level === 3 || level === 4;
  }

  async levelChanged() {
    const on = this.active();
    this.box.hidden = !on;
    document.getElementById("level4-note").hidden = this.level() !== 4;
    if (!on) return;
    if (this.hasKey === null) {
      try {
        this.hasKey = await this.session.exists();
      } catch (error) {
        this.hooks.formError(error.message);
        return;
      }
    }
    document.getElementById("need-key").hidden = this.hasKey;
    document.getElementById("secupass-field").hidden = !this.hasKey;
  }

  resetNotes() {
    this.accepted = null;
    this.notes.hidden = true;
    this.notes.replaceChildren();
    const button = this.hooks.sendButton;
    if (button.dataset.label) button.textContent = button.dataset.label;
  }

  keepTyped() {
    const typed = { level: this.level() };
    for (const name of TYPED_FIELDS) typed[name] = this.form.elements[name]?.value ?? "";
    typed.notify_on_download = this.form.elements.notify_on_download?.checked || false;
    try {
      sessionStorage.setItem(TYPED_KEY, JSON.stringify(typed));
    } catch {
      // Storage disabled: the fields will be empty when the sender comes back.
    }
  }

  restoreTyped() {
    let typed = null;
    try {
      typed = JSON.parse(sessionStorage.getItem(TYPED_KEY) || "null");
      sessionStorage.removeItem(TYPED_KEY);
    } catch {
      return;
    }
    if (!typed || typeof typed !== "object") return;
    for (const name of TYPED_FIELDS) {
      const input = this.form.elements[name];
      if (input && typeof typed[name] === "string") input.value = typed[name];
    }
    if (this.form.elements.notify_on_download) {
      this.form.elements.notify_on_download.checked = Boolean(typed.notify_on_download);
    }
    const radio = this.form.querySelector(`input[name=level][value="${Number(typed.level)}"]`);
    if (radio && !radio.disabled) radio.checked = true;
    this.form.elements.recipients?.dispatchEvent(new Event("input", { bubbles: true }));
  }

  /** Unlock (once per page), open the keyring and sort the recipients; false stops sending. */
  async prepare(values) {
    const { fieldErrors, formError, setStatus } = this.hooks;
    if (this.hasKey === null) this.hasKey = await this.session.exists();
    if (!this.hasKey) {
      document.getElementById("need-key").hidden = false;
      formError(this.S.noKey);
      return false;
    }
    if (!this.session.unlocked) {
      const secupass = this.secupass.value;
      if (!secupass) {
        fieldErrors({ secupass: [this.S.secupassMissing] });
        return false;
      }
      setStatus(this.S.unlocking);
      try {
        await this.session.unlock(secupass);
      } catch (error) {
        setStatus("");
        if (error instanceof WrongSecuPass) {
          fieldErrors({ secupass: [this.S.wrongSecupass] });
          return false;
        }
        throw error;
      }
      this.secupass.value = "";
      this.secupass.disabled = true;
      document.getElementById("secupass_help").textContent = this.S.unlocked;
    }
    setStatus(this.S.checkingKeys);
    let keys;
    try {
      keys = await recipientKeys(this.session, this.config.api.lookup, values.recipients);
    } catch (error) {
      setStatus("");
      if (error instanceof KeyringRollback) {
        formError(this.S.rollback);
        return false;
      }
      throw error;
    }
    setStatus("");
    const refusal = keys.refused.map((r) => `${r.email}:${r.offeredHex}`).sort().join(",");
    this.showNotes(keys);
    if (keys.refused.length && this.accepted !== refusal) {
      this.accepted = refusal;
      const button = this.hooks.sendButton;
      button.dataset.label ||= button.textContent;
      button.textContent = this.S.sendAnyway;
      this.notes.querySelector(".refused")?.focus();
      return false;
    }
    return true;
  }

  showNotes(keys) {
    const parts = [];
    if (keys.refused.length) {
      const box = document.createElement("div");
      box.className = "errors refused";
      box.tabIndex = -1;
      box.setAttribute("role", "alert");
      box.append(paragraph(this.S.refusedTitle, "strong"));
      for (const r of keys.refused) box.append(paragraph(fill(this.S.refused, r)));
      const emails = keys.refused.map((r) => r.email).join(", ");
      box.append(paragraph(fill(this.S.refusedHelp, { emails })));
      parts.push(box);
    }
    if (keys.unapproved.length || keys.withoutKey.length) {
      const box = document.createElement("div");
      box.className = "waiting-notes";
      box.append(paragraph(this.S.waitingTitle));
      const list = document.createElement("ul");
      for (const r of keys.unapproved) {
        const li = document.createElement("li");
        li.textContent = fill(this.S.unapproved, r);
        list.append(li);
      }
      for (const r of keys.withoutKey) {
        const li = document.createElement("li");
        li.textContent = fill(this.S.withoutKey, r);
        list.append(li);
      }
      box.append(list);
      parts.push(box);
    }
    this.notes.replaceChildren(...parts);
    this.notes.hidden = !parts.length;
  }

  /** The draft's JSON: at level 4 the message stays in the browser (it goes in the manifest). */
  draftBody(body) {
    return body.level === 4 ? { ...body, message: "" } : body;
  }

  /** After the draft exists: level 3 hashes the message exactly as the server stored it. */
  async created(answer, values) {
    this.recipients = (answer.recipients || []).map((r) => r.email);
    if (values.level === 4) {
      this.plan = { message: values.message };
      return;
    }
    if (answer.message !== values.message.trim()) throw new Error(this.S.messageChanged);
    this.plan = { messageSha256: await sha256Hex(answer.message) };
  }

  /** tus metadata: at level 4 neither the name nor the type reaches the server. */
  uploadMetadata(level, metadata) {
    if (level !== 4) return metadata;
    const stripped = { ...metadata };
    delete stripped.filename;
    delete stripped.filetype;
    return stripped;
  }

  /** The final POST's body; files: [{fileId, name, type, size, digest}] as uploaded. */
  async sendBody(delivery, files) {
    // Keys may have changed while the files were uploading: look again, just before wrapping.
    const keys = await recipientKeys(this.session, this.config.api.lookup, this.recipients);
    if (this.session.keyId !== (await this.call("GET", this.config.api.mine)).key_id) {
      throw new Error(this.S.keyReplaced);
    }
    return buildSendBody(this.session, {
      deliveryId: delivery.id,
      level: delivery.level,
      deliveryKey: delivery.key,
      readers: keys.readers,
      files: files.map((f) => ({
        file_id: f.fileId,
        name: f.name,
        type: f.type,
        size: f.size,
        digest: f.digest,
      })),
      ...this.plan,
    });
  }
}
