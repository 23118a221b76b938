"""A guarded urllib opener for img2dataset's fetches.

img2dataset calls `urllib.request.urlopen`, which has no SSRF guard (a `file://` URL is read, a
host resolving to 169.254.169.254 is fetched), no body limit and no total deadline. Installing
this opener in each download process adds them:
- only http and https (no file/ftp/data handlers are registered at all);
- every connection, including each redirect hop, connects to an address it has checked itself
  (so DNS rebinding between check and connect cannot slip a private address in);
- redirect targets are checked for scheme and host before they are followed, and counted;
- one wall-clock `deadline` covers the whole request: connect, TLS handshake, status line,
  headers, every body read and every redirect hop. Each socket operation's timeout shrinks to
  what is left of it, so a tarpit that drips a byte a second cannot hold a download thread
  past the deadline (a socket timeout alone restarts with every byte);
- 2xx bodies are read in chunks up to `max_bytes`; redirect and error bodies are never read
  (urllib's redirect handler would read a 302's body whole, with no limit).
Errors carry a `[code]` marker so the stage can map them to reason codes.

Name resolution (`getaddrinfo`) cannot be interrupted from Python: a resolver that hangs holds the
thread for the resolver's own timeout (5 s a try in glibc's default `resolv.conf`). The deadline is
checked again as soon as it returns.
"""

from __future__ import annotations

import functools
import http.client
import io
import ipaddress
import socket
import ssl
import time
import urllib.request
from dataclasses import dataclass, replace
from urllib.parse import urlsplit
from urllib.response import addinfourl

from pipeline.download.markers import (
    BAD_RESPONSE,
    BLOCKED,
    DEADLINE,
    TOO_LARGE,
    TOO_MANY_REDIRECTS,
)
from pipeline.download.robots import RobotsCache, RobotsProcessor
from pipeline.net_policy import address_allowed, host_refusal

_CHUNK = 64 * 1024
_ALLOWED_SCHEMES = ("http", "https")


