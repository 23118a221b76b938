"""A guarded urllib opener for img2dataset's fetches.

img2dataset calls `urllib.request.urlopen`, which has no SSRF guard (a `file://` URL is read, a
host resolving to 169.254.169.254 is fetched), no body limit and no total deadline. Installing
this opener in each download process adds them:
- only http and https (no file/ftp/data handlers are registered at all);
- every connection, including each redirect hop, connects to an address it has checked itself
  (so DNS rebinding between check and connect cannot slip a private address in);
- redirect targets are checked for scheme and host before they are followed, and counted;
- bodies are read in chunks up to `max_bytes` and within a total `deadline`.
Errors carry a `[code]` marker so the stage can map them to reason codes.
"""

from __future__ import annotations

import functools
import http.client
import io
import ipaddress
import socket
import time
import urllib.request
from dataclasses import dataclass
from urllib.parse import urlsplit
from urllib.response import addinfourl

from pipeline.download.markers import BLOCKED, DEADLINE, TOO_LARGE, TOO_MANY_REDIRECTS
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

    def address_allowed(self, ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
        return address_allowed(ip, self.allowed_networks)

    def host_refusal(self, host: str) -> str | None:
        """Why a host is refused before resolving it (names and literals), or None."""
        return host_refusal(host, self.allowed_networks)


class FetchRefused(OSError):
    """A fetch stopped by policy; its message starts with a `[code]` marker."""


def guarded_create_connection(
    address: tuple[str, int],
    timeout: float | object = socket._GLOBAL_DEFAULT_TIMEOUT,  # type: ignore[attr-defined]
    source_address: tuple[str, int] | None = None,
    *,
    policy: FetchPolicy,
) -> socket.socket:
    """Resolve, refuse non-global addresses (unless allowed), connect to a checked address."""
    host, port = address
    why = policy.host_refusal(host)
    if why is not None:
        raise FetchRefused(f"{BLOCKED} {why}")
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    last_error: OSError | None = None
    for family, kind, proto, _, sockaddr in infos:
        ip = ipaddress.ip_address(sockaddr[0].split("%", 1)[0])
        if not policy.address_allowed(ip):
            raise FetchRefused(
                f"{BLOCKED} host {host} resolves to {ip}, which is not globally routable"
            )
        sock = socket.socket(family, kind, proto)
        try:
            if timeout is not socket._GLOBAL_DEFAULT_TIMEOUT:  # type: ignore[attr-defined]
                sock.settimeout(timeout)  # type: ignore[arg-type]
            if source_address:
                sock.bind(source_address)
            sock.connect(sockaddr)
            return sock
        except OSError as exc:
            last_error = exc
            sock.close()
    raise last_error or OSError(f"no address for {host}")


class _GuardedHTTPConnection(http.client.HTTPConnection):
    def __init__(self, *args, policy: FetchPolicy, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._create_connection = functools.partial(guarded_create_connection, policy=policy)


class _GuardedHTTPSConnection(http.client.HTTPSConnection):
    def __init__(self, *args, policy: FetchPolicy, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._create_connection = functools.partial(guarded_create_connection, policy=policy)


class _GuardedHTTPHandler(urllib.request.HTTPHandler):
    def __init__(self, policy: FetchPolicy) -> None:
        super().__init__()
        self.policy = policy

    def http_open(self, req: urllib.request.Request) -> http.client.HTTPResponse:
        _start_clock(req)
        return self.do_open(functools.partial(_GuardedHTTPConnection, policy=self.policy), req)


class _GuardedHTTPSHandler(urllib.request.HTTPSHandler):
    def __init__(self, policy: FetchPolicy) -> None:
        super().__init__()
        self.policy = policy

    def https_open(self, req: urllib.request.Request) -> http.client.HTTPResponse:
        _start_clock(req)
        return self.do_open(
            functools.partial(_GuardedHTTPSConnection, policy=self.policy),
            req,
            context=self._context,
        )


def _start_clock(req: urllib.request.Request) -> None:
    if not hasattr(req, "curate_started"):
        req.curate_started = time.monotonic()  # type: ignore[attr-defined]


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


class _BodyLimitProcessor(urllib.request.BaseHandler):
    """Reads 2xx bodies in chunks, enforcing `max_bytes` and the total deadline."""

    handler_order = 900  # before HTTPErrorProcessor (1000): error bodies are never read here

    def __init__(self, policy: FetchPolicy) -> None:
        self.policy = policy

    def http_response(self, req, response):  # type: ignore[no-untyped-def]
        if not 200 <= response.status < 300:
            return response
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
    return opener


_installed: FetchPolicy | None = None


def install(policy: FetchPolicy) -> None:
    """Make `urllib.request.urlopen` in this process use the guarded opener (idempotent)."""
    global _installed
    if _installed != policy:
        urllib.request.install_opener(build_opener(policy))
        _installed = policy
