"""The SSRF guard: which literal addresses and names are blocked, and resolution of names."""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from pipeline.download.fetch_guard import FetchPolicy, FetchRefused, guarded_create_connection
from pipeline.net_policy import (
    address_allowed,
    blocked_host_reason,
    embedded_ipv4,
    host_refusal,
    is_blocked_address,
    parse_ip_literal,
    resolve_blocked_reason,
)


@pytest.mark.parametrize(
    ("address", "blocked"),
    [
        ("8.8.8.8", False),
        ("1.1.1.1", False),
        ("2001:4860:4860::8888", False),
        ("127.0.0.1", True),
        ("10.0.0.1", True),
        ("172.31.255.255", True),
        ("192.168.0.1", True),
        ("169.254.169.254", True),
        ("100.64.0.1", True),
        ("0.0.0.0", True),
        ("224.0.0.1", True),
        ("192.0.2.1", True),  # documentation range
        ("::1", True),
        ("fc00::1", True),
        ("fe80::1", True),
        ("::ffff:127.0.0.1", True),
        ("::ffff:8.8.8.8", False),
        ("2002:7f00:1::", True),  # 6to4 wrapping 127.0.0.1
    ],
)
def test_is_blocked_address(address, blocked):
    assert is_blocked_address(ipaddress.ip_address(address)) is blocked


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        ("2130706433", "127.0.0.1"),
        ("0x7f.1", "127.0.0.1"),
        ("0177.0.0.1", "127.0.0.1"),
        ("127.1", "127.0.0.1"),
        ("[::1]", "::1"),
        ("example.com", None),
        ("cafe.de", None),
    ],
)
def test_parse_ip_literal(host, expected):
    ip = parse_ip_literal(host)
    assert (str(ip) if ip else None) == expected


@pytest.mark.parametrize(
    ("host", "blocked"),
    [
        ("example.com", False),
        ("localhost", True),
        ("foo.localhost", True),
        ("nas.local", True),
        ("metadata.google.internal", True),
        ("router.home.arpa", True),
        ("intranet", True),
        ("127.0.0.1", True),
    ],
)
def test_blocked_host_reason(host, blocked):
    assert (blocked_host_reason(host) is not None) is blocked


def test_resolution_checks_every_address(monkeypatch):
    """A public-looking name whose DNS answer includes a private address is blocked."""
    answers = {
        "rebind.example.com": ["93.184.216.34", "127.0.0.1"],
        "public.example.com": ["93.184.216.34", "2606:2800:220:1::1"],
    }

    def fake_getaddrinfo(host, port, *args, **kwargs):
        return [(None, None, None, "", (ip, port or 0)) for ip in answers[host]]

    monkeypatch.setattr("socket.getaddrinfo", fake_getaddrinfo)
    reason = resolve_blocked_reason("rebind.example.com")
    assert reason == "host rebind.example.com resolves to 127.0.0.1, which is not globally routable"
    assert resolve_blocked_reason("public.example.com") is None
    assert resolve_blocked_reason("localhost") == "host localhost is a local name"


# --- IPv6 addresses that carry an IPv4 address: one rule for ingest and download ---


