// The compose page: create the delivery, encrypt every file in the browser (SXF1), upload the
// ciphertext with tus, then send. The server never sees a plaintext byte or, at levels 3 and 4,
// the delivery key; at levels 1 and 2 the key goes to the server only with the final "send".

import {
  b64uDecode,
  b64uEncode,
  BlobDigest,
  blobLength,
  Encryptor,
  parseHeader,
  plaintextChunkLength,
} from "./sxf.js";
import { TusClient } from "./tus.js";
import { formatBytes, formatDuration, formatPercent, interpolate, Meter } from "./format.js";
import { ComposeE2E } from "./compose_e2e.js";

const config = JSON.parse(document.getElementById("compose-config").textContent);
const S = config.strings;
const STATE_KEY = "secushare.compose";
const READ_CHUNKS = 64; // plaintext chunks read and encrypted together (4 MiB)
const SEALING = 2; // such slices being encrypted while the next one is read
const BATCHES_AHEAD = 1; // batches (PATCH bodies) encrypted while one is uploading
// A worker that has not answered its first message by then is not used. Seen once in a test
// run: after a reload mid-upload the worker loaded and never answered, and the page waited.
const WORKER_START_MS = 10000;
const EMAIL_RE = /^[^\s@<>(),;:"[\]]+@[^\s@<>(),;:"[\]]+\.[^\s@<>(),;:"[\]]+$/;

const $ = (id) => document.getElementById(id);
const form = $("compose");
const csrfToken = form.elements.csrfmiddlewaretoken.value;
const fields = $("fields");
const recipientsInput = $("id_recipients");
const fileInput = $("id_files");
const dropzone = $("dropzone");
const fileList = $("file-list");
const sendButton = $("send");
const statusLine = $("status");

const tusHeaders = { "X-CSRFToken": csrfToken };
let tus = new TusClient(config.uploads, { headers: tusHeaders });
let entries = []; // one per file: see newEntry()
let delivery = null; // {id, level, subject, key: Uint8Array} once created on the server
let resuming = false;
let busy = false;
let nextUid = 1;
const overallMeter = new Meter();
// Levels 3 and 4: the SecuPass, the recipients' keys, the manifest and the signature.
const e2e = new ComposeE2E(form, { csrfToken, fieldErrors, formError, setStatus, sendButton });

// -- helpers --------------------------------------------------------------------------------

async function api(method, url, body) {
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
    return { ok: false, status: 0, data: { error: S.networkError } };
  }
  let data = {};
  try {
    data = await response.json();
  } catch {
    data = {};
  }
  if (!response.ok && !data.error && !data.errors) {
    data.error = interpolate(S.serverError, { status: response.status });
  }
  return { ok: response.ok, status: response.status, data };
}

function describe(error) {
  if (error?.serverMessage) return error.serverMessage;
  if (error?.name === "TusError") {
    if (error.lost) return S.lostUpload;
    return error.status ? interpolate(S.serverError, { status: error.status }) : S.networkError;
  }
  return error?.message || String(error);
}

function setStatus(text) {
  statusLine.textContent = text;
}

function sameFile(entry, file) {
  return (
    entry.name === file.name && entry.size === file.size && entry.lastModified === file.lastModified
  );
}

// -- errors next to the fields ----------------------------------------------------------

function clearErrors() {
  for (const box of form.querySelectorAll(".field-errors, #form-errors")) {
    box.hidden = true;
    box.replaceChildren();
  }
  for (const field of form.querySelectorAll(".field.invalid")) field.classList.remove("invalid");
  for (const input of form.querySelectorAll("[aria-invalid]")) {
    input.removeAttribute("aria-invalid");
  }
}

function fillBox(box, messages) {
  box.replaceChildren(
    ...messages.map((m) => {
      const p = document.createElement("p");
      p.textContent = m;
      return p;
    }),
  );
  box.hidden = false;
}

function formError(...messages) {
  fillBox($("form-errors"), messages);
}

