"""A threaded HTTP server on loopback that serves a synthetic web, with fault routes.

Paths under `fault/<kind>/` misbehave the way real image hosts do (404, 500, slow, truncated, HTML
instead of an image, empty, decompression bomb, noai opt-out, redirect); anything else is a file.
"""

from __future__ import annotations

import io
import ipaddress
import logging
import mimetypes
import socket
import threading
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from urllib.parse import quote, unquote, urlsplit

from PIL import Image

log = logging.getLogger(__name__)

BOMB_SIDE = 14000
_CONTENT_TYPES = {".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".png": "image/png"}
_HTML_PAGE = (
    b"<!doctype html>\n<html><head><title>Page moved</title></head>"
    b"<body><h1>This image has moved</h1><p>Please visit our homepage.</p></body></html>\n"
)
_DISCONNECTS = (BrokenPipeError, ConnectionResetError, ConnectionAbortedError)

_bomb_lock = threading.Lock()
_bomb_png: bytes | None = None


def bomb_png() -> bytes:
    """A PNG declaring BOMB_SIDE x BOMB_SIDE pixels in ~24 kB (built once, then cached)."""
    global _bomb_png
    with _bomb_lock:
        if _bomb_png is None:
            # Mode "1" of zeros: 24.5 MB of raw rows that deflate ~1000:1, while a decoder that
            # trusts the header would allocate 196 Mpx (588 MB as RGB).
            buf = io.BytesIO()
            Image.new("1", (BOMB_SIDE, BOMB_SIDE), 0).save(buf, format="PNG")
            _bomb_png = buf.getvalue()
        return _bomb_png


def _loopback_family(host: str) -> socket.AddressFamily:
    """The address family of a loopback `host`; ValueError for anything that is not loopback."""
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        raise ValueError(f"host must be a loopback IP address, got {host!r}") from None
    if not address.is_loopback:
        raise ValueError(f"host must be a loopback address (127.0.0.0/8 or ::1), got {host!r}")
    return socket.AF_INET6 if address.version == 6 else socket.AF_INET


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    image_server: ImageServer

    def handle_error(self, request: object, client_address: object) -> None:
        # socketserver prints tracebacks to stderr; a client hanging up is routine here.
        log.debug("request from %s failed", client_address, exc_info=True)


class _Server6(_Server):
    address_family = socket.AF_INET6


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"
    # Idle keep-alive connections must not pin handler threads for ever.
    timeout = 30

    def log_message(self, format: str, *args: object) -> None:
        log.debug("%s %s", self.address_string(), format % args)

    def handle(self) -> None:
        try:
            super().handle()
        except _DISCONNECTS:
            log.debug("client %s disconnected", self.client_address)

    def do_GET(self) -> None:
        self._respond(send_body=True)

    def do_HEAD(self) -> None:
        self._respond(send_body=False)

    def _respond(self, send_body: bool) -> None:
        owner = self.server.image_server
        owner._record(self.path)
        rel = unquote(urlsplit(self.path).path).lstrip("/")
        parts = rel.split("/", 2)
        kind = parts[1] if len(parts) == 3 and parts[0] == "fault" else None
        try:
            self._route(owner, kind, rel, parts, send_body)
        except _DISCONNECTS:
            log.debug("client %s disconnected during %s", self.client_address, self.path)
            self.close_connection = True

    def _route(
        self, owner: ImageServer, kind: str | None, rel: str, parts: list[str], send_body: bool
    ) -> None:
        if kind == "404":
            self._send(HTTPStatus.NOT_FOUND, b"not found\n", "text/plain", send_body)
        elif kind == "500":
            self._send(HTTPStatus.INTERNAL_SERVER_ERROR, b"server error\n", "text/plain", send_body)
        elif kind == "html":
            self._send(HTTPStatus.OK, _HTML_PAGE, "text/html; charset=utf-8", send_body)
        elif kind == "empty":
            self._send(HTTPStatus.OK, b"", "image/jpeg", send_body)
        elif kind == "bomb":
            self._send(HTTPStatus.OK, bomb_png(), "image/png", send_body)
        elif kind == "redirect":
            location = "/" + quote(parts[2])
            self._send(HTTPStatus.FOUND, b"", "text/plain", send_body, {"Location": location})
        else:
            data = owner._read_file(rel)
            if data is None:
                self._send(HTTPStatus.NOT_FOUND, b"not found\n", "text/plain", send_body)
                return
            content_type = _content_type(rel)
            headers: dict[str, str] = {}
            if kind == "slow":
                # Woken early by stop(), so a slow request never holds up shutdown.
                owner._stopping.wait(owner.slow_seconds)
            elif kind == "truncated":
                data = data[: len(data) // 2]
            elif kind == "noai":
                headers["X-Robots-Tag"] = "noai"
            self._send(HTTPStatus.OK, data, content_type, send_body, headers)

    def _send(
        self,
        status: HTTPStatus,
        body: bytes,
        content_type: str,
        send_body: bool,
        headers: dict[str, str] | None = None,
    ) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        if send_body and body:
            self.wfile.write(body)


def _content_type(path: str) -> str:
    suffix = Path(path).suffix.lower()
    return _CONTENT_TYPES.get(suffix) or mimetypes.guess_type(path)[0] or "application/octet-stream"


class ImageServer:
    """Serves `files_dir` on a loopback address; use as a context manager or start()/stop()."""

    def __init__(
        self,
        files_dir: Path,
        host: str = "127.0.0.1",
        port: int = 0,
        slow_seconds: float = 5.0,
    ) -> None:
        if host == "localhost":
            host = "127.0.0.1"
        self._family = _loopback_family(host)
        self.files_dir = Path(files_dir).resolve()
        self.host = host
        self.port = port
        self.slow_seconds = slow_seconds
        self._lock = threading.Lock()
        self._requests: list[str] = []
        self._stopping = threading.Event()
        self._httpd: _Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def base_url(self) -> str:
        """E.g. "http://127.0.0.1:PORT" (no trailing slash); only once started."""
        if self.port == 0:
            raise RuntimeError("ImageServer has no port yet: start() it first")
        host = f"[{self.host}]" if self._family == socket.AF_INET6 else self.host
        return f"http://{host}:{self.port}"

    @property
    def request_count(self) -> int:
        """Requests handled so far (GET and HEAD), across all threads."""
        with self._lock:
            return len(self._requests)

    @property
    def requests(self) -> list[str]:
        """The request paths received so far, in arrival order (a copy)."""
        with self._lock:
            return list(self._requests)

    def _record(self, path: str) -> None:
        with self._lock:
            self._requests.append(path)

    def _read_file(self, rel: str) -> bytes | None:
        """The bytes of `rel` under files_dir; None when missing or outside files_dir."""
        try:
            target = (self.files_dir / rel).resolve()
            if not target.is_relative_to(self.files_dir) or not target.is_file():
                return None
            return target.read_bytes()
        except (OSError, ValueError):  # e.g. a NUL byte in the path, a name too long
            return None

    def start(self) -> ImageServer:
        """Bind and serve in a daemon thread; returns self."""
        if self._httpd is not None:
            raise RuntimeError("ImageServer is already started")
        server_class = _Server6 if self._family == socket.AF_INET6 else _Server
        httpd = server_class((self.host, self.port), _Handler)
        httpd.image_server = self
        self._httpd = httpd
        self.port = httpd.server_address[1]
        self._stopping.clear()
        self._thread = threading.Thread(
            target=httpd.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"image-server-{self.port}",
            daemon=True,
        )
        self._thread.start()
        log.debug("image server on %s serving %s", self.base_url, self.files_dir)
        return self

    def stop(self) -> None:
        """Stop serving and close the socket; safe to call twice."""
        httpd, self._httpd = self._httpd, None
        if httpd is None:
            return
        self._stopping.set()
        httpd.shutdown()
        httpd.server_close()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        log.debug("image server on port %d stopped", self.port)

    def __enter__(self) -> ImageServer:
        # A server already started (e.g. by a caller that chose its port) is entered as it is.
        return self if self._httpd is not None else self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
