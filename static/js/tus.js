// A small tus 1.0 client (core, creation, termination): what the compose page needs, no more.
//
// upload() sends bytes the caller already holds (ciphertext): after a network error or a 5xx
// answer it waits, asks the server for its offset (HEAD) and resends from there, out of the
// same bytes. It never asks the caller to produce bytes again, so nothing is encrypted twice.

export const TUS_RESUMABLE = "1.0.0";

// Waits before the 1st, 2nd, ... retry of one batch; about two minutes in all.
export const RETRY_DELAYS = [500, 1000, 2000, 4000, 8000, 15000, 30000, 30000, 30000];

const RETRYABLE = new Set([0, 409, 423, 429]);

export class TusError extends Error {
  /**
   * status: the HTTP status (0 for a network error); serverMessage: the server's sentence, if
   * any; retryable: worth trying again; lost: the server no longer has bytes it acknowledged.
   */
  constructor(message, { status = 0, serverMessage = null, retryable = false, lost = false } = {}) {
    super(message);
    this.name = "TusError";
    this.status = status;
    this.serverMessage = serverMessage;
    this.retryable = retryable;
    this.lost = lost;
  }
}

function abortError() {
  return new DOMException("The upload was cancelled.", "AbortError");
}

function messageOf(text) {
  try {
    const data = JSON.parse(text);
    if (typeof data.error === "string") return data.error;
    if (data.errors && typeof data.errors === "object") {
      return Object.values(data.errors).flat().join(" ");
    }
  } catch {
    // not JSON: no sentence to show
  }
  return null;
}

function httpError(status, text) {
  const serverMessage = messageOf(text);
  return new TusError(serverMessage || `HTTP ${status}`, {
    status,
    serverMessage,
    retryable: RETRYABLE.has(status) || status >= 500,
    // 404/410 for an upload of our own: it expired or its stored part was lost.
    lost: status === 404 || status === 410,
  });
}

function utf8Base64(value) {
  const bytes = new TextEncoder().encode(String(value));
  let binary = "";
  for (const b of bytes) binary += String.fromCharCode(b);
  return btoa(binary);
}

/** Upload-Metadata: "key base64(value)" pairs, comma-separated. */
export function encodeMetadata(metadata) {
  return Object.entries(metadata)
    .map(([key, value]) => `${key} ${utf8Base64(value)}`)
    .join(",");
}

/** Wait ms milliseconds; sooner when the browser comes back online; reject when aborted. */
export function sleep(ms, signal) {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) {
      reject(abortError());
      return;
    }
    const done = () => {
      clearTimeout(timer);
      window.removeEventListener("online", done);
      signal?.removeEventListener("abort", aborted);
      resolve();
    };
    const aborted = () => {
      clearTimeout(timer);
      window.removeEventListener("online", done);
      reject(abortError());
    };
    const timer = setTimeout(done, ms);
    window.addEventListener("online", done);
    signal?.addEventListener("abort", aborted, { once: true });
  });
}

export class TusClient {
  /** endpoint: the creation URL; headers: sent with every request (e.g. X-CSRFToken). */
  constructor(endpoint, { headers = {} } = {}) {
    this.endpoint = new URL(endpoint, location.href).href;
    this.headers = { "Tus-Resumable": TUS_RESUMABLE, ...headers };
  }

  async request(method, url, { headers = {}, signal } = {}) {
    let response;
    try {
      response = await fetch(url, {
        method,
        headers: { ...this.headers, ...headers },
        credentials: "same-origin",
        cache: "no-store",
        signal,
      });
    } catch (e) {
      if (e.name === "AbortError") throw e;
      throw new TusError("network error", { retryable: true });
    }
    if (!response.ok) throw httpError(response.status, await response.text().catch(() => ""));
    return response;
  }

  /** Creation: returns {url, expires}. Retried only when the server said it failed. */
  async create(length, metadata, { signal } = {}) {
    const headers = {
      "Upload-Length": String(length),
      "Upload-Metadata": encodeMetadata(metadata),
    };
    for (let attempt = 0; ; attempt++) {
      try {
        const response = await this.request("POST", this.endpoint, { headers, signal });
        const location = response.headers.get("Location");
        if (!location) throw new TusError("the server sent no upload address", { status: 201 });
        return {
          url: new URL(location, this.endpoint).href,
          expires: response.headers.get("Upload-Expires"),
        };
      } catch (e) {
        // A lost answer may hide a created upload; the caller removes strays before sending.
        if (!e.retryable || e.status === 409 || attempt >= 3) throw e;
        await sleep(RETRY_DELAYS[attempt], signal);
      }
    }
  }