function fieldErrors(errors) {
  let first = null;
  const general = [];
  for (const [name, list] of Object.entries(errors)) {
    const messages = Array.isArray(list) ? list.map(String) : [String(list)];
    const box = $(`${name}_errors`);
    if (!box) {
      general.push(...messages);
      continue;
    }
    fillBox(box, messages);
    const field = form.querySelector(`[data-field="${name}"]`);
    field?.classList.add("invalid");
    const input = field?.querySelector("input:not([disabled]), textarea, select");
    input?.setAttribute("aria-invalid", "true");
    first ??= input;
  }
  if (general.length) formError(...general);
  first?.focus();
}

// -- recipients -----------------------------------------------------------------------------

/** Addresses from a pasted list: commas, semicolons, spaces, new lines, "Name <addr>". */
function parseRecipients(text) {
  const seen = new Set();
  const out = [];
  for (const piece of text.replace(/"[^"]*"/g, " ").split(/[,;\n\r]+/)) {
    const bracket = piece.match(/<([^<>]*)>/);
    const items = bracket ? [bracket[1]] : piece.split(/\s+/);
    for (let item of items) {
      item = item.trim().replace(/^mailto:/i, "");
      if (!item || seen.has(item.toLowerCase())) continue;
      seen.add(item.toLowerCase());
      out.push({ address: item, valid: EMAIL_RE.test(item) });
    }
  }
  return out;
}

function showRecipients() {
  const preview = $("recipients_preview");
  const list = parseRecipients(recipientsInput.value);
  if (!list.length) {
    preview.replaceChildren();
    return;
  }
  const heading = document.createElement("span");
  heading.textContent = interpolate(S.recipientCount, { count: list.length });
  const ul = document.createElement("ul");
  for (const { address, valid } of list) {
    const li = document.createElement("li");
    li.className = valid ? "badge ok" : "badge error";
    li.textContent = valid ? address : `${address}: ${S.notAddress}`;
    ul.append(li);
  }
  preview.replaceChildren(heading, ul);
}

// -- the file list ----------------------------------------------------------------------------

function newEntry(file, saved = {}) {
  const entry = {
    uid: nextUid++,
    file,
    name: file ? file.name : saved.name,
    size: file ? file.size : saved.size,
    lastModified: file ? file.lastModified : saved.lastModified,
    type: (file ? file.type : saved.type) || "application/octet-stream",
    fileId: saved.fileId || null,
    url: saved.url || null,
    state: "ready", // ready | needs-file | uploading | done | failed
    error: null,
    acked: 0, // stored bytes the server acknowledged
    inflight: 0, // stored bytes of the current PATCH sent so far
    retryAt: 0,
    meter: new Meter(),
    ctrl: null,
  };
  entry.length = blobLength(entry.size);
  entry.row = renderRow(entry);
  entries.push(entry);
  fileList.append(entry.row.li);
  return entry;
}

function renderRow(entry) {
  const li = document.createElement("li");
  li.className = "file-item";
  const head = document.createElement("div");
  head.className = "file-head";
  const name = document.createElement("span");
  name.className = "file-name";
  name.textContent = entry.name;
  const size = document.createElement("span");
  size.className = "file-size";
  size.textContent = formatBytes(entry.size);
  const button = document.createElement("button");
  button.type = "button";
  button.className = "link";
  button.addEventListener("click", () => removeEntry(entry));
  head.append(name, size, button);
  const progress = document.createElement("progress");
  progress.max = entry.length;
  progress.value = 0;
  progress.setAttribute("aria-label", entry.name);
  const status = document.createElement("p");
  status.className = "file-status";
  const error = document.createElement("p");
  error.className = "field-errors file-error";
  error.setAttribute("role", "alert");
  error.hidden = true;
  li.append(head, progress, status, error);
  return { li, button, progress, status, error };
}

