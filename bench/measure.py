"""The server-side rows: every ratio alternates the two sides ``rounds`` times and compares
medians, so both see the same machine load."""

import re
import shutil
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from bench import flows
from bench.http import Client, Slice
from bench.stack import RECIPIENT, Stack
from bench.table import MIB, Row, median, rate, ratio, sizes
from secupass import sxf

NGINX_ETAG = re.compile(r'^"[0-9a-f]+-[0-9a-f]+"$')


@dataclass
class Settings:
    size: int  # bytes per transfer in the ratio rows
    crypto: int  # bytes decrypted in the crypto row
    memory: int  # bytes uploaded and downloaded in the memory row
    slow_clients: int
    slow_size: int
    slow_rate: int  # bytes per second each slow client reads
    rounds: int
    chunk: int  # tus PATCH size (TUS_MAX_CHUNK)


def _alternate(rounds: int, *sides) -> list[float]:
    """Run the sides one after the other, ``rounds`` times; their median seconds."""
    times = [[] for _ in sides]
    for _ in range(rounds):
        for i, side in enumerate(sides):
            times[i].append(side())
    return [median(t) for t in times]


def _get(client: Client, path: str, size: int) -> float:
    response = client.request("GET", path)
    if response.status != 200 or response.length != size:
        raise flows.FlowError(f"GET {path}: HTTP {response.status}, {response.length} bytes")
    return response.seconds


def _ratio(what, size, ours, theirs, baseline_name, target) -> Row:
    value = theirs / ours  # seconds: higher throughput is better
    return Row(
        what,
        rate(size, ours),
        f"{rate(size, theirs)} {baseline_name}",
        ratio(value),
        f">= {target}",
        value >= target,
    )


# -- level 1: upload (tus) and download (the server decrypts) ----------------------------------


def uploads_and_level1_downloads(stack: Stack, s: Settings) -> list[Row]:
    """tus uploads and level 1 downloads, straight to gunicorn and through nginx, each
    against nginx alone; the uploaded files are then sent and downloaded."""
    draft = flows.create_delivery(stack)
    blob = stack.tmp / "upload.sxf"
    count = 0

    def tus_once(client: Client) -> float:
        nonlocal count
        count += 1
        path = flows.tus_create(stack, draft, s.size, f"file{count}.bin", client=client)
        file_id = path.rstrip("/").rsplit("/", 1)[1]
        flows.write_blob(blob, draft.key, draft.id, file_id, s.size)  # not timed
        started = time.perf_counter()
        flows.tus_upload_file(stack, path, blob, s.chunk, client=client)
        return time.perf_counter() - started

    def put_once() -> float:
        target = f"/put/{uuid.uuid4().hex}.sxf"
        response = stack.direct().request("PUT", target, body=Slice(blob, 0, blob.stat().st_size))
        if response.status not in (201, 204):
            raise flows.FlowError(f"nginx PUT: HTTP {response.status}")
        (stack.put / target.rsplit("/", 1)[1]).unlink()
        return response.seconds

    blob_size = sxf.blob_length(s.size)
    direct_up, proxied_up, put = _alternate(
        s.rounds,
        lambda: tus_once(Client(stack.app_port)),
        lambda: tus_once(stack.front()),
        put_once,
    )
    blob.unlink()
    upload = f"{sizes(blob_size)} blob in {sizes(s.chunk)} PATCHes, x{s.rounds}"
    rows = [
        _ratio(
            f"tus upload straight to gunicorn vs nginx PUT of the blob to disk ({upload})",
            blob_size,
            direct_up,
            put,
            "PUT",
            0.5,
        ),
        _ratio(
            f"tus upload through nginx to gunicorn vs the same nginx PUT ({upload})",
            blob_size,
            proxied_up,
            put,
            "PUT",
            0.5,
        ),
    ]

    flows.send(stack, draft)  # authenticates every blob, as a real send does
    client, files = flows.open_link(stack, flows.link_token())
    url = flows.path_of(files[0]["url"])
    straight = Client(stack.app_port)
    straight.cookies = dict(client.cookies)
    plain = stack.plain / "level1.bin"
    flows.write_plain(plain, s.size)
    direct = stack.direct()
    direct_down, proxied_down, sendfile = _alternate(
        s.rounds,
        lambda: _get(straight, url, s.size),
        lambda: _get(client, url, s.size),
        lambda: _get(direct, "/plain/level1.bin", s.size),
    )
    plain.unlink()
    download = f"{sizes(s.size)}, x{s.rounds}"
    rows += [
        _ratio(
            f"level 1 download straight from gunicorn (decrypting) vs nginx sendfile of as "
            f"many plain bytes ({download})",
            s.size,
            direct_down,
            sendfile,
            "sendfile",
            0.5,
        ),
        _ratio(
            f"level 1 download from gunicorn through nginx vs the same nginx sendfile ({download})",
            s.size,
            proxied_down,
            sendfile,
            "sendfile",
            0.5,
        ),
    ]
    return rows


