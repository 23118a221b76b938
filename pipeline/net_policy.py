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
from dataclasses import dataclass

from pipeline.errors import ConfigError

# Names that always mean "this machine or this site" (RFC 6761 localhost, RFC 8375 home.arpa,
# mDNS .local, and the .internal zone cloud providers use for metadata hosts).
_LOCAL_SUFFIXES = (".localhost", ".local", ".internal", ".home.arpa", ".localdomain")
_LOCAL_NAMES = frozenset(["localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback"])
# Legacy IPv4 spellings that inet_aton accepts and resolvers honour: 2130706433, 0x7f.1, 0177.0.0.1.
_LEGACY_IPV4 = re.compile(r"^(0x[0-9a-f]+|[0-9]+)(\.(0x[0-9a-f]+|[0-9]+)){0,3}$")

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


@dataclass(frozen=True)
class NetworkConfig:
    """Which addresses the pipeline may fetch from: read by ingest (URL literals) and download
    (resolved addresses and redirects) alike."""

    # Private, loopback or link-local CIDR blocks allowed anyway (e.g. [10.20.0.0/16] for an
    # internal image store, [127.0.0.1/32] for a test server). Empty: only globally routable
    # addresses, and local names (localhost, intranet hosts) are refused.
    allowed_networks: tuple[str, ...] = ()

    def validate(self) -> None:
        for net in self.allowed_networks:
            try:
                ipaddress.ip_network(net, strict=False)
            except ValueError as exc:
                raise ConfigError(
                    f"config network.allowed_networks: {net!r} is not a CIDR block ({exc})"
                ) from exc


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


# Prefixes whose addresses carry an IPv4 address, as 128-bit integers shifted right by 32 (the
# /96 ones) or their own length. Each is judged by that IPv4 address as well as by itself.
_MAPPED_96 = 0xFFFF  # ::ffff:0:0/96, IPv4-mapped (RFC 4291 section 2.5.5.2)
_TRANSLATED_96 = 0xFFFF_0000  # ::ffff:0:0:0/96, SIIT IPv4-translated (RFC 2765 section 2.1)
_COMPATIBLE_96 = 0  # ::/96, IPv4-compatible, deprecated (RFC 4291 section 2.5.5.1)
_NAT64_WKP_96 = 0x0064_FF9B_0000_0000_0000_0000  # 64:ff9b::/96 (RFC 6052 section 2.1)
_NAT64_LOCAL_48 = 0x0064_FF9B_0001  # 64:ff9b:1::/48, local-use NAT64 (RFC 8215)
_SIXTOFOUR_16 = 0x2002  # 2002::/16, 6to4 (RFC 3056)
_TEREDO_32 = 0x2001_0000  # 2001::/32, Teredo (RFC 4380)