function updateRow(entry) {
  const { li, button, progress, status, error } = entry.row;
  li.dataset.state = entry.state;
  const done = entry.state === "done" ? entry.length : entry.acked + entry.inflight;
  progress.value = done;
  progress.hidden = entry.state === "ready" || entry.state === "needs-file";
  button.textContent = entry.state === "uploading" ? S.cancel : S.remove;
  button.hidden = busy && entry.state === "done";
  error.hidden = !entry.error;
  error.textContent = entry.error ? interpolate(S.failed, { error: entry.error }) : "";
  let text = "";
  if (entry.state === "needs-file") text = S.needsFile;
  else if (entry.state === "done") text = S.done;
  else if (entry.state === "uploading") {
    const total = formatBytes(entry.length);
    const parts = [interpolate(S.progress, { done: formatBytes(done), total })];
    if (entry.retryAt > Date.now()) {
      const seconds = Math.ceil((entry.retryAt - Date.now()) / 1000);
      parts.push(interpolate(S.retrying, { seconds }));
    } else if (done === 0) {
      parts.push(S.preparing);
    } else if (entry.meter.speed) {
      parts.push(rate(entry.meter, entry.length - done));
    }
    text = parts.join(" · ");
  } else if (busy && entry.state === "ready") text = S.waiting;
  status.textContent = text;
}

function rate(meter, remaining) {
  return interpolate(S.rate, {
    speed: formatBytes(meter.speed),
    left: formatDuration(meter.secondsLeft(remaining)),
  });
}

function updateOverall() {
  const total = entries.reduce((sum, e) => sum + e.length, 0);
  const done = entries.reduce(
    (sum, e) => sum + (e.state === "done" ? e.length : e.acked + e.inflight),
    0,
  );
  const progress = $("overall-progress");
  progress.max = Math.max(1, total);
  progress.value = done;
  overallMeter.sample(done);
  const parts = [
    formatPercent(total ? done / total : 0),
    interpolate(S.progress, { done: formatBytes(done), total: formatBytes(total) }),
  ];
  if (overallMeter.speed && done < total) parts.push(rate(overallMeter, total - done));
  $("overall-text").textContent = parts.join(" · ");
}

function tick() {
  for (const entry of entries) {
    if (entry.state === "uploading") entry.meter.sample(entry.acked + entry.inflight);
    updateRow(entry);
  }
  updateOverall();
}

function addFiles(files) {
  clearErrors();
  const problems = [];
  for (const file of files) {
    if (resuming) {
      const match = entries.find((e) => e.state === "needs-file" && sameFile(e, file));
      if (match) {
        match.file = file;
        match.state = "ready";
        updateRow(match);
      } else if (!entries.some((e) => e.file && sameFile(e, file))) {
        problems.push(interpolate(S.resumeNotMatched, { name: file.name }));
      }
      continue;
    }
    if (entries.some((e) => sameFile(e, file))) {
      problems.push(`${file.name}: ${S.duplicate}`);
    } else if (file.size > config.maxFileSize) {
      problems.push(
        `${file.name}: ${interpolate(S.tooLarge, { limit: formatBytes(config.maxFileSize) })}`,
      );
    } else if (entries.length >= config.maxFiles) {
      problems.push(interpolate(S.tooManyFiles, { max: config.maxFiles }));
      break;
    } else {
      updateRow(newEntry(file));
    }
  }
  if (problems.length) fieldErrors({ files: problems });
  if (delivery) saveState();
  updateOverall();
}

async function removeEntry(entry) {
  if (entry.state === "uploading") {
    entry.cancelled = true;
    entry.ctrl?.abort(); // uploadEntry() removes it once the request has stopped
    return;
  }
  if (busy && entry.state === "done") return;
  await dropEntry(entry);
}

async function dropEntry(entry) {
  entries = entries.filter((e) => e !== entry);
  entry.row.li.remove();
  saveState();
  updateOverall();
  if (entry.url) {
    try {
      await tus.terminate(entry.url);
    } catch {
      // Left behind on the server: removed before sending (removeStrays) or by the cleanup job.
    }
  }
}

