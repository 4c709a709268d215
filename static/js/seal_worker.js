// Encrypts one file for the compose page off the page's thread (in Chromium WebCrypto runs on
// the thread that calls it, so the page stays free to read the file and upload). One worker per
// upload, fed plaintext slices in order; it never sees a chunk twice (sxf.js Encryptor).
//
// Messages in:  {start: {deliveryKey, deliveryId, fileId, size, digest}} -> {header}
//               {seal: {first, plain, into}} -> {sealed: {first, stored, plain}}
//               {finish: true} -> {digest}
// Buffers travel as transfers, so nothing is copied between the page and the worker. Any
// failure answers {error} and the page ends the worker.

import { BlobDigest, Encryptor } from "./sxf.js";

let encryptor = null;
let digest = null;
let queue = Promise.resolve();
let failed = false;

async function handle(message) {
  if (message.start) {
    const { deliveryKey, deliveryId, fileId, size } = message.start;
    encryptor = await Encryptor.create(deliveryKey, deliveryId, fileId, size);
    if (message.start.digest) {
      digest = new BlobDigest();
      await digest.updateHeader(encryptor.header);
    }
    const header = encryptor.header.slice();
    postMessage({ header }, [header.buffer]);
  } else if (message.seal) {
    const { first, plain, into } = message.seal;
    const stored = await encryptor.encryptChunks(first, plain, { into, digest });
    postMessage({ sealed: { first, stored, plain } }, [stored.buffer, plain.buffer]);
  } else if (message.finish) {
    postMessage({ digest: digest ? await digest.hexdigest() : null });
  }
}

onmessage = ({ data }) => {
  // One message at a time, in order: the chunks are sealed (and hashed) in sequence.
  queue = queue
    .then(() => failed || handle(data))
    .catch((error) => {
      failed = true;
      postMessage({ error: error?.message || String(error) });
    });
};
