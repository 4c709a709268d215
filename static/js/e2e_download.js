// Saving one end-to-end encrypted file (levels 3 and 4): fetch its SXF1 ciphertext, decrypt
// chunk by chunk and write the plaintext to disk as it goes, never holding the file whole.
//
// Where it goes, in this order: the File System Access API (showSaveFilePicker: Chromium),
// else a stream through the service worker (sw.js: the browser saves a response whose body
// this page feeds), else, below a size cap, a Blob assembled in memory. Every chunk is written
// only after its tag verified; the manifest's digest of the whole blob is checked at the end,
// and on any failure the output is aborted (the File System Access API then keeps nothing,
// the browser marks a service-worker download failed): never a silently broken file.
// A fetch that breaks off is continued with a Range request from the next whole chunk.

import {
  BlobDigest,
  chunkOffset,
  Decryptor,
  FormatError,
  HEADER_LEN,
  SXFError,
  storedChunkLength,
} from "./sxf.js";

// Fetching, decrypting and writing overlap: while the sink writes one buffer, the next chunks
// are decrypted into another. Few large writes are far faster than many small ones (in
// Chromium each write of a FileSystemWritableFileStream costs a round trip to the browser
// process), and the number of buffers is fixed, so memory does not grow with the file.
const READ_CHUNKS = 64; // stored chunks read from the response at once (4 MiB by default)
const CRYPTO_AHEAD = 96; // chunks being decrypted and hashed at once (WebCrypto never idles)
const WRITE_SIZE = 8 << 20; // plaintext bytes handed to the sink in one write
const WRITES_AHEAD = 2; // writes queued at the sink while the next buffer fills
const RETRIES = 5; // fetches in a row that may break off before the download gives up
const START_TIMEOUT = 15_000; // ms for the service worker to take the download
const PING = 10_000; // ms between messages that keep the service worker alive

/** The server refused the ciphertext (status 404, 410, ...). */
export class HttpError extends Error {
  constructor(status) {
    super(`HTTP ${status}`);
    this.status = status;
  }
}

/** The connection broke off more often than RETRIES in a row. */
export class NetworkError extends Error {}

/** The decrypted file is not the one the sender signed (manifest digest). */
export class DigestMismatch extends Error {}

/** The person cancelled (the file picker or the browser's download). */
export class Cancelled extends Error {}

/** No way to stream to disk here and the file is above the in-memory cap. */
export class TooLarge extends Error {}

class Interrupted extends Error {}

function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function timeout(promise, ms, message) {
  let timer;
  const expired = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(message)), ms);
  });
  return Promise.race([promise, expired]).finally(() => clearTimeout(timer));
}

/**
 * Exact-size reads from a fetch body; a break-off becomes Interrupted. Where the body is a
 * byte stream (Chromium), the bytes go straight into the caller's buffer ("bring your own
 * buffer"): no new buffer per network piece, which halves the cost of reading and leaves
 * the garbage collector nothing to catch up with. Elsewhere the pieces are copied.
 */
class BodyReader {
  constructor(body) {
    try {
      this.reader = body.getReader({ mode: "byob" });
      this.byob = true;
    } catch {
      this.reader = body.getReader();
      this.byob = false;
    }
    this.parts = []; // pieces read and not yet taken (without "byob")
    this.buffered = 0;
  }

  async read(view) {
    let result;
    try {
      result = await (this.byob ? this.reader.read(view) : this.reader.read());
    } catch (error) {
      if (error.name === "AbortError") throw error;
      throw new Interrupted(String(error));
    }
    if (!this.byob && !result.done && result.value.length) {
      this.parts.push(result.value);
      this.buffered += result.value.length;
    }
    return result;
  }

  /** The next n bytes, in `buffer` (an ArrayBuffer of at least n bytes) when given. */
  async take(n, buffer) {
    if (!buffer || buffer.byteLength < n) buffer = new ArrayBuffer(n);
    if (this.byob) {
      for (let pos = 0; pos < n; ) {
        const { done, value } = await this.read(new Uint8Array(buffer, pos, n - pos));
        if (done) throw new Interrupted("the response ended early");
        buffer = value.buffer; // the same memory, handed back
        pos += value.byteLength;
      }
      return new Uint8Array(buffer, 0, n);
    }
    while (this.buffered < n) {
      if ((await this.read()).done) throw new Interrupted("the response ended early");
    }
    const out = new Uint8Array(buffer, 0, n);
    for (let pos = 0; pos < n; ) {
      const part = this.parts[0];
      const k = Math.min(part.length, n - pos);
      out.set(part.subarray(0, k), pos);
      pos += k;
      if (k === part.length) this.parts.shift();
      else this.parts[0] = part.subarray(k);
    }
    this.buffered -= n;
    return out;
  }

