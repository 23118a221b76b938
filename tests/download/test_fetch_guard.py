"""The guarded opener against a real HTTP server on 127.0.0.1: schemes, addresses checked at
connect time and at every redirect, body limits and the total deadline."""

from __future__ import annotations

import http.server
import threading
import time
import urllib.error

import pytest

from pipeline.download.fetch_guard import FetchPolicy, build_opener
from pipeline.download.reasons import classify

BODY = b"\xff\xd8" + b"x" * 1000 + b"\xff\xd9"


class _Handler(http.server.BaseHTTPRequestHandler):
    def log_message(self, *args):  # keep test output quiet
        pass

    def do_GET(self):
        port = self.server.server_address[1]
        routes = {
            "/ok.jpg": lambda: self._send(BODY),
            "/big": lambda: self._send(b"x" * 5000),
            "/big-unsized": lambda: self._stream(b"x" * 1000, 10, delay=0),
            "/drip": lambda: self._stream(b"x" * 10, 30, delay=0.1),
            "/to-file": lambda: self._redirect("file:///etc/passwd"),
            "/to-other-loopback": lambda: self._redirect(f"http://127.0.0.2:{port}/ok.jpg"),
            "/to-localhost": lambda: self._redirect(f"http://localhost:{port}/ok.jpg"),
            "/to-ok": lambda: self._redirect("/ok.jpg"),
            "/loop": lambda: self._redirect("/loop"),
        }
        routes.get(self.path, lambda: self.send_error(404))()

    def _send(self, body):
        self.send_response(200)
        self.send_header("Content-Type", "image/jpeg")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _stream(self, chunk, count, delay):
        self.send_response(200)
        self.send_header("Content-Type", "image/jpeg")
        self.end_headers()  # no Content-Length: the body ends when the connection closes
        for _ in range(count):
            self.wfile.write(chunk)
            self.wfile.flush()
            time.sleep(delay)
        self.close_connection = True

    def _redirect(self, location):
        self.send_response(302)
        self.send_header("Location", location)
        self.send_header("Content-Length", "0")
        self.end_headers()


@pytest.fixture(scope="module")
def server():
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


# Every address, private or not: what a user allows with network.allowed_networks=[0.0.0.0/0, ::/0].
EVERYWHERE = ("0.0.0.0/0", "::/0")
LOCAL = FetchPolicy(allowed_networks=("127.0.0.1/32",), max_bytes=2000, deadline=1.0)


def _fetch(url: str, policy: FetchPolicy) -> bytes:
    with build_opener(policy).open(url, timeout=5) as response:
        return response.read()


def _error_code(url: str, policy: FetchPolicy) -> str:
    with pytest.raises((urllib.error.URLError, OSError)) as err:
        _fetch(url, policy)
    return classify("failed_to_download", str(err.value))


def test_allowed_network_is_fetched(server):
    assert _fetch(f"{server}/ok.jpg", LOCAL) == BODY
    assert _fetch(f"{server}/to-ok", LOCAL) == BODY


@pytest.mark.parametrize(
    ("path", "policy", "code"),
    [
        ("/ok.jpg", FetchPolicy(), "download.blocked_address"),  # default: loopback refused
        ("/to-file", LOCAL, "download.blocked_address"),
        ("/to-other-loopback", LOCAL, "download.blocked_address"),  # checked at the redirect
        ("/to-localhost", LOCAL, "download.blocked_address"),
        ("/loop", LOCAL, "download.too_many_redirects"),
        ("/big", LOCAL, "download.too_large"),  # refused from Content-Length
        ("/big-unsized", LOCAL, "download.too_large"),  # refused while reading
        ("/drip", LOCAL, "download.timeout"),  # each read is fast, the whole is not
        ("/missing", LOCAL, "download.http_error"),
    ],
)
def test_refusals_and_their_codes(server, path, policy, code):
    assert _error_code(f"{server}{path}", policy) == code


@pytest.mark.parametrize("url", ["file:///etc/passwd", "ftp://127.0.0.1/x", "data:text/plain,hi"])
def test_non_http_schemes_are_refused(url):
    assert _error_code(url, FetchPolicy(allowed_networks=EVERYWHERE)) == "download.blocked_address"


def test_allowing_every_network_allows_every_address_but_no_local_name(server):
    """The same policy as ingest's (network.allowed_networks): addresses by block, local names
    never, since what `localhost` resolves to depends on the machine."""
    policy = FetchPolicy(allowed_networks=EVERYWHERE)
    assert _fetch(f"{server}/ok.jpg", policy) == BODY
    assert _error_code(f"{server}/to-localhost", policy) == "download.blocked_address"
