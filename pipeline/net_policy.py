"""Which hosts and addresses the pipeline may fetch from: the SSRF guard shared by ingest and download.

Public web crawls contain URLs pointing at loopback, cloud metadata endpoints (169.254.169.254) and
private networks; fetching them from a cluster leaks internal data. Only globally routable unicast
addresses are allowed, plus the CIDR blocks of `network.allowed_networks`: one setting that
ingest (URL literals) and download (resolved addresses, redirects) both read.
"""

from __future__ import annotations

import functools
import ipaddress
import re
import socket

# Names that always mean "this machine or this site" (RFC 6761 localhost, RFC 8375 home.arpa,
# mDNS .local, and the .internal zone cloud providers use for metadata hosts).
_LOCAL_SUFFIXES = (".localhost", ".local", ".internal", ".home.arpa", ".localdomain")
_LOCAL_NAMES = frozenset(["localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback"])
# Legacy IPv4 spellings that inet_aton accepts and resolvers honour: 2130706433, 0x7f.1, 0177.0.0.1.
_LEGACY_IPV4 = re.compile(r"^(0x[0-9a-f]+|[0-9]+)(\.(0x[0-9a-f]+|[0-9]+)){0,3}$")

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


def parse_ip_literal(host: str) -> IPAddress | None:
    """The address a host string denotes literally (any IPv4 spelling, IPv6), else None."""
    host = host.strip("[]").rstrip(".").lower()
    if not host or not (host[0].isdigit() or ":" in host):
        return None  # a name: skip the costly failed parses
    try:
        return ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        pass
    if _LEGACY_IPV4.match(host):
        try:
            return ipaddress.IPv4Address(socket.inet_aton(host))
        except OSError:
            return None
    return None


def is_blocked_address(ip: IPAddress) -> bool:
    """True for anything but a globally routable unicast address.

    `is_global` is False for loopback, RFC 1918 private, link-local (cloud metadata), CGNAT
    100.64/10, unique-local fc00::/7, documentation and reserved ranges. IPv4-mapped and 6to4
    forms are checked by the IPv4 address they carry.
    """
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return is_blocked_address(ip.ipv4_mapped)
        if ip.sixtofour is not None:
            return is_blocked_address(ip.sixtofour)
    return not ip.is_global or ip.is_multicast


def blocked_host_reason(host: str) -> str | None:
    """Why a (lower-case, ASCII) host must not be fetched without resolving it, or None if fine."""
    bare = host.strip("[]").rstrip(".").lower()
    ip = parse_ip_literal(bare)
    if ip is not None:
        return f"address {ip} is not globally routable" if is_blocked_address(ip) else None
    if bare in _LOCAL_NAMES or bare.endswith(_LOCAL_SUFFIXES):
        return f"host {bare} is a local name"
    if "." not in bare:
        # A single-label name resolves through the search domain: an intranet host.
        return f"host {bare} is a single-label (intranet) name"
    return None


def resolve_blocked_reason(host: str, port: int | None = None) -> str | None:
    """Resolve `host` and say why any of its addresses is blocked, or None if all are public."""
    reason = blocked_host_reason(host)
    if reason is not None:
        return reason
    try:
        infos = socket.getaddrinfo(host, port, proto=socket.IPPROTO_TCP)
    except (OSError, UnicodeError):
        return None  # Resolution failures are a network error for the fetcher, not a block.
    for info in infos:
        ip = ipaddress.ip_address(info[4][0].split("%", 1)[0])
        if is_blocked_address(ip):
            return f"host {host} resolves to {ip}, which is not globally routable"
    return None


def address_allowed(ip: IPAddress, allowed_networks: tuple[str, ...]) -> bool:
    """True for a globally routable address or one inside an allowed CIDR block."""
    if not is_blocked_address(ip):
        return True
    return any(ip in _network(net) for net in allowed_networks)


@functools.lru_cache(maxsize=256)
def _network(net: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    return ipaddress.ip_network(net, strict=False)


def host_refusal(host: str, allowed_networks: tuple[str, ...]) -> str | None:
    """Why a host is refused before resolving it, or None.

    An address literal is checked against the allowed blocks. Local names (localhost,
    single-label intranet names, .local, .internal) are always refused: what they resolve to
    depends on the machine, so an allowed block is reached by its address or a full DNS name,
    which download then checks by the addresses it resolves to.
    """
    ip = parse_ip_literal(host)
    if ip is not None:
        if address_allowed(ip, allowed_networks):
            return None
        return f"address {ip} is not globally routable"
    return blocked_host_reason(host)