@dataclass(frozen=True)
class FetchPolicy:
    """Limits for one download process. Picklable: it travels to spawned workers and executors."""

    # network.allowed_networks: private CIDR blocks fetched anyway (a test server, a store).
    allowed_networks: tuple[str, ...] = ()
    max_bytes: int = 20 * 1024 * 1024
    deadline: float = 60.0
    max_redirects: int = 5
    # download.respect_robots_txt, and the folder the run's processes share fetched files in.
    robots_txt: bool = False
    robots_cache: str | None = None

    def address_allowed(self, ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
        return address_allowed(ip, self.allowed_networks)

    def host_refusal(self, host: str) -> str | None:
        """Why a host is refused before resolving it (names and literals), or None."""
        return host_refusal(host, self.allowed_networks)


class FetchRefused(OSError):
    """A fetch stopped by policy; its message starts with a `[code]` marker."""


# How far past the deadline a socket operation may end, so that the timeout need not be set
# again before every operation (well inside the "deadline + 1 s" the stage promises).
_SLACK = 0.1


class _Deadline:
    """What is left of one request's wall-clock deadline, as the timeout of the next socket
    operation: the per-operation `timeout` (download.timeout) or what is left, whichever is less."""

    __slots__ = ("at", "op_timeout", "seconds")

    def __init__(self, at: float, seconds: float, op_timeout: float | None) -> None:
        self.at = at
        self.seconds = seconds
        self.op_timeout = op_timeout

    def expired(self) -> FetchRefused:
        return FetchRefused(f"{DEADLINE} timed out: request not complete within {self.seconds} s")

    def next_timeout(self) -> float:
        left = self.at - time.monotonic()
        if left <= 0:
            raise self.expired()
        return left if self.op_timeout is None else min(self.op_timeout, left)

    def past(self) -> bool:
        return time.monotonic() >= self.at


def _within_deadline(sock: socket.socket, call, *args):  # type: ignore[no-untyped-def]
    """Run one socket operation with its timeout shrunk to what is left of the socket's deadline;
    a timeout that the deadline caused is reported as `[deadline]`."""
    deadline: _Deadline | None = sock.curate_deadline  # type: ignore[attr-defined]
    if deadline is None:
        return call(*args)
    wanted = deadline.next_timeout()
    current = sock.gettimeout()
    # settimeout costs two fcntl calls; a timeout already within _SLACK of what is left still
    # ends the operation by the deadline plus _SLACK, so it is kept.
    if current is None or current > wanted + _SLACK:
        sock.settimeout(wanted)
    try:
        return call(*args)
    except TimeoutError:
        if deadline.past():
            raise deadline.expired() from None
        raise


class _DeadlineBound:
    """Every send and receive of a socket ends by the request's deadline (http.client reads
    through `makefile`, whose reader calls `recv_into`; `SSLSocket.sendall` calls `send`)."""

    curate_deadline: _Deadline | None = None

    def recv(self, *args):  # type: ignore[no-untyped-def]
        return _within_deadline(self, super().recv, *args)  # type: ignore[misc]

    def recv_into(self, *args):  # type: ignore[no-untyped-def]
        return _within_deadline(self, super().recv_into, *args)  # type: ignore[misc]

    def send(self, *args):  # type: ignore[no-untyped-def]
        return _within_deadline(self, super().send, *args)  # type: ignore[misc]

    def sendall(self, *args):  # type: ignore[no-untyped-def]
        return _within_deadline(self, super().sendall, *args)  # type: ignore[misc]


class _DeadlineSocket(_DeadlineBound, socket.socket):
    """A TCP socket bound by the deadline (socket.socket has __slots__; this subclass has a
    __dict__ for the deadline)."""


class _DeadlineSSLSocket(_DeadlineBound, ssl.SSLSocket):
    """A TLS socket bound by the deadline after the handshake (which the connection's `connect`
    bounds: CPython's ssl module treats a socket timeout as a deadline for the whole call)."""


def guarded_create_connection(
    address: tuple[str, int],
    timeout: float | object = socket._GLOBAL_DEFAULT_TIMEOUT,  # type: ignore[attr-defined]
    source_address: tuple[str, int] | None = None,
    *,
    policy: FetchPolicy,
    deadline_at: float | None = None,
) -> socket.socket:
    """Resolve, refuse non-global addresses (unless allowed), connect to a checked address.

    With `deadline_at` (a `time.monotonic()` instant) the connect and every later send and
    receive on the socket end by then, with a `[deadline]` error."""
    host, port = address
    why = policy.host_refusal(host)
    if why is not None:
        raise FetchRefused(f"{BLOCKED} {why}")
    op_timeout = None if timeout is socket._GLOBAL_DEFAULT_TIMEOUT else timeout  # type: ignore[attr-defined]
    deadline = None
    if deadline_at is not None:
        deadline = _Deadline(deadline_at, policy.deadline, op_timeout)  # type: ignore[arg-type]
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    last_error: OSError | None = None
    for family, kind, proto, _, sockaddr in infos:
        ip = ipaddress.ip_address(sockaddr[0].split("%", 1)[0])
        if not policy.address_allowed(ip):
            raise FetchRefused(
                f"{BLOCKED} host {host} resolves to {ip}, which is not globally routable"
            )
        sock = _DeadlineSocket(family, kind, proto)
        try:
            connect_timeout = deadline.next_timeout() if deadline is not None else op_timeout
            if connect_timeout is not None:
                sock.settimeout(connect_timeout)  # type: ignore[arg-type]
            if source_address:
                sock.bind(source_address)
            sock.connect(sockaddr)
            sock.curate_deadline = deadline
            return sock
        except OSError as exc:
            sock.close()
            if deadline is not None and deadline.past():
                raise deadline.expired() from None
            last_error = exc
    raise last_error or OSError(f"no address for {host}")


class _GuardedHTTPConnection(http.client.HTTPConnection):
    def __init__(self, *args, policy: FetchPolicy, deadline_at: float, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._create_connection = functools.partial(
            guarded_create_connection, policy=policy, deadline_at=deadline_at
        )


class _GuardedHTTPSConnection(http.client.HTTPSConnection):
    def __init__(self, *args, policy: FetchPolicy, deadline_at: float, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._create_connection = functools.partial(
            guarded_create_connection, policy=policy, deadline_at=deadline_at
        )

    def connect(self) -> None:
        """http.client's TLS connect (no proxy tunnels: no proxy handler is installed), with the
        handshake bounded by what is left of the deadline and the TLS socket bounded after it."""
        http.client.HTTPConnection.connect(self)
        deadline: _Deadline | None = getattr(self.sock, "curate_deadline", None)
        if deadline is not None:
            self.sock.settimeout(deadline.next_timeout())
        try:
            self.sock = self._context.wrap_socket(self.sock, server_hostname=self.host)
        except TimeoutError:
            if deadline is not None and deadline.past():
                raise deadline.expired() from None
            raise
        self.sock.curate_deadline = deadline  # type: ignore[union-attr]


class _GuardedHTTPHandler(urllib.request.HTTPHandler):
    def __init__(self, policy: FetchPolicy) -> None:
        super().__init__()
        self.policy = policy

    def http_open(self, req: urllib.request.Request) -> http.client.HTTPResponse:
        connection = functools.partial(
            _GuardedHTTPConnection, policy=self.policy, deadline_at=_deadline_at(req, self.policy)
        )
        return _opened(self.do_open, connection, req)


class _GuardedHTTPSHandler(urllib.request.HTTPSHandler):
    def __init__(self, policy: FetchPolicy, context: ssl.SSLContext | None = None) -> None:
        # The default verifying context, with TLS sockets that honour the deadline.
        context = context or ssl.create_default_context()
        context.sslsocket_class = _DeadlineSSLSocket
        super().__init__(context=context)
        self.policy = policy

    def https_open(self, req: urllib.request.Request) -> http.client.HTTPResponse:
        connection = functools.partial(
            _GuardedHTTPSConnection, policy=self.policy, deadline_at=_deadline_at(req, self.policy)
        )
        return _opened(self.do_open, connection, req, context=self._context)


def _opened(do_open, connection, req, **kwargs):  # type: ignore[no-untyped-def]
    """`do_open`, with http.client's protocol errors (not OSErrors, so urllib passes them up
    raw) marked `[bad_response]`; a closed connection stays a network error."""
    try:
        return do_open(connection, req, **kwargs)
    except http.client.HTTPException as exc:
        if isinstance(exc, ConnectionError):  # RemoteDisconnected: the peer closed
            raise
        raise FetchRefused(f"{BAD_RESPONSE} {type(exc).__name__}: {str(exc)[:200]}") from None


def _deadline_at(req: urllib.request.Request, policy: FetchPolicy) -> float:
    """The instant the request must be done by: its first hop's start plus the deadline (a
    redirect's request carries the first hop's start, see `_GuardedRedirectHandler`)."""
    if not hasattr(req, "curate_started"):
        req.curate_started = time.monotonic()  # type: ignore[attr-defined]
    return req.curate_started + policy.deadline  # type: ignore[attr-defined]


class _GuardedRedirectHandler(urllib.request.HTTPRedirectHandler):
    def __init__(self, policy: FetchPolicy) -> None:
        super().__init__()
        self.policy = policy
        self.max_redirections = policy.max_redirects
        self.inf_msg = (
            f"{TOO_MANY_REDIRECTS} more than {policy.max_redirects} redirects or a loop: "
        )

    def redirect_request(self, req, fp, code, msg, headers, newurl):  # type: ignore[no-untyped-def]
        parts = urlsplit(newurl)
        if parts.scheme not in _ALLOWED_SCHEMES:
            raise FetchRefused(
                f"{BLOCKED} redirect to scheme {parts.scheme or 'none'}: {newurl[:200]}"
            )
        why = self.policy.host_refusal(parts.hostname or "")
        if why is not None:
            raise FetchRefused(f"{BLOCKED} redirect to {why}")
        new = super().redirect_request(req, fp, code, msg, headers, newurl)
        if new is not None and hasattr(req, "curate_started"):
            new.curate_started = req.curate_started  # the deadline covers the whole chain
        return new


def _without_body(response: http.client.HTTPResponse) -> addinfourl:
    """The response's status and headers with an empty body; the connection is closed unread."""
    response.close()
    empty = addinfourl(io.BytesIO(b""), response.headers, response.url, response.status)
    empty.msg = response.msg  # HTTPErrorProcessor and the redirect handler read it
    return empty


class _BodyLimitProcessor(urllib.request.BaseHandler):
    """Reads 2xx bodies in chunks, enforcing `max_bytes` and the total deadline; other bodies
    (redirects, errors) are dropped unread before the redirect handler would read them whole."""

    handler_order = 900  # before HTTPErrorProcessor (1000), which hands 3xx to the redirects

    def __init__(self, policy: FetchPolicy) -> None:
        self.policy = policy

    def http_response(self, req, response):  # type: ignore[no-untyped-def]
        if not 200 <= response.status < 300:
            return _without_body(response)
        declared = response.headers.get("Content-Length")
        if declared and declared.isdigit() and int(declared) > self.policy.max_bytes:
            response.close()
            raise FetchRefused(f"{TOO_LARGE} Content-Length {declared} > {self.policy.max_bytes}")
        started = getattr(req, "curate_started", time.monotonic())
        chunks, size = [], 0
        while True:
            if time.monotonic() - started > self.policy.deadline:
                response.close()
                raise FetchRefused(
                    f"{DEADLINE} timed out: body not complete within {self.policy.deadline} s"
                )
            chunk = response.read(_CHUNK)
            if not chunk:
                break
            size += len(chunk)
            if size > self.policy.max_bytes:
                response.close()
                raise FetchRefused(f"{TOO_LARGE} body over {self.policy.max_bytes} bytes")
            chunks.append(chunk)
        response.close()
        body = addinfourl(
            io.BytesIO(b"".join(chunks)), response.headers, response.url, response.status
        )
        body.msg = response.msg  # HTTPErrorProcessor reads it
        return body

    https_response = http_response


def build_opener(policy: FetchPolicy) -> urllib.request.OpenerDirector:
    """An opener with only guarded http(s) handlers: no file, ftp, data or proxy handlers."""
    opener = urllib.request.OpenerDirector()
    for handler in (
        urllib.request.UnknownHandler(),
        _GuardedHTTPHandler(policy),
        _GuardedHTTPSHandler(policy),
        urllib.request.HTTPDefaultErrorHandler(),
        _GuardedRedirectHandler(policy),
        urllib.request.HTTPErrorProcessor(),
        _BodyLimitProcessor(policy),
    ):
        opener.add_handler(handler)
    if policy.robots_txt:
        # robots.txt itself comes through the same guards, minus the robots check.
        plain = build_opener(replace(policy, robots_txt=False))
        cache = RobotsCache(policy.robots_cache, plain, policy.deadline, policy.deadline)
        opener.add_handler(RobotsProcessor(cache))
    return opener


_installed: FetchPolicy | None = None


def install(policy: FetchPolicy) -> None:
    """Make `urllib.request.urlopen` in this process use the guarded opener (idempotent)."""
    global _installed
    if _installed != policy:
        urllib.request.install_opener(build_opener(policy))
        _installed = policy