@pytest.mark.parametrize(
    ("address", "ipv4"),
    [
        ("::ffff:127.0.0.1", "127.0.0.1"),  # IPv4-mapped, RFC 4291
        ("::ffff:0:7f00:1", "127.0.0.1"),  # SIIT IPv4-translated, RFC 2765
        ("::127.0.0.1", "127.0.0.1"),  # IPv4-compatible, RFC 4291 (deprecated)
        ("::a9fe:a9fe", "169.254.169.254"),
        ("::2", "0.0.0.2"),
        ("::1", None),  # loopback, not 0.0.0.1
        ("::", None),  # unspecified, not 0.0.0.0
        ("64:ff9b::7f00:1", "127.0.0.1"),  # NAT64 well-known prefix, RFC 6052
        ("64:ff9b::a9fe:a9fe", "169.254.169.254"),
        ("64:ff9b::a00:1", "10.0.0.1"),
        ("64:ff9b::8.8.8.8", "8.8.8.8"),
        # Local-use NAT64 /48 (RFC 8215) in RFC 6052's /48 layout: the IPv4 bytes split around
        # the u-octet. RFC 6052 section 2.4's example, 192.0.2.33 under a /48.
        ("64:ff9b:1:c000:2:2100::", "192.0.2.33"),
        ("64:ff9b:1:a00:0:100::", "10.0.0.1"),
        ("64:ff9b:1:a9fe:a9:fe00::", "169.254.169.254"),
        ("64:ff9b:1:a00:100:100::", None),  # u-octet not zero: not an RFC 6052 address
        ("2002:7f00:1::", "127.0.0.1"),  # 6to4, RFC 3056
        ("2002:a9fe:a9fe:1::1", "169.254.169.254"),
        # Teredo, RFC 4380 section 4's example: server 65.54.227.120, client 192.0.2.45.
        ("2001:0:4136:e378:8000:63bf:3fff:fdd2", "192.0.2.45"),
        ("2001:0:4136:e378:8000:63bf:f5ff:fffe", "10.0.0.1"),
        ("2001:4860:4860::8888", None),
        ("fe80::1", None),
        ("127.0.0.1", None),
    ],
)
def test_embedded_ipv4(address, ipv4):
    found = embedded_ipv4(ipaddress.ip_address(address))
    assert (str(found) if found else None) == ipv4


@pytest.mark.parametrize(
    ("address", "blocked"),
    [
        # Non-global IPv4 inside each form: refused.
        ("::127.0.0.1", True),
        ("::ffff:0:7f00:1", True),
        ("64:ff9b::7f00:1", True),
        ("64:ff9b::a9fe:a9fe", True),
        ("64:ff9b::a00:1", True),
        ("64:ff9b:1:a00:0:100::", True),
        ("2002:a9fe:a9fe::", True),
        ("2001:0:4136:e378:8000:63bf:f5ff:fffe", True),  # Teredo client 10.0.0.1
        ("::ffff:169.254.169.254", True),
        # A global IPv4 behind a routable prefix: the IPv4 host, reached through a relay or a
        # translator, as before.
        ("::ffff:8.8.8.8", False),
        ("64:ff9b::8.8.8.8", False),
        ("2002:808:808::1", False),
        # A global IPv4 behind a prefix that is not routed on the internet: refused as before
        # (Teredo, local-use NAT64) or newly (IPv4-compatible and SIIT, inside reserved ::/8).
        ("::8.8.8.8", True),
        ("::ffff:0:808:808", True),
        ("64:ff9b:1:808:8:800::", True),
        ("64:ff9b:1:808:108:800::", True),  # u-octet not zero: refused all the same
        ("2001:0:4136:e378:8000:63bf:f7f7:f7f7", True),  # Teredo client 8.8.8.8
        # The IPv6 meanings of the IPv4-compatible range's first two addresses stay.
        ("::1", True),
        ("::", True),
    ],
)
def test_embedded_ipv4_is_judged_too(address, blocked):
    ip = ipaddress.ip_address(address)
    assert is_blocked_address(ip) is blocked
    assert address_allowed(ip, ()) is not blocked
    assert (host_refusal(f"[{address}]", ()) is not None) is blocked
    assert (blocked_host_reason(f"[{address}]") is not None) is blocked