# -- level 3: ciphertext through X-Accel-Redirect ---------------------------------------------


def level3_accel(stack: Stack, s: Settings) -> Row:
    """Two sizes, since the app's part is a fixed cost per request (checks, counting)."""
    sizes_ = (s.size, 4 * s.size)
    blobs = " and ".join(sizes(sxf.blob_length(size)) for size in sizes_)
    what = (
        f"level 3 ciphertext download via X-Accel-Redirect vs nginx serving the same file "
        f"directly ({blobs}, x{s.rounds}; the app's added time per request in brackets)"
    )
    direct = stack.direct()
    ratios, rates, extra, served_by_app = [], [], [], False
    for size in sizes_:
        made = flows.make_level3(stack, size)
        probe = made.client.request("GET", made.blob_path, headers={"Range": "bytes=0-0"})
        if probe.status != 206:
            return Row.not_measured(what, ">= 0.9", f"the blob URL answered HTTP {probe.status}")
        served_by_app |= not NGINX_ETAG.match(probe.headers.get("ETag", ""))
        ours, theirs = _alternate(
            s.rounds,
            lambda made=made: _get(made.client, made.blob_path, made.blob_size),
            lambda made=made: _get(direct, f"/blobs/{made.storage_name}", made.blob_size),
        )
        ratios.append(theirs / ours)
        rates.append((rate(made.blob_size, ours), rate(made.blob_size, theirs)))
        extra.append(ours - theirs)
    result = " / ".join(
        f"{ratio(r)} ({e * 1000:+.0f} ms)" for r, e in zip(ratios, extra, strict=True)
    )
    row = Row(
        what,
        " / ".join(ours for ours, _theirs in rates),
        " / ".join(theirs for _ours, theirs in rates) + " direct",
        result,
        ">= 0.9",
        all(r >= 0.9 for r in ratios),
    )
    if served_by_app:
        row.what += (
            f": not measured, the level 3 view sends the blob itself, without "
            f"X-Accel-Redirect (that path: {row.result})"
        )
        row.result = "not measured"
        row.ok = None
    return row


# -- SXF1 decryption vs raw AES-GCM ------------------------------------------------------------


def decryption(s: Settings) -> Row:
    key = bytes(32)
    delivery_id, file_id = uuid.uuid4(), uuid.uuid4()
    blob = b"".join(flows.blob_pieces(key, delivery_id, file_id, s.crypto))
    header = sxf.Header.parse(
        blob[: sxf.HEADER_LEN], delivery_id=delivery_id, file_id=file_id, blob_length=len(blob)
    )
    aead = AESGCM(sxf.payload_key(key, header))
    stored = header.chunk_size + sxf.TAG_LEN
    view = memoryview(blob)[sxf.HEADER_LEN :]
    last = header.chunk_count - 1
    nonces = [sxf.chunk_nonce(i, i == last) for i in range(last + 1)]

    # Ours reads the blob from a file, as the server does (just written, so in the page
    # cache); raw AES-GCM decrypts the same bytes from memory.
    stored_blob = Path(tempfile.mkdtemp(prefix="secushare-bench-")) / "crypto.sxf"
    stored_blob.write_bytes(blob)

    def sxf_once() -> float:
        started = time.perf_counter()
        with stored_blob.open("rb") as readable:
            for _piece in sxf.decrypt_stream(
                key,
                readable,
                delivery_id=delivery_id,
                file_id=file_id,
                blob_length=len(blob),
            ):
                pass
        return time.perf_counter() - started

    def raw_once() -> float:
        decrypt = aead.decrypt
        started = time.perf_counter()
        for i, nonce in enumerate(nonces):
            decrypt(nonce, view[i * stored : (i + 1) * stored], None)
        return time.perf_counter() - started

    try:
        ours, theirs = _alternate(max(3, s.rounds), sxf_once, raw_once)
    finally:
        shutil.rmtree(stored_blob.parent)
    return _ratio(
        f"SXF1 decryption in Python (secupass.sxf.decrypt_stream, from the blob's file) vs raw "
        f"AES-256-GCM (cryptography) over the same bytes in memory, 64 KiB chunks "
        f"({sizes(s.crypto)})",
        s.crypto,
        ours,
        theirs,
        "raw",
        0.8,
    )


# -- server memory over a large upload and download ---------------------------------------------