  async skip(n) {
    let buffer;
    while (n > 0) {
      const part = await this.take(Math.min(n, 1 << 20), buffer);
      buffer = part.buffer;
      n -= part.length;
    }
  }

  async atEnd() {
    while (this.buffered === 0) {
      const { done, value } = await this.read(this.byob ? new Uint8Array(1) : undefined);
      if (done) return true;
      if (this.byob && value.length) return false;
    }
    return false;
  }

  cancel() {
    this.reader.cancel().catch(() => {});
  }
}

async function request(url, offset, etag, signal) {
  const headers = {};
  if (offset > 0) {
    headers.Range = `bytes=${offset}-`;
    if (etag) headers["If-Range"] = etag;
  }
  let response;
  try {
    response = await fetch(url, { headers, credentials: "same-origin", cache: "no-store", signal });
  } catch (error) {
    if (error.name === "AbortError") throw error;
    throw new Interrupted(String(error));
  }
  if ([502, 503, 504].includes(response.status)) {
    response.body?.cancel().catch(() => {});
    throw new Interrupted(`HTTP ${response.status}`);
  }
  if (!response.ok) {
    response.body?.cancel().catch(() => {});
    throw new HttpError(response.status);
  }
  const reader = new BodyReader(response.body);
  if (offset > 0 && response.status === 206) {
    const range = /^bytes (\d+)-/.exec(response.headers.get("Content-Range") || "");
    if (!range || Number(range[1]) !== offset) {
      reader.cancel();
      throw new FormatError("the server sent another part of the file than was asked for");
    }
  } else if (offset > 0) {
    await reader.skip(offset); // the whole blob came: pass over what is written already
  }
  return { reader, etag: response.headers.get("ETag") };
}

/** A promise that may be left unawaited when an earlier step fails: never "unhandled". */
function held(promise) {
  promise.catch(() => {});
  return promise;
}

/**
 * Gathers verified plaintext into WRITE_SIZE buffers and hands each to the sink without
 * waiting for the one before (at most WRITES_AHEAD unfinished). A sink that `copies` (the
 * bytes are written once its write() resolves) gets its buffers back for reuse; others keep
 * or transfer them.
 */
class Output {
  constructor(sink) {
    this.sink = sink;
    this.buffer = null;
    this.filled = 0;
    this.spare = [];
    this.writing = [];
    this.taken = 0; // bytes given to add()
    this.written = 0;
  }

  async add(plaintext) {
    this.taken += plaintext.length;
    for (let pos = 0; pos < plaintext.length; ) {
      this.buffer ??= this.spare.pop() || new Uint8Array(WRITE_SIZE);
      const k = Math.min(plaintext.length - pos, WRITE_SIZE - this.filled);
      this.buffer.set(plaintext.subarray(pos, pos + k), this.filled);
      this.filled += k;
      pos += k;
      if (this.filled === WRITE_SIZE) await this.flush();
    }
  }

  async flush() {
    const { buffer, filled } = this;
    if (!filled) return;
    this.buffer = null;
    this.filled = 0;
    const written = Promise.resolve(this.sink.write(buffer.subarray(0, filled))).then(() => {
      this.written += filled;
      if (this.sink.copies) this.spare.push(buffer);
    });
    this.writing.push(held(written));
    while (this.writing.length > WRITES_AHEAD) await this.writing.shift();
  }

  async finish() {
    await this.flush();
    while (this.writing.length) await this.writing.shift();
    return this.written;
  }
}

/**
 * Fetch, decrypt and verify one file into `sink` ({write(Uint8Array)}, which may be called
 * again before the last write finished). `file` is {url, id, size, blob_size}; `expect` is
 * {deliveryKey, deliveryId, digest (manifest hex)}. onProgress(bytes) is called as it goes,
 * with the plaintext verified and on its way to the sink. Throws; the caller aborts the sink.
 */