// -- encryption and upload ----------------------------------------------------------------

/**
 * Encrypts one file chunk by chunk, each chunk exactly once, in a worker (seal_worker.js): in
 * Chromium WebCrypto runs on the thread that calls it, so the page's thread stays free to read
 * the file and upload while the worker encrypts. Where a module worker cannot start, the page
 * encrypts itself. seal() takes whole chunks of plaintext in order and resolves to their stored
 * bytes; digest() resolves to the manifest digest (levels 3 and 4) once every chunk is sealed.
 */
class Sealer {
  static async start(options) {
    if (config.sealWorker) {
      let worker = null;
      let timer = 0;
      try {
        worker = new Worker(config.sealWorker, { type: "module" });
        const sealer = new Sealer(worker);
        const started = sealer.ask({ start: options });
        started.catch(() => {}); // answered by the race below
        const late = new Promise((_, reject) => {
          timer = setTimeout(() => reject(new Error("no answer")), WORKER_START_MS);
        });
        sealer.header = (await Promise.race([started, late])).header;
        return sealer;
      } catch {
        // No module workers here, or one that never answered: encrypt in the page.
        worker?.terminate();
      } finally {
        clearTimeout(timer);
      }
    }
    const { deliveryKey, deliveryId, fileId, size, digest } = options;
    const local = new Sealer(null);
    local.encryptor = await Encryptor.create(deliveryKey, deliveryId, fileId, size);
    local.blobDigest = digest ? new BlobDigest() : null;
    await local.blobDigest?.updateHeader(local.encryptor.header);
    local.header = local.encryptor.header;
    return local;
  }

  constructor(worker) {
    this.worker = worker;
    this.waiting = []; // {resolve, reject} per message sent: the worker answers in order
    this.failure = null;
    if (!worker) return;
    worker.onmessage = ({ data }) => {
      if (data.error !== undefined) this.broke(data.error);
      else this.waiting.shift()?.resolve(data);
    };
    worker.onerror = (event) => {
      event.preventDefault();
      this.broke(event.message);
    };
  }

  /** The worker failed: the person reads a translated sentence, the console the detail. */
  broke(detail) {
    console.warn("encryption worker:", detail);
    this.fail(new Error(S.encryptionFailed));
  }

  fail(error) {
    this.failure ??= error;
    for (const { reject } of this.waiting.splice(0)) reject(this.failure);
    this.worker?.terminate();
  }

  ask(message, transfer = []) {
    if (this.failure) return Promise.reject(this.failure);
    return new Promise((resolve, reject) => {
      this.waiting.push({ resolve, reject });
      this.worker.postMessage(message, transfer);
    });
  }

  /**
   * {stored, plain}: the stored bytes of the chunks from `first` whose plaintext is `plain`
   * (in `into`, a spare buffer, when it is large enough), and `plain` back for reuse.
   */
  async seal(first, plain, into) {
    if (!this.worker) {
      const digest = this.blobDigest;
      return { stored: await this.encryptor.encryptChunks(first, plain, { into, digest }), plain };
    }
    const transfer = into ? [plain.buffer, into.buffer] : [plain.buffer];
    return (await this.ask({ seal: { first, plain, into } }, transfer)).sealed;
  }

  async digest() {
    if (!this.worker) return this.blobDigest ? this.blobDigest.hexdigest() : null;
    return (await this.ask({ finish: true })).digest;
  }

  close() {
    this.fail(new DOMException("The encryption was stopped.", "AbortError"));
  }
}

/**
 * Reads a file front to back, `length` bytes at a time. A byte stream reads into buffers given
 * back for reuse and costs the browser about a third of what slice() and arrayBuffer() cost.
 */