@pytest.mark.parametrize(
    ("address", "allowed_networks", "allowed"),
    [
        ("::ffff:127.0.0.1", ("127.0.0.1/32",), True),
        ("64:ff9b::7f00:1", ("127.0.0.1/32",), True),
        ("::127.0.0.1", ("127.0.0.0/8",), True),
        ("64:ff9b::a00:1", ("10.0.0.0/8",), True),
        ("64:ff9b:1:a00:0:100::", ("10.0.0.0/8",), True),
        ("2001:0:4136:e378:8000:63bf:f5ff:fffe", ("10.0.0.1/32",), True),
        ("64:ff9b::a9fe:a9fe", ("127.0.0.1/32",), False),  # the block covers another address
        ("64:ff9b::a9fe:a9fe", ("64:ff9b::/96",), True),  # a block covering the IPv6 address
        ("::1", ("0.0.0.0/8",), False),  # ::1 is loopback, not 0.0.0.1
        ("::", ("0.0.0.0/8",), False),
        ("::1", ("::1/128",), True),
    ],
)
def test_allowed_networks_cover_the_embedded_ipv4(address, allowed_networks, allowed):
    ip = ipaddress.ip_address(address)
    assert address_allowed(ip, allowed_networks) is allowed
    assert (host_refusal(f"[{address}]", allowed_networks) is None) is allowed


def test_refusal_names_the_embedded_ipv4():
    why = host_refusal("[64:ff9b::a9fe:a9fe]", ())
    assert why == (
        "address 64:ff9b::a9fe:a9fe is not globally routable (it carries IPv4 169.254.169.254)"
    )


def test_download_refuses_a_resolved_nat64_address(monkeypatch):
    """Download judges resolved addresses by the same rule (a DNS64 answer for metadata)."""

    def fake_getaddrinfo(host, port, *args, **kwargs):
        return [(socket.AF_INET6, socket.SOCK_STREAM, 6, "", ("64:ff9b::a9fe:a9fe", port, 0, 0))]

    monkeypatch.setattr("socket.getaddrinfo", fake_getaddrinfo)
    with pytest.raises(FetchRefused, match="64:ff9b::a9fe:a9fe"):
        guarded_create_connection(("images.example.com", 80), policy=FetchPolicy())
    assert not FetchPolicy().address_allowed(ipaddress.ip_address("64:ff9b:1:a00:0:100::"))
    assert FetchPolicy(("10.0.0.0/8",)).address_allowed(ipaddress.ip_address("64:ff9b::a00:1"))


# Property-based: every embedding form of any non-global IPv4 address is refused.

# Special-purpose IPv4 blocks that are not globally reachable (RFC 6890 and successors).
_NON_GLOBAL_V4 = [
    ipaddress.IPv4Network(net)
    for net in (
        "0.0.0.0/8",
        "10.0.0.0/8",
        "100.64.0.0/10",
        "127.0.0.0/8",
        "169.254.0.0/16",
        "172.16.0.0/12",
        "192.0.0.0/29",
        "192.0.2.0/24",
        "192.168.0.0/16",
        "198.18.0.0/15",
        "198.51.100.0/24",
        "203.0.113.0/24",
        "224.0.0.0/4",
        "240.0.0.0/4",
    )
]


@st.composite
def non_global_ipv4(draw: st.DrawFn) -> ipaddress.IPv4Address:
    net = draw(st.sampled_from(_NON_GLOBAL_V4))
    offset = draw(st.integers(0, net.num_addresses - 1))
    return net[offset]


global_ipv4 = (
    st.integers(0, 2**32 - 1)
    .map(ipaddress.IPv4Address)
    .filter(lambda ip: not is_blocked_address(ip))
)


def _bits(n: int) -> st.SearchStrategy[int]:
    return st.integers(0, 2**n - 1)


def _mapped(v4: int, _: int) -> int:
    return 0xFFFF << 32 | v4


def _translated(v4: int, _: int) -> int:
    return 0xFFFF_0000 << 32 | v4


def _compatible(v4: int, _: int) -> int:
    return v4


def _nat64_wkp(v4: int, _: int) -> int:
    return 0x64_FF9B << 96 | v4


