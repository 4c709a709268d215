// The download service worker of the recipient pages (registered by receive_e2e.js, served
// at /r/sw.js with scope /r/).
//
// A browser without the File System Access API cannot write a stream to disk from a page;
// it can save a response. The page decrypts, and hands this worker the plaintext through a
// MessageChannel; the worker answers one navigation to /r/_download/<id> with a response whose
// body is that stream, as an attachment. Nothing is stored: a piece goes to the browser's
// download as soon as it arrives, and the page sends the next one only when this stream asks
// for it (one "pull" per piece), so memory stays bounded. If the page reports a failure the
// stream errors and the browser marks the download failed; it never completes a broken file.
//
// Any other request under /r/ goes to the network untouched.

const PATH = /^\/r\/_download\/([0-9a-f-]{36})$/;
const HIGH_WATER = 4 * 1024 * 1024; // bytes the stream buffers before it stops asking
const pending = new Map(); // id -> {stream, name, size, port}

self.addEventListener("install", () => self.skipWaiting());

function disposition(name) {
  const ascii = name.replace(/[^\x20-\x7e]/g, "_").replace(/["\\]/g, "_");
  return `attachment; filename="${ascii}"; filename*=UTF-8''${encodeURIComponent(name)}`;
}

function prepare({ id, name, size }, port) {
  const stream = new ReadableStream(
    {
      start(controller) {
        port.onmessage = ({ data }) => {
          if (data.type === "data") controller.enqueue(new Uint8Array(data.buffer));
          else if (data.type === "end") controller.close();
          else if (data.type === "abort") controller.error(new Error(data.reason || "aborted"));
        };
      },
      pull() {
        port.postMessage({ type: "pull" });
      },
      cancel() {
        // The person cancelled the download in the browser.
        port.postMessage({ type: "cancel" });
      },
    },
    new ByteLengthQueuingStrategy({ highWaterMark: HIGH_WATER }),
  );
  pending.set(id, { stream, name, size, port });
  // Forget an id nobody navigated to (the page went away before it could).
  setTimeout(() => pending.delete(id), 60_000);
  port.postMessage({ type: "ready" });
}

self.addEventListener("message", (event) => {
  const data = event.data || {};
  if (data.type === "download" && event.ports[0] && typeof data.id === "string") {
    prepare(data, event.ports[0]);
  }
  // "ping" messages only keep this worker alive while a download runs.
});

self.addEventListener("fetch", (event) => {
  const url = new URL(event.request.url);
  if (url.origin !== self.location.origin) return;
  const match = PATH.exec(url.pathname);
  if (!match || !pending.has(match[1])) return;
  const job = pending.get(match[1]);
  pending.delete(match[1]);
  const headers = {
    "Content-Type": "application/octet-stream",
    "Content-Disposition": disposition(job.name),
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": "sandbox; default-src 'none'",
    "Cache-Control": "no-store",
  };
  if (Number.isSafeInteger(job.size)) headers["Content-Length"] = String(job.size);
  event.respondWith(new Response(job.stream, { headers }));
  job.port.postMessage({ type: "started" });
});