function fileReader(file) {
  let reader = null;
  try {
    reader = file.stream().getReader({ mode: "byob" });
  } catch {
    reader = null; // no byte streams here: slice() and arrayBuffer()
  }
  let offset = 0;
  const readSome = async (length, spare) => {
    if (!reader) {
      const buffer = await file.slice(offset, offset + length).arrayBuffer();
      offset += buffer.byteLength;
      return new Uint8Array(buffer);
    }
    let buffer = spare?.byteLength >= length ? spare.buffer : new ArrayBuffer(length);
    let at = 0;
    while (at < length) {
      const { done, value } = await reader.read(new Uint8Array(buffer, at, length - at));
      if (done) break;
      buffer = value.buffer;
      at += value.byteLength;
    }
    return new Uint8Array(buffer, 0, at);
  };
  return {
    async read(length, spare) {
      let bytes;
      try {
        bytes = await readSome(length, spare);
      } catch {
        throw new Error(S.fileChanged); // the browser refuses to read a file changed on disk
      }
      if (bytes.length !== length) throw new Error(S.fileChanged);
      return bytes;
    },
    cancel() {
      reader?.cancel().catch(() => {});
    },
  };
}

/**
 * The stored bytes of one file (header, then every chunk) as Blobs of batchBytes each, the
 * last one shorter. READ_CHUNKS chunks of plaintext are read at a time, the next ones while the
 * sealer encrypts, so only a few MiB of plaintext are ever in memory.
 *
 * Each batch is filled in one Uint8Array and copied once into a Blob. A Blob built from
 * the ~256 sealed pieces cost about as much as the encryption; a typed array body is copied
 * into the inspector for every request under DevTools (Playwright), which made 1 GiB uploads
 * several times slower there.
 */
async function* storedBatches(file, sealer, batchBytes) {
  const header = parseHeader(sealer.header);
  const { chunkCount } = header;
  const total = Number(header.blobLength);
  let batch = null;
  let filled = 0;
  let made = 0;

  function* put(bytes) {
    for (let at = 0; at < bytes.length; ) {
      batch ??= new Uint8Array(Math.min(batchBytes, total - made));
      const n = Math.min(bytes.length - at, batch.length - filled);
      batch.set(bytes.subarray(at, at + n), filled);
      filled += n;
      at += n;
      if (filled === batch.length) {
        made += filled;
        yield new Blob([batch]);
        // A new array for the next batch rather than this one again: its allocation is what
        // makes the page collect garbage, and with it the Blobs already uploaded, which the
        // browser keeps until then (reused arrays let memory grow with the file).
        batch = null;
        filled = 0;
      }
    }
  }

  yield* put(sealer.header);
  const reader = fileReader(file);
  const spares = { plain: [], stored: [] };
  const sealing = []; // slices handed to the sealer, oldest first
  let next = 0;
  try {
    while (next < chunkCount || sealing.length) {
      while (next < chunkCount && sealing.length < SEALING) {
        const last = Math.min(chunkCount, next + READ_CHUNKS);
        let length = 0;
        for (let i = next; i < last; i++) length += plaintextChunkLength(header, i);
        const plain = await reader.read(length, spares.plain.pop());
        const sealed = sealer.seal(next, plain, spares.stored.pop());
        sealed.catch(() => {}); // awaited below, in order
        sealing.push(sealed);
        next = last;
      }
      const { stored, plain } = await sealing.shift();
      yield* put(stored);
      spares.plain.push(plain);
      spares.stored.push(stored);
    }
  } finally {
    reader.cancel();
  }
}