  /** HEAD: {offset, length} as the server has them. */
  async head(url, { signal } = {}) {
    const response = await this.request("HEAD", url, { signal });
    const offset = Number(response.headers.get("Upload-Offset"));
    const lengthHeader = response.headers.get("Upload-Length");
    if (!Number.isSafeInteger(offset) || offset < 0) {
      throw new TusError("the server sent no valid Upload-Offset", { retryable: true });
    }
    return { offset, length: lengthHeader === null ? null : Number(lengthHeader) };
  }

  /** Termination (DELETE). A 404 or 410 means it is gone already, which is what we want. */
  async terminate(url) {
    try {
      await this.request("DELETE", url);
    } catch (e) {
      if (e.status !== 404 && e.status !== 410) throw e;
    }
  }

  /**
   * One PATCH with body at offset; resolves to the server's new offset. XMLHttpRequest,
   * because fetch() reports no upload progress: onProgress(bytesOfBodySent).
   */
  patch(url, offset, body, { onProgress, signal } = {}) {
    return new Promise((resolve, reject) => {
      if (signal?.aborted) {
        reject(abortError());
        return;
      }
      const xhr = new XMLHttpRequest();
      const onAbort = () => xhr.abort();
      const finish = () => signal?.removeEventListener("abort", onAbort);
      xhr.open("PATCH", url);
      for (const [name, value] of Object.entries(this.headers)) xhr.setRequestHeader(name, value);
      xhr.setRequestHeader("Upload-Offset", String(offset));
      xhr.setRequestHeader("Content-Type", "application/offset+octet-stream");
      if (onProgress) xhr.upload.onprogress = (event) => onProgress(event.loaded);
      xhr.onload = () => {
        finish();
        if (xhr.status < 200 || xhr.status >= 300) {
          reject(httpError(xhr.status, xhr.responseText));
          return;
        }
        const next = Number(xhr.getResponseHeader("Upload-Offset"));
        if (!Number.isSafeInteger(next) || next < offset) {
          reject(new TusError("the server sent no valid Upload-Offset", { retryable: true }));
          return;
        }
        resolve(next);
      };
      xhr.onerror = () => {
        finish();
        reject(new TusError("network error", { retryable: true }));
      };
      xhr.onabort = () => {
        finish();
        reject(abortError());
      };
      signal?.addEventListener("abort", onAbort, { once: true });
      xhr.send(body);
    });
  }

  /**
   * Make the server hold bytes (a Uint8Array or a Blob) at stored offset start, that is
   * [start, start + size).
   * On a network error or a retryable answer: wait (RETRY_DELAYS), HEAD, resend from the
   * server's offset. onProgress(absoluteOffset) while bytes go out; onRetry(ms, error) before
   * each wait. Throws a TusError with lost=true if the server has less than start (bytes it had
   * acknowledged are gone: the caller must start a new upload) or more than this batch.
   */
  async upload(url, start, bytes, { onProgress, onRetry, signal } = {}) {
    const size = bytes instanceof Blob ? bytes.size : bytes.length;
    const rest = (from) => (bytes instanceof Blob ? bytes.slice(from) : bytes.subarray(from));
    const end = start + size;
    let offset = start;
    let failures = 0;
    while (offset < end) {
      try {
        if (failures > 0) {
          const head = await this.head(url, { signal });
          if (head.offset < start || head.offset > end) {
            throw new TusError("the server's offset is outside the bytes held", { lost: true });
          }
          offset = head.offset;
          if (offset === end) break;
        }
        const from = offset;
        offset = await this.patch(url, from, rest(from - start), {
          signal,
          onProgress: onProgress && ((sent) => onProgress(from + sent)),
        });
        if (offset > end) {
          throw new TusError("the server acknowledged more bytes than were sent", { lost: true });
        }
        failures = 0;
      } catch (e) {
        if (e.name === "AbortError" || !e.retryable || failures >= RETRY_DELAYS.length) throw e;
        const delay = RETRY_DELAYS[failures];
        failures += 1;
        onRetry?.(delay, e);
        await sleep(delay, signal);
      }
    }
    onProgress?.(end);
    return end;
  }
}
