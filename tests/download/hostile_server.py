"""A hostile HTTP server on 127.0.0.1, written at the socket level so that it can do what a
well-behaved server library will not: drip the status line, the headers or a body one byte at a
time (a tarpit), send a redirect or an error with an endless body, or never answer a TLS
handshake. It records, per connection, when it was opened, when the client went away and how
many bytes were sent, so that tests can see how long a client was held."""

from __future__ import annotations

import io
import socket
import socketserver
import threading
import time
from dataclasses import dataclass, field

from PIL import Image

DRIP_INTERVAL = 0.1  # seconds between dripped bytes: a client gone is seen within two of them
GIVE_UP = 12.0  # a drip stops after this long, so a client without a deadline ends the test too


def _jpeg() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (64, 48), (200, 30, 30)).save(out, "JPEG", quality=90)
    return out.getvalue()


JPEG = _jpeg()  # a real, decodable picture


def _photo() -> bytes:
    from skimage import data  # a real photograph (scikit-image's test images, no network)

    out = io.BytesIO()
    Image.fromarray(data.astronaut()).save(out, "JPEG", quality=90)
    return out.getvalue()


PHOTO = _photo()
# Cut at 60 % and closed again with an end-of-image marker: the lower part would decode grey.
PHOTO_TRUNCATED_EOI = PHOTO[: len(PHOTO) * 6 // 10] + b"\xff\xd9"


@dataclass
class Connection:
    path: str
    opened: float
    closed: float | None = None
    bytes_sent: int = 0

    @property
    def held(self) -> float:
        """Seconds the client stayed connected (until it went away or the server gave up)."""
        return (self.closed or time.monotonic()) - self.opened


@dataclass
class Log:
    connections: list[Connection] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def for_path(self, path: str) -> list[Connection]:
        with self.lock:
            return [c for c in self.connections if c.path == path]


def _head(status: str, headers: dict[str, str]) -> bytes:
    lines = [f"HTTP/1.1 {status}", *(f"{k}: {v}" for k, v in headers.items()), "", ""]
    return "\r\n".join(lines).encode()


class _ClientGone(Exception):
    pass


class _Handler(socketserver.BaseRequestHandler):
    server: _Server

    def handle(self) -> None:
        sock: socket.socket = self.request
        sock.settimeout(GIVE_UP)
        request = b""
        try:
            while b"\r\n" not in request:
                chunk = sock.recv(4096)
                if not chunk:
                    return
                request += chunk
        except OSError:
            return
        parts = request.split(b"\r\n", 1)[0].split()
        path = parts[1].decode() if len(parts) > 1 else ""
        if path == "/tls-silent":  # never reached: a TLS client sends no request line
            return
        conn = Connection(path, time.monotonic())
        with self.server.log.lock:
            self.server.log.connections.append(conn)
        try:
            self._route(path.split("?", 1)[0], conn)
        except (_ClientGone, OSError):
            pass
        finally:
            conn.closed = time.monotonic()

    def _send(self, conn: Connection, data: bytes) -> None:
        try:
            self.request.sendall(data)
        except OSError as exc:
            raise _ClientGone from exc
        conn.bytes_sent += len(data)

    def _drip(self, conn: Connection, data: bytes) -> None:
        stop = time.monotonic() + GIVE_UP
        for i in range(len(data)):
            if time.monotonic() > stop:
                raise _ClientGone
            self._send(conn, data[i : i + 1])
            time.sleep(DRIP_INTERVAL)

    def _endless(self, conn: Connection, head: bytes) -> None:
        """`head`, then a 300 MB body in 1 MB writes, until the client goes away."""
        self._send(conn, head)
        block = b"z" * (1 << 20)
        for _ in range(300):
            self._send(conn, block)

    def _route(self, path: str, conn: Connection) -> None:
        ok_head = _head("200 OK", {"Content-Type": "image/jpeg", "Content-Length": str(len(JPEG))})
        if path == "/ok.jpg":
            self._send(conn, ok_head + JPEG)
        elif path in ("/photo.jpg", "/photo-truncated-eoi.jpg"):
            body = PHOTO + b"trailing junk" if path == "/photo.jpg" else PHOTO_TRUNCATED_EOI
            head = _head("200 OK", {"Content-Type": "image/jpeg", "Content-Length": str(len(body))})
            self._send(conn, head + body)
        elif path == "/drip-status":
            self._drip(conn, ok_head + JPEG)
        elif path == "/drip-headers":
            self._send(conn, b"HTTP/1.1 200 OK\r\n")
            self._drip(conn, ok_head.split(b"\r\n", 1)[1] + JPEG)
        elif path == "/drip-body":
            body = JPEG + b"\x00" * 6000
            head = _head("200 OK", {"Content-Type": "image/jpeg", "Content-Length": str(len(body))})
            self._send(conn, head)
            self._drip(conn, body)
        elif path == "/redirect-drip-body":
            # Content-Length promises a body; it comes a byte at a time.
            self._send(conn, _head("302 Found", {"Location": "/ok.jpg", "Content-Length": "6000"}))
            self._drip(conn, b"r" * 6000)
        elif path == "/redirect-huge":
            size = str(300 << 20)
            self._endless(conn, _head("302 Found", {"Location": "/ok.jpg", "Content-Length": size}))
        elif path == "/redirect-huge-unsized":
            self._endless(conn, _head("302 Found", {"Location": "/ok.jpg", "Connection": "close"}))
        elif path == "/missing-huge":
            self._endless(conn, _head("404 Not Found", {"Content-Length": str(300 << 20)}))
        elif path == "/drip-chunked":
            # A chunked body of one-byte chunks, each quick, the whole never done.
            self._send(conn, _head("200 OK", {"Transfer-Encoding": "chunked"}))
            self._drip(conn, b"1\r\nx\r\n" * 2000)
        elif path == "/many-headers":
            # http.client refuses more than 100 headers: the row fails at once, not after 10k.
            fields = "".join(f"X-Junk-{i}: {'j' * 60}\r\n" for i in range(10_000))
            self._send(conn, b"HTTP/1.1 200 OK\r\n" + fields.encode() + b"\r\n")
        elif path == "/long-header-line":
            # ... and a header line over 64 kB.
            self._send(conn, b"HTTP/1.1 200 OK\r\nX-Long: " + b"l" * (1 << 20) + b"\r\n\r\n")
        elif path == "/garbage-status":
            self._send(conn, b"SSH-2.0-OpenSSH_9.6\r\n\r\n" + JPEG)
        elif path.startswith("/slow-hop/"):
            # /slow-hop/N: N hops of redirects, each answered after 0.4 s (each hop is quick next
            # to the per-operation timeout; the chain is not).
            left = int(path.rsplit("/", 1)[1])
            time.sleep(0.4)
            target = f"/slow-hop/{left - 1}" if left > 1 else "/ok.jpg"
            self._send(conn, _head("302 Found", {"Location": target, "Content-Length": "0"}))
        else:
            self._send(conn, _head("404 Not Found", {"Content-Length": "0"}))


class _Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True
    log: Log


class _SilentTLSHandler(socketserver.BaseRequestHandler):
    """Accepts a connection, reads the ClientHello and never answers it."""

    server: _SilentServer

    def handle(self) -> None:
        conn = Connection("/tls-silent", time.monotonic())
        with self.server.log.lock:
            self.server.log.connections.append(conn)
        self.request.settimeout(GIVE_UP)
        try:
            while self.request.recv(4096):
                pass
        except OSError:
            pass
        conn.closed = time.monotonic()


class _SilentServer(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True
    log: Log


class HostileServer:
    """`with HostileServer() as server:` serves on 127.0.0.1; `server.base_url` for http,
    `server.tls_url` for the port that never completes a TLS handshake."""

    def __init__(self) -> None:
        self.log = Log()
        self._http = _Server(("127.0.0.1", 0), _Handler)
        self._tls = _SilentServer(("127.0.0.1", 0), _SilentTLSHandler)
        self._http.log = self._tls.log = self.log
        self.base_url = f"http://127.0.0.1:{self._http.server_address[1]}"
        self.tls_url = f"https://127.0.0.1:{self._tls.server_address[1]}/tls-silent"

    def __enter__(self) -> HostileServer:
        for server in (self._http, self._tls):
            threading.Thread(target=server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        for server in (self._http, self._tls):
            server.shutdown()
            server.server_close()