async function sendFile(entry) {
  const sealer = await Sealer.start({
    deliveryKey: delivery.key,
    deliveryId: delivery.id,
    fileId: entry.fileId,
    size: entry.size,
    digest: delivery.level >= 3, // levels 3, 4: the manifest's digest of the stored bytes
  });
  const batches = storedBatches(entry.file, sealer, config.batchBytes);
  const signal = entry.ctrl.signal;
  let offset = 0;
  // BATCHES_AHEAD batches are encrypted while one travels. A batch's ciphertext stays in
  // memory until the server acknowledged all of it, so a retry resends the same bytes.
  const ahead = [];
  const more = () => {
    const pending = batches.next();
    pending.catch(() => {});
    ahead.push(pending);
  };
  try {
    for (let k = 0; k < BATCHES_AHEAD; k++) more();
    for (;;) {
      const { value: batch, done } = await ahead.shift();
      if (done) break;
      more();
      const start = offset;
      await tus.upload(entry.url, start, batch, {
        signal,
        onProgress: (at) => {
          entry.inflight = at - start;
          entry.retryAt = 0;
        },
        onRetry: (ms) => {
          entry.retryAt = Date.now() + ms;
          entry.inflight = 0;
        },
      });
      offset = start + batch.size;
      entry.acked = offset;
      entry.inflight = 0;
    }
    if (offset !== entry.length) throw new Error(S.badLength);
    entry.digest = await sealer.digest();
  } finally {
    sealer.close();
    batches.return().catch(() => {});
  }
}

/** Upload one file; never throws: ends as done, failed, or removed (cancelled). */
async function uploadEntry(entry) {
  entry.ctrl = new AbortController();
  entry.error = null;
  for (let attempt = 0; ; attempt++) {
    try {
      if (entry.url) {
        // An upload whose ciphertext this page no longer holds (after a failure, or made
        // before a reload) cannot be continued without encrypting chunks a second time under
        // the same key and salt. It is removed and the file starts as a new upload, with a
        // fresh salt (DESIGN.md sections 4 and 5).
        await tus.terminate(entry.url);
        entry.url = null;
        entry.fileId = null;
        saveState();
      }
      entry.state = "uploading";
      entry.acked = 0;
      entry.inflight = 0;
      entry.meter.reset();
      updateRow(entry);
      const metadata = {
        delivery: delivery.id,
        filename: entry.name,
        filetype: entry.type,
        size: String(entry.size),
      };
      const { url } = await tus.create(
        entry.length,
        e2e.uploadMetadata(delivery.level, metadata), // level 4: no name, no type
        { signal: entry.ctrl.signal },
      );
      entry.url = url;
      entry.fileId = new URL(url).pathname.split("/").filter(Boolean).pop();
      saveState();
      await sendFile(entry);
      entry.state = "done";
      saveState();
      updateRow(entry);
      return;
    } catch (error) {
      entry.inflight = 0;
      entry.retryAt = 0;
      if (entry.cancelled) {
        await dropEntry(entry);
        return;
      }
      if (error.lost && attempt < 2) continue; // the server lost bytes: a new upload
      entry.state = "failed";
      entry.error = describe(error);
      updateRow(entry);
      return;
    }
  }
}

/** Remove uploads of this delivery the page does not know (a creation whose answer was lost). */
async function removeStrays() {
  const res = await api("GET", `${config.api}/${delivery.id}`);
  if (!res.ok || !Array.isArray(res.data.files)) return;
  const known = new Set(entries.map((e) => e.fileId));
  for (const f of res.data.files) {
    if (f.id && !known.has(f.id)) {
      await tus.terminate(new URL(`${f.id}`, tus.endpoint).href).catch(() => {});
    }
  }
}

// -- the whole delivery -------------------------------------------------------------------

function formValues() {
  const value = (name) => form.elements[name].value;
  const limit = value("download_limit").trim();
  const days = value("expires_in_days").trim();
  return {
    level: Number(form.querySelector("input[name=level]:checked")?.value || 0),
    subject: value("subject"),
    message: value("message"),
    recipients: parseRecipients(value("recipients")).map((r) => r.address),
    expires_in_days: /^\d+$/.test(days) ? Number(days) : days,
    download_limit: limit === "" ? null : /^\d+$/.test(limit) ? Number(limit) : limit,
    notify_on_download: form.elements.notify_on_download.checked,
    language: value("language"),
  };
}