export async function transfer(file, expect, sink, { onProgress, signal } = {}) {
  const digest = new BlobDigest();
  const output = new Output(sink);
  const opening = []; // per chunk in order: its plaintext once tag and hash are done
  const reading = []; // buffers for the ciphertext, free again
  let decryptor = null;
  let header = null;
  let fetched = 0; // the next chunk to take from the network
  let etag = null;
  let failures = 0;
  const open = (i, stored) => {
    const plaintext = decryptor.decryptChunk(i, stored);
    return held(Promise.all([plaintext, digest.updateChunk(stored)]).then(() => plaintext));
  };
  for (;;) {
    const offset = header ? chunkOffset(header, fetched) : 0;
    let reader = null;
    try {
      const response = await request(file.url, offset, etag, signal);
      reader = response.reader;
      etag = response.etag || etag;
      if (!header) {
        const headerBytes = (await reader.take(HEADER_LEN)).slice();
        decryptor = await Decryptor.create(expect.deliveryKey, headerBytes, {
          deliveryId: expect.deliveryId,
          fileId: file.id,
          blobLength: file.blob_size,
        });
        header = decryptor.parsed;
        if (header.length !== BigInt(file.size)) {
          throw new FormatError("the stored file's size differs from the one the sender signed");
        }
        await digest.updateHeader(headerBytes);
      }
      while (fetched < header.chunkCount) {
        const last = Math.min(header.chunkCount, fetched + READ_CHUNKS);
        const begin = chunkOffset(header, fetched);
        const end = chunkOffset(header, last - 1) + storedChunkLength(header, last - 1);
        const data = await reader.take(end - begin, reading.pop());
        const opened = [];
        for (let i = fetched, pos = 0; i < last; i++) {
          const size = storedChunkLength(header, i);
          opened.push(open(i, data.subarray(pos, pos + size)));
          pos += size;
        }
        // WebCrypto copies what it is given when called; reuse waits for the results anyway.
        Promise.allSettled(opened).then(() => reading.push(data.buffer));
        opening.push(...opened);
        fetched = last;
        failures = 0;
        while (opening.length > CRYPTO_AHEAD) await output.add(await opening.shift());
        onProgress?.(output.taken);
      }
      if (!(await reader.atEnd())) {
        throw new FormatError("the stored file has extra bytes after its last chunk");
      }
      break;
    } catch (error) {
      reader?.cancel();
      if (!(error instanceof Interrupted)) throw error;
      if (header && fetched >= header.chunkCount) break; // all arrived; only the end was cut off
      failures += 1;
      if (failures > RETRIES) throw new NetworkError(error.message);
      await sleep(500 * 2 ** failures);
    }
  }
  while (opening.length) await output.add(await opening.shift());
  const written = await output.finish();
  if ((await digest.hexdigest()) !== expect.digest) {
    throw new DigestMismatch("the file differs from the one the sender signed");
  }
  return written;
}

// -- where the plaintext goes ---------------------------------------------------------------

async function pickerSink(name) {
  let handle;
  try {
    handle = await globalThis.showSaveFilePicker({ suggestedName: name });
  } catch (error) {
    if (error.name === "AbortError") throw new Cancelled("the file picker was closed");
    throw error;
  }
  const writable = await handle.createWritable();
  return {
    kind: "picker",
    copies: true, // the bytes are in the file once write() resolves
    write: (bytes) => writable.write(bytes), // the stream queues writes in order
    close: () => writable.close(),
    async abort() {
      await writable.abort().catch(() => {});
      // The picker made an empty file; take it away again where the browser allows it.
      await handle.remove?.().catch(() => {});
    },
  };
}

let registering = null;

function activeWorker(registration) {
  const worker = registration.installing || registration.waiting;
  if (!worker || registration.active) return Promise.resolve(registration);
  return new Promise((resolve, reject) => {
    worker.addEventListener("statechange", () => {
      if (worker.state === "activated") resolve(registration);
      if (worker.state === "redundant") reject(new Error("the service worker did not start"));
    });
  });
}

function serviceWorker(url, scope) {
  registering ??= navigator.serviceWorker.register(url, { scope }).then(activeWorker);
  registering.catch(() => {
    registering = null;
  });
  return registering;
}