def embedded_ipv4(ip: IPAddress) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address carries, or None (always None for an IPv4 address).

    - IPv4-mapped `::ffff:a.b.c.d` (::ffff:0:0/96, RFC 4291 section 2.5.5.2): the IPv4 address
      itself, as a dual-stack socket reaches it.
    - SIIT IPv4-translated `::ffff:0:a.b.c.d` (::ffff:0:0:0/96, RFC 2765 section 2.1): a
      translator maps it to a.b.c.d.
    - IPv4-compatible `::a.b.c.d` (::/96, deprecated by RFC 4291 section 2.5.5.1), except `::`
      and `::1`, which are the unspecified and loopback addresses, not 0.0.0.0 and 0.0.0.1.
    - NAT64 well-known prefix `64:ff9b::a.b.c.d` (64:ff9b::/96, RFC 6052 section 2.1): the
      last 32 bits.
    - NAT64 local-use `64:ff9b:1::/48` (RFC 8215), read with RFC 6052 section 2.2's layout for
      a /48 prefix: the IPv4 bytes are split around the u-octet (bits 64-71, which must be
      zero, else None), bits 48-63 and 72-87. Other prefix lengths inside it are a local choice
      that cannot be told from the address.
    - 6to4 `2002:aabb:ccdd::/48` (2002::/16, RFC 3056 section 2): bits 16-47.
    - Teredo (2001::/32, RFC 4380 section 4): the client's address, stored inverted in the
      last 32 bits (`ipaddress`'s `.teredo` gives (server, client); the server only relays).
    """
    if not isinstance(ip, ipaddress.IPv6Address):
        return None
    value = int(ip)
    top96 = value >> 32
    if top96 in (_MAPPED_96, _TRANSLATED_96, _NAT64_WKP_96) or (
        top96 == _COMPATIBLE_96 and value > 1
    ):
        return ipaddress.IPv4Address(value & 0xFFFF_FFFF)
    if value >> 80 == _NAT64_LOCAL_48:
        if (value >> 56) & 0xFF:
            return None  # a non-zero u-octet: not an RFC 6052 address
        return ipaddress.IPv4Address(((value >> 64) & 0xFFFF) << 16 | (value >> 40) & 0xFFFF)
    if value >> 112 == _SIXTOFOUR_16:
        return ip.sixtofour
    if value >> 96 == _TEREDO_32:
        return ip.teredo[1]  # type: ignore[index]
    return None


def _prefix_blocked(ip: ipaddress.IPv6Address) -> bool | None:
    """For a prefix that carries IPv4 addresses, whether it is refused whatever it carries;
    None for an address outside them.

    Written out rather than read from `is_global`, whose tables for these prefixes differ between
    Python releases (3.12.4 and later call 2002::/16 and 64:ff9b:1::/48 non-global, 3.11 calls
    ::a.b.c.d and 64:ff9b:1::/48 global).
    """
    value = int(ip)
    top96 = value >> 32
    # IPv4-mapped is the IPv4 address itself; 6to4 (RFC 3056) and the NAT64 well-known prefix
    # (RFC 6052 section 3.1; "globally reachable" in IANA's special-purpose registry) route to
    # the IPv4 host through public relays and translators: judged by the IPv4 address alone.
    if top96 in (_MAPPED_96, _NAT64_WKP_96) or value >> 112 == _SIXTOFOUR_16:
        return False
    # Refused whatever they carry: IPv4-compatible (with `::` and `::1`) and SIIT (inside ::/8,
    # reserved by RFC 4291, never routed), local-use NAT64 (not globally reachable, RFC 8215
    # section 3; whatever its u-octet) and Teredo (not globally reachable in IANA's registry,
    # RFC 4380). Only an allowed block reaches them.
    if top96 in (_COMPATIBLE_96, _TRANSLATED_96):
        return True
    if value >> 80 == _NAT64_LOCAL_48 or value >> 96 == _TEREDO_32:
        return True
    return None


def is_blocked_address(ip: IPAddress) -> bool:
    """True for anything but a globally routable unicast address.

    `is_global` is False for loopback, RFC 1918 private, link-local (cloud metadata), CGNAT
    100.64/10, unique-local fc00::/7, documentation and reserved ranges. An IPv6 address that
    carries an IPv4 address (`embedded_ipv4`) is blocked if its prefix is or that IPv4 address is.
    """
    if isinstance(ip, ipaddress.IPv6Address):
        prefix_blocked = _prefix_blocked(ip)
        if prefix_blocked is not None:
            embedded = embedded_ipv4(ip)
            return prefix_blocked or embedded is None or is_blocked_address(embedded)
    return not ip.is_global or ip.is_multicast


def _refusal(ip: IPAddress) -> str:
    embedded = embedded_ipv4(ip)
    carried = f" (it carries IPv4 {embedded})" if embedded is not None else ""
    return f"address {ip} is not globally routable{carried}"


def blocked_host_reason(host: str) -> str | None:
    """Why a (lower-case, ASCII) host must not be fetched without resolving it, or None if fine."""
    bare = host.strip("[]").rstrip(".").lower()
    ip = parse_ip_literal(bare)
    if ip is not None:
        return _refusal(ip) if is_blocked_address(ip) else None
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
    """True for a globally routable address or one inside an allowed CIDR block.

    An IPv6 address that carries an IPv4 address (`embedded_ipv4`) is also allowed when a block
    covers that IPv4 address: `127.0.0.1/32` allows `::ffff:127.0.0.1` and `64:ff9b::7f00:1`.
    """
    if not is_blocked_address(ip):
        return True
    embedded = embedded_ipv4(ip)
    return any(
        ip in _network(net) or (embedded is not None and embedded in _network(net))
        for net in allowed_networks
    )


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
        return None if address_allowed(ip, allowed_networks) else _refusal(ip)
    return blocked_host_reason(host)