class Peaks:
    """Peak resident memory of processes: the kernel's high-water mark, reset at the start
    (clear_refs), and sampling every 20 ms as a cross-check."""

    def __init__(self, pids: list[int]):
        self.pids = pids
        self.start = {pid: _status(pid, "VmRSS") for pid in pids}
        self.sampled = dict(self.start)
        self.reset = True
        for pid in pids:
            try:
                Path(f"/proc/{pid}/clear_refs").write_text("5")
            except OSError:
                self.reset = False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()

    def _sample(self):
        while not self._stop.wait(0.02):
            for pid in self.pids:
                self.sampled[pid] = max(self.sampled[pid], _status(pid, "VmRSS"))

    def growth(self) -> int:
        """Bytes: the sum over the processes of peak minus resident at the start."""
        self._stop.set()
        self._thread.join()
        total = 0
        for pid in self.pids:
            peak = self.sampled[pid]
            if self.reset:
                peak = max(peak, _status(pid, "VmHWM"))
            total += max(0, peak - self.start[pid])
        return total


def _status(pid: int, field: str) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def memory(stack: Stack, s: Settings) -> Row:
    what = (
        f"gunicorn's peak resident growth (all processes) over a {sizes(s.memory)} tus upload, "
        f"its send and its level 1 download"
    )
    peaks = Peaks(stack.app_pids())
    draft = flows.create_delivery(stack)
    path = flows.tus_create(stack, draft, s.memory, "large.bin")
    file_id = path.rstrip("/").rsplit("/", 1)[1]
    blob_size = sxf.blob_length(s.memory)
    pieces = flows.blob_pieces(draft.key, draft.id, file_id, s.memory)
    started = time.perf_counter()
    flows.tus_upload_stream(stack, path, pieces, blob_size, s.chunk)
    uploaded = time.perf_counter() - started
    flows.send(stack, draft)
    client, files = flows.open_link(stack, flows.link_token())
    downloaded = _get(client, flows.path_of(files[0]["url"]), s.memory)
    growth = peaks.growth()
    limit = 64 * MIB
    return Row(
        what,
        f"up {rate(blob_size, uploaded)}, down {rate(s.memory, downloaded)}",
        "-",
        f"+{growth / MIB:.1f} MiB",
        "<= 64 MiB",
        growth <= limit,
    )


# -- many slow downloads and the landing page meanwhile ---------------------------------------


def slow_downloads(stack: Stack, s: Settings) -> Row:
    what = (
        f"{s.slow_clients} concurrent level 1 downloads of {sizes(s.slow_size)} read at "
        f"{sizes(s.slow_rate)}/s each: all complete; landing page p95 during them"
    )
    draft = flows.create_delivery(stack)
    path = flows.tus_create(stack, draft, s.slow_size, "slow.bin")
    file_id = path.rstrip("/").rsplit("/", 1)[1]
    size = sxf.blob_length(s.slow_size)
    pieces = flows.blob_pieces(draft.key, draft.id, file_id, s.slow_size)
    flows.tus_upload_stream(stack, path, pieces, size, s.chunk)
    flows.send(stack, draft)
    token = flows.link_token(RECIPIENT)
    client, files = flows.open_link(stack, token)
    url = flows.path_of(files[0]["url"])

    results: list[tuple[int, int]] = []
    lock = threading.Lock()

    def download():
        mine = Client(stack.port)
        mine.cookies = dict(client.cookies)
        try:
            response = mine.request("GET", url, rcvbuf=64 * 1024, pace=s.slow_rate)
            outcome = (response.status, response.length)
        except OSError as e:
            outcome = (0, -1 if not str(e) else 0)
        with lock:
            results.append(outcome)

    threads = [threading.Thread(target=download, daemon=True) for _ in range(s.slow_clients)]
    for thread in threads:
        thread.start()
    latencies = []
    time.sleep(0.5)  # all connections are open
    while any(thread.is_alive() for thread in threads):
        response = Client(stack.port).request("GET", f"/d/{token}")
        if response.status != 200:
            raise flows.FlowError(f"the landing page answered HTTP {response.status}")
        latencies.append(response.seconds)
        time.sleep(0.1)
    for thread in threads:
        thread.join()
    complete = sum(1 for status, length in results if status == 200 and length == s.slow_size)
    latencies.sort()
    p95 = latencies[max(0, int(len(latencies) * 0.95 + 0.5) - 1)] if latencies else float("nan")
    return Row(
        what,
        f"{complete}/{s.slow_clients} complete",
        f"{len(latencies)} landing pages",
        f"p95 {p95 * 1000:.0f} ms",
        "all; < 100 ms",
        complete == s.slow_clients and p95 < 0.1,
    )