async function workerSink(name, size, { url, scope }, onCancel) {
  const registration = await serviceWorker(url, scope);
  const id = crypto.randomUUID();
  const channel = new MessageChannel();
  const port = channel.port1;
  let credits = 0;
  let cancelled = false;
  let wake = null;
  let ready;
  let started;
  const isReady = new Promise((resolve) => (ready = resolve));
  const isStarted = new Promise((resolve) => (started = resolve));
  port.onmessage = ({ data }) => {
    if (data.type === "pull") credits += 1;
    else if (data.type === "ready") ready();
    else if (data.type === "started") started();
    else if (data.type === "cancel") {
      cancelled = true;
      onCancel?.();
    }
    wake?.();
  };
  registration.active.postMessage({ type: "download", id, name, size }, [channel.port2]);
  await timeout(isReady, START_TIMEOUT, "the service worker did not answer");
  const frame = document.createElement("iframe");
  frame.hidden = true;
  frame.src = `${scope}_download/${id}`;
  document.body.append(frame);
  const ping = setInterval(() => registration.active?.postMessage({ type: "ping" }), PING);
  const cleanup = () => {
    clearInterval(ping);
    setTimeout(() => frame.remove(), 30_000);
  };
  try {
    await timeout(isStarted, START_TIMEOUT, "the browser did not start the download");
  } catch (error) {
    cleanup();
    frame.remove();
    throw error;
  }
  // One piece per "pull", in order, even when write() is called before the last finished.
  let queue = Promise.resolve();
  const send = async (bytes) => {
    while (credits === 0) {
      if (cancelled) throw new Cancelled("the download was cancelled in the browser");
      await new Promise((resolve) => (wake = resolve));
    }
    if (cancelled) throw new Cancelled("the download was cancelled in the browser");
    credits -= 1;
    const own = bytes.byteOffset === 0 && bytes.byteLength === bytes.buffer.byteLength
      ? bytes
      : bytes.slice();
    port.postMessage({ type: "data", buffer: own.buffer }, [own.buffer]);
  };
  return {
    kind: "worker",
    write(bytes) {
      const sent = queue.then(() => send(bytes));
      queue = sent.catch(() => {});
      return sent;
    },
    async close() {
      port.postMessage({ type: "end" });
      cleanup();
    },
    async abort(reason) {
      port.postMessage({ type: "abort", reason: String(reason || "") });
      cleanup();
    },
  };
}

function memorySink(name) {
  let parts = [];
  return {
    kind: "memory",
    async write(bytes) {
      parts.push(bytes);
    },
    async close() {
      const url = URL.createObjectURL(new Blob(parts, { type: "application/octet-stream" }));
      parts = [];
      const link = document.createElement("a");
      link.href = url;
      link.download = name;
      link.hidden = true;
      document.body.append(link);
      link.click();
      link.remove();
      setTimeout(() => URL.revokeObjectURL(url), 60_000);
    },
    async abort() {
      parts = [];
    },
  };
}

/**
 * Open the best place to save `name` (`size` bytes). Call it straight from the click
 * handler: the file picker needs the click. options: {worker: {url, scope}, memoryLimit,
 * onCancel}.
 */
export async function openSink(name, size, options) {
  if (typeof globalThis.showSaveFilePicker === "function") {
    try {
      return await pickerSink(name);
    } catch (error) {
      if (error instanceof Cancelled) throw error;
      console.warn("file picker unavailable, trying the service worker", error);
    }
  }
  if ("serviceWorker" in navigator && globalThis.isSecureContext) {
    try {
      return await workerSink(name, size, options.worker, options.onCancel);
    } catch (error) {
      console.warn("service worker unavailable", error);
    }
  }
  if (size < options.memoryLimit) return memorySink(name);
  throw new TooLarge("no way to stream this file to disk in this browser");
}

/** A file name that is safe to suggest: no paths, controls or characters Windows forbids. */
export function safeName(name, fallback = "download") {
  const clean = name
    .normalize("NFC")
    .replace(/[\p{Cc}\p{Cf}\p{Zl}\p{Zp}\p{Cs}\p{Co}]/gu, "")
    .replace(/[<>:"|?*/\\]/g, "_")
    .replace(/\s+/g, " ")
    .replace(/^[ .]+|[ .]+$/g, "");
  return clean || fallback;
}

export { SXFError };
