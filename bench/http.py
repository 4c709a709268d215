"""A small HTTP/1.1 client for measuring: bodies go out with sendfile or from a generator,
responses are read into one reused buffer and thrown away, so the client costs as little
CPU as possible and the same for every side of a comparison."""

import http.client
import json
import socket
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

BUFFER = 1 << 20


@dataclass
class Slice:
    """``count`` bytes of a file from ``offset``, sent with sendfile."""

    path: Path
    offset: int
    count: int


@dataclass
class Response:
    status: int
    headers: http.client.HTTPMessage
    length: int  # body bytes received
    body: bytes = b""  # kept only when asked for
    seconds: float = 0.0
    cookies: dict = field(default_factory=dict)

    def json(self):
        return json.loads(self.body)


class Client:
    """Requests to one loopback port, each on a fresh connection."""

    def __init__(self, port: int, host: str = "127.0.0.1"):
        self.port = port
        self.host = host
        self.cookies: dict[str, str] = {}
        self._buffer = bytearray(BUFFER)

    def request(
        self,
        method: str,
        path: str,
        *,
        headers: dict | None = None,
        body: bytes | Slice | Iterable[bytes] | None = None,
        length: int | None = None,
        keep: bool = False,
        rcvbuf: int | None = None,
        pace: float | None = None,
    ) -> Response:
        """Send one request; ``body`` is bytes, a file slice (sent with sendfile) or an
        iterable of bytes with ``length`` given. ``pace`` (bytes per second) reads the
        answer slowly, through a receive buffer of ``rcvbuf`` bytes."""
        headers = {"Host": f"{self.host}:{self.port}", "Connection": "close", **(headers or {})}
        if self.cookies:
            headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        if isinstance(body, bytes):
            length = len(body)
        elif isinstance(body, Slice):
            length = body.count
        if body is not None:
            headers["Content-Length"] = str(length)
        head = f"{method} {path} HTTP/1.1\r\n"
        head += "".join(f"{k}: {v}\r\n" for k, v in headers.items()) + "\r\n"
        started = time.perf_counter()
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if rcvbuf:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        try:
            sock.connect((self.host, self.port))
            sock.sendall(head.encode("latin-1"))
            if isinstance(body, bytes):
                sock.sendall(body)
            elif isinstance(body, Slice):
                with body.path.open("rb") as source:
                    sock.sendfile(source, body.offset, body.count)
            elif body is not None:
                for piece in body:
                    sock.sendall(piece)
            response = http.client.HTTPResponse(sock, method=method)
            response.begin()
            kept, received = [], 0
            view = memoryview(self._buffer if pace is None else bytearray(rcvbuf or 65536))
            while True:
                n = response.readinto(view)
                if not n:
                    break
                received += n
                if keep:
                    kept.append(bytes(view[:n]))
                if pace:
                    late = received / pace - (time.perf_counter() - started)
                    if late > 0:
                        time.sleep(late)
            seconds = time.perf_counter() - started
            cookies = {}
            for value in response.headers.get_all("Set-Cookie") or []:
                name, _sep, rest = value.partition("=")
                cookies[name.strip()] = rest.split(";", 1)[0]
            self.cookies.update(cookies)
            return Response(
                response.status, response.headers, received, b"".join(kept), seconds, cookies
            )
        finally:
            sock.close()

    def json(self, method: str, path: str, data=None, headers: dict | None = None) -> Response:
        body = json.dumps(data).encode() if data is not None else b""
        headers = {"Content-Type": "application/json", **(headers or {})}
        return self.request(method, path, headers=headers, body=body, keep=True)