def _nat64_local_48(v4: int, rest: int) -> int:
    # RFC 6052 section 2.2, /48: bits 48-63 and 72-87 hold the IPv4 address, 64-71 are zero,
    # the 40-bit suffix is free.
    return 0x64_FF9B_0001 << 80 | (v4 >> 16) << 64 | (v4 & 0xFFFF) << 40 | rest & (2**40 - 1)


def _sixtofour(v4: int, rest: int) -> int:
    return 0x2002 << 112 | v4 << 80 | rest & (2**80 - 1)


def _teredo(v4: int, rest: int) -> int:
    # server (32 bits), flags and port (32 bits) from `rest`; the client inverted.
    return 0x2001_0000 << 96 | (rest & (2**64 - 1)) << 32 | (~v4 & 0xFFFF_FFFF)


_FORMS: dict[str, Callable[[int, int], int]] = {
    "mapped": _mapped,
    "translated": _translated,
    "compatible": _compatible,
    "nat64_wkp": _nat64_wkp,
    "nat64_local_48": _nat64_local_48,
    "6to4": _sixtofour,
    "teredo": _teredo,
}
# Prefixes routed on the internet: with a global IPv4 inside, the address is fetched.
_ROUTABLE_FORMS = {"mapped", "nat64_wkp", "6to4"}
_PROPERTY = settings(max_examples=300, deadline=None)


def _embed(form: str, v4: ipaddress.IPv4Address, rest: int) -> ipaddress.IPv6Address:
    return ipaddress.IPv6Address(_FORMS[form](int(v4), rest))


@_PROPERTY
@given(v4=non_global_ipv4(), form=st.sampled_from(sorted(_FORMS)), rest=_bits(80))
def test_any_embedding_of_a_non_global_ipv4_is_refused(v4, form, rest):
    assume(is_blocked_address(v4))
    ip = _embed(form, v4, rest)
    assert is_blocked_address(ip)
    assert not address_allowed(ip, ())
    assert host_refusal(f"[{ip}]", ()) is not None
    assert host_refusal(f"[{ip.exploded}]", ()) is not None


@_PROPERTY
@given(
    v4=non_global_ipv4(),
    form=st.sampled_from(sorted(_FORMS)),
    rest=_bits(80),
    prefix_len=st.integers(8, 32),
)
def test_an_allowed_block_covering_the_embedded_ipv4_allows_it(v4, form, rest, prefix_len):
    # `::` and `::1` are the unspecified and loopback addresses, not 0.0.0.0 and 0.0.0.1.
    assume(not (form == "compatible" and int(v4) <= 1))
    ip = _embed(form, v4, rest)
    assert embedded_ipv4(ip) == v4
    block = str(ipaddress.IPv4Network(f"{v4}/{prefix_len}", strict=False))
    assert address_allowed(ip, (block,))
    assert host_refusal(f"[{ip}]", ("192.0.2.0/24", block)) is None


@_PROPERTY
@given(
    v4=non_global_ipv4(),
    other=non_global_ipv4(),
    form=st.sampled_from(sorted(_FORMS)),
    rest=_bits(80),
)
def test_a_block_covering_another_ipv4_does_not_allow_it(v4, other, form, rest):
    assume(v4 != other and is_blocked_address(v4))
    ip = _embed(form, v4, rest)
    assert not address_allowed(ip, (f"{other}/32",))
    assert host_refusal(f"[{ip}]", (f"{other}/32",)) is not None


@_PROPERTY
@given(v4=global_ipv4, form=st.sampled_from(sorted(_FORMS)), rest=_bits(80))
def test_a_global_ipv4_is_fetched_only_behind_a_routable_prefix(v4, form, rest):
    ip = _embed(form, v4, rest)
    routable = form in _ROUTABLE_FORMS
    assert address_allowed(ip, ()) is routable
    assert (host_refusal(f"[{ip}]", ()) is None) is routable
    # An allowed block covering the IPv4 address reaches it through any form.
    assert address_allowed(ip, (f"{v4}/32",))
