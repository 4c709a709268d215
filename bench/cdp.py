"""Headless Chromium driven over the DevTools protocol on a pipe, without a test driver.

A test driver (Playwright) enables network monitoring on every page, and with it large
transfers run many times slower than they do for a person; the benchmark needs the browser
as people use it. This client enables nothing it does not need: it navigates, evaluates
JavaScript and sets files on an input, and the pages do the rest.
"""

import contextlib
import json
import os
import shutil
import subprocess
import tempfile
import threading
import time
from pathlib import Path

ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-quic",
    "--no-first-run",
    "--no-default-browser-check",
    "--remote-debugging-pipe",
]


class CDPError(Exception):
    pass


def chromium_binary() -> str | None:
    configured = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
    return configured if os.path.exists(configured) else shutil.which("chromium")


class Browser:
    def __init__(self):
        binary = chromium_binary()
        if binary is None:
            raise CDPError("Chromium is not installed: apt-get install -y chromium")
        self.profile = Path(tempfile.mkdtemp(prefix="secushare-bench-chromium-"))
        to_browser_r, self._to_browser = os.pipe()
        self._from_browser, from_browser_w = os.pipe()

        def child_fds():
            # Chromium reads commands on fd 3 and answers on fd 4. Copies first, so neither
            # end is overwritten by the other; dup2 makes 3 and 4 inheritable.
            reading, writing = os.dup(to_browser_r), os.dup(from_browser_w)
            os.dup2(reading, 3)
            os.dup2(writing, 4)

        self.process = subprocess.Popen(
            [binary, *ARGS, f"--user-data-dir={self.profile}", "about:blank"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            preexec_fn=child_fds,  # before any thread of this object starts
            close_fds=False,
        )
        os.close(to_browser_r)
        os.close(from_browser_w)
        self._next = 0
        self._lock = threading.Lock()
        self._answers: dict[int, dict] = {}
        self._arrived = threading.Condition()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self):
        buffer = b""
        while True:
            try:
                data = os.read(self._from_browser, 1 << 16)
            except OSError:
                data = b""
            if not data:
                with self._arrived:
                    self._answers[-1] = {"error": {"message": "Chromium exited"}}
                    self._arrived.notify_all()
                return
            buffer += data
            while b"\0" in buffer:
                raw, buffer = buffer.split(b"\0", 1)
                message = json.loads(raw)
                if "id" in message:
                    with self._arrived:
                        self._answers[message["id"]] = message
                        self._arrived.notify_all()

    def send(
        self,
        method: str,
        params: dict | None = None,
        session: str | None = None,
        timeout: float = 120,
    ) -> dict:
        with self._lock:
            self._next += 1
            ident = self._next
        message = {"id": ident, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = session
        payload = json.dumps(message).encode() + b"\0"
        with self._lock:
            os.write(self._to_browser, payload)
        deadline = time.monotonic() + timeout
        with self._arrived:
            while ident not in self._answers and -1 not in self._answers:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise CDPError(f"{method}: no answer in {timeout:.0f} s")
                self._arrived.wait(left)
            answer = self._answers.pop(ident, None) or self._answers[-1]
        if "error" in answer:
            raise CDPError(f"{method}: {answer['error'].get('message')}")
        return answer.get("result", {})

    def new_page(self, *, own_context: bool = True) -> "Page":
        """A page in a browser context of its own (its own cookies and storage), or with
        ``own_context=False`` in the profile's default context. A context of its own is
        off the record: Chromium keeps what the page stores (the origin-private file system
        included) in memory, where the default context keeps it on disk."""
        params = {"url": "about:blank"}
        if own_context:
            params["browserContextId"] = self.send("Target.createBrowserContext")[
                "browserContextId"
            ]
        target = self.send("Target.createTarget", params)["targetId"]
        session = self.send("Target.attachToTarget", {"targetId": target, "flatten": True})
        return Page(self, session["sessionId"])

    def pids(self) -> list[int]:
        """Chromium's processes (the browser and its children)."""
        return [self.process.pid, *_descendants(self.process.pid)]

    def close(self):
        with contextlib.suppress(CDPError):
            self.send("Browser.close", timeout=10)
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        for fd in (self._to_browser, self._from_browser):
            with contextlib.suppress(OSError):
                os.close(fd)
        shutil.rmtree(self.profile, ignore_errors=True)


class Page:
    def __init__(self, browser: Browser, session: str):
        self.browser = browser
        self.session = session
        self.send("Page.enable")

    def send(self, method: str, params: dict | None = None, timeout: float = 120) -> dict:
        return self.browser.send(method, params, self.session, timeout)

    def init_script(self, source: str) -> None:
        self.send("Page.addScriptToEvaluateOnNewDocument", {"source": source})

    def evaluate(self, expression: str, timeout: float = 600):
        """The value of a JavaScript expression (awaited if it is a promise)."""
        result = self.send(
            "Runtime.evaluate",
            {"expression": expression, "awaitPromise": True, "returnByValue": True},
            timeout,
        )
        if "exceptionDetails" in result:
            details = result["exceptionDetails"]
            text = details.get("exception", {}).get("description") or details.get("text")
            raise CDPError(f"JavaScript failed: {text}")
        return result["result"].get("value")

    def wait_for(self, condition: str, timeout: float = 60, interval: float = 0.02):
        """Poll a JavaScript condition until it is truthy; return its value."""
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            try:
                value = self.evaluate(condition, timeout=10)
            except CDPError as e:  # the page is navigating
                last = e
                value = None
            if value:
                return value
            time.sleep(interval)
        raise CDPError(f"timed out waiting for {condition}" + (f" ({last})" if last else ""))

    def goto(self, url: str, ready: str = "document.readyState === 'complete'"):
        """Open ``url`` (redirects are followed) and wait until ``ready`` holds there."""
        self.evaluate("window.__benchLeaving = true")
        self.send("Page.navigate", {"url": url})
        self.wait_for(f"!window.__benchLeaving && ({ready})")

    def set_files(self, selector: str, paths: list[str]) -> None:
        root = self.send("DOM.getDocument", {"depth": 0})["root"]["nodeId"]
        node = self.send("DOM.querySelector", {"nodeId": root, "selector": selector})["nodeId"]
        if not node:
            raise CDPError(f"no element {selector}")
        self.send("DOM.setFileInputFiles", {"nodeId": node, "files": paths})


def _descendants(root: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        parent = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(parent, []).append(int(entry))
    found, todo = [], [root]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found
