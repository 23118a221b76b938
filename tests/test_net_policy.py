"""The SSRF guard: which literal addresses and names are blocked, and resolution of names."""

from __future__ import annotations

import ipaddress

import pytest

from pipeline.net_policy import (
    blocked_host_reason,
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