async function createDelivery() {
  const values = formValues();
  if (!values.recipients.length) {
    fieldErrors({ recipients: [S.noRecipients] });
    return false;
  }
  setStatus(S.creating);
  // The server splits pasted lists itself; the preview above only shows what it will see.
  const recipients = form.elements.recipients.value;
  const res = await api("POST", config.api, e2e.draftBody({ ...values, recipients }));
  if (!res.ok) {
    setStatus("");
    if (res.data.errors) fieldErrors(res.data.errors);
    else formError(res.data.error);
    return false;
  }
  if (e2e.active(values.level)) await e2e.created(res.data, values);
  delivery = {
    id: res.data.id,
    level: values.level,
    subject: values.subject,
    key: crypto.getRandomValues(new Uint8Array(32)),
  };
  if (res.data.upload_url) tus = new TusClient(res.data.upload_url, { headers: tusHeaders });
  fields.disabled = true; // the delivery exists now; its details are fixed
  saveState();
  return true;
}

async function sendDelivery() {
  setStatus(S.sending);
  await removeStrays();
  const body =
    delivery.level <= 2
      ? { delivery_key: b64uEncode(delivery.key) }
      : await e2e.sendBody(delivery, entries.filter((e) => e.state === "done"));
  let res = await api("POST", `${config.api}/${delivery.id}/send`, body);
  if (!res.ok) {
    // A lost answer to a successful send looks like a failure: ask the server.
    const check = await api("GET", `${config.api}/${delivery.id}`);
    if (check.ok && check.data.status === "sent") res = check;
  }
  if (!res.ok) {
    setStatus("");
    formError(interpolate(S.sendFailed, { error: res.data.error || S.networkError }));
    return;
  }
  clearState();
  busy = false;
  setStatus(S.sent);
  location.assign(config.sentUrl.replace("{id}", delivery.id));
}

async function run() {
  clearErrors();
  if (!entries.length) {
    fieldErrors({ files: [S.noFiles] });
    return;
  }
  if (entries.some((e) => e.state === "needs-file")) {
    fieldErrors({ files: [S.resumeMissing] });
    return;
  }
  if (!delivery && e2e.active() && !(await e2e.prepare(formValues()))) return;
  if (!delivery && !(await createDelivery())) return;
  const todo = entries.filter((e) => e.state === "ready" || e.state === "failed");
  $("overall").hidden = false;
  if (todo.length) setStatus(interpolate(S.uploading, { count: todo.length }));
  const timer = setInterval(tick, 500);
  try {
    for (const entry of todo) {
      if (entries.includes(entry)) await uploadEntry(entry);
    }
  } finally {
    clearInterval(timer);
    tick();
  }
  if (entries.some((e) => e.state === "failed")) {
    setStatus(S.someFailed);
    formError(S.someFailed);
    sendButton.textContent = S.retry;
    return;
  }
  if (!entries.some((e) => e.state === "done")) {
    setStatus("");
    fieldErrors({ files: [S.noFiles] });
    return;
  }
  await sendDelivery();
}

// -- surviving a reload -------------------------------------------------------------------

// sessionStorage keeps, per tab, the draft id, the delivery key (levels 1 and 2 only: the
// server gets it anyway when the delivery is sent) and per file its upload address. It does not
// keep ciphertext, so an unfinished file starts again as a new upload after a reload.
function saveState() {
  if (!delivery) return;
  const state = {
    v: 1,
    id: delivery.id,
    level: delivery.level,
    subject: delivery.subject,
    uploads: tus.endpoint,
    key: delivery.level <= 2 ? b64uEncode(delivery.key) : null,
    files: entries.map((e) => ({
      name: e.name,
      size: e.size,
      lastModified: e.lastModified,
      type: e.type,
      fileId: e.fileId,
      url: e.url,
      done: e.state === "done",
    })),
  };
  try {
    sessionStorage.setItem(STATE_KEY, JSON.stringify(state));
  } catch {
    // Storage full or disabled: the upload still works, it just cannot survive a reload.
  }
}

function clearState() {
  try {
    sessionStorage.removeItem(STATE_KEY);
  } catch {
    // nothing saved
  }
}

function loadState() {
  try {
    const state = JSON.parse(sessionStorage.getItem(STATE_KEY) || "null");
    if (state?.v === 1 && state.id && state.key && Array.isArray(state.files)) return state;
  } catch {
    // unreadable: start afresh
  }
  clearState();
  return null;
}

async function resume() {
  const state = loadState();
  if (!state) return false;
  const res = await api("GET", `${config.api}/${state.id}`);
  if (res.status === 404 || (res.ok && res.data.status !== "draft")) {
    clearState();
    return false;
  }
  delivery = {
    id: state.id,
    level: state.level,
    subject: state.subject,
    key: b64uDecode(state.key),
  };
  tus = new TusClient(state.uploads || config.uploads, { headers: tusHeaders });
  resuming = true;
  for (const saved of state.files) {
    const entry = newEntry(null, saved);
    entry.state = "needs-file";
    if (saved.done && saved.url) {
      try {
        const head = await tus.head(saved.url);
        if (head.offset === entry.length) entry.state = "done";
      } catch {
        // gone or unreachable: the file is uploaded again
      }
    }
    if (entry.state === "done") entry.acked = entry.length;
    updateRow(entry);
  }
  fields.hidden = true;
  fields.disabled = true;
  $("resume").hidden = false;
  $("resume-title").textContent = interpolate(S.resumeTitle, { subject: state.subject });
  const missing = entries.some((e) => e.state === "needs-file");
  $("resume-text").textContent = missing ? S.resumeSelect : S.resumeAllDone;
  sendButton.textContent = sendButton.dataset.continue;
  $("overall").hidden = false;
  updateOverall();
  return true;
}

async function discard() {
  if (!delivery || !window.confirm(S.discardConfirm)) return;
  const res = await api("DELETE", `${config.api}/${delivery.id}`);
  if (!res.ok && res.status !== 404) {
    formError(res.data.error);
    return;
  }
  clearState();
  location.reload();
}

// -- wiring -------------------------------------------------------------------------------

function setBusy(value) {
  busy = value;
  sendButton.disabled = value;
  fileInput.disabled = value;
  dropzone.classList.toggle("disabled", value);
  $("discard").hidden = value || !delivery;
  for (const entry of entries) updateRow(entry);
}

async function init() {
  form.hidden = false;
  if (!window.crypto?.subtle) {
    formError(S.noCrypto);
    sendButton.disabled = true;
    return;
  }
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    if (busy) return;
    setBusy(true);
    try {
      await run();
    } catch (error) {
      setStatus("");
      formError(describe(error));
    } finally {
      if (busy) setBusy(false);
    }
  });
  recipientsInput.addEventListener("input", showRecipients);
  recipientsInput.addEventListener("blur", showRecipients);
  fileInput.addEventListener("change", () => {
    addFiles([...fileInput.files]);
    fileInput.value = "";
  });
  dropzone.addEventListener("dragover", (event) => {
    event.preventDefault();
    if (!busy) dropzone.classList.add("over");
  });
  dropzone.addEventListener("dragleave", () => dropzone.classList.remove("over"));
  dropzone.addEventListener("drop", (event) => {
    event.preventDefault();
    dropzone.classList.remove("over");
    if (!busy && event.dataTransfer?.files?.length) addFiles([...event.dataTransfer.files]);
  });
  // A file dropped beside the zone must not make the browser leave the page.
  window.addEventListener("dragover", (event) => event.preventDefault());
  window.addEventListener("drop", (event) => event.preventDefault());
  window.addEventListener("beforeunload", (event) => {
    if (!busy) return;
    event.preventDefault();
    event.returnValue = S.leaveWarning;
  });
  $("discard").addEventListener("click", discard);
  setBusy(true);
  try {
    await resume();
  } finally {
    setBusy(false);
  }
  showRecipients();
  form.dataset.ready = "true";
}

init();
