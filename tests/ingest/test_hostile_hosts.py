"""Ingest's URL hygiene refuses IPv6 literals that carry a non-global IPv4 address."""

from __future__ import annotations

import pytest

from pipeline.ingest.normalize import normalize_url

PRIVATE_HOST = "ingest.private_host"


@pytest.mark.parametrize(
    "url",
    [
        "http://[::127.0.0.1]/",  # IPv4-compatible (RFC 4291), loopback
        "http://[::7f00:1]/x.jpg",
        "http://[0:0:0:0:0:0:169.254.169.254]/latest/meta-data/",
        "http://[::ffff:0:7f00:1]/",  # SIIT IPv4-translated (RFC 2765)
        "http://[::ffff:169.254.169.254]/",  # IPv4-mapped
        "http://[64:ff9b::7f00:1]/",  # NAT64 well-known prefix (RFC 6052): loopback
        "http://[64:ff9b::a9fe:a9fe]/",  # ... cloud metadata
        "http://[64:ff9b::10.0.0.1]:8080/x.jpg",  # ... RFC 1918
        "http://[64:ff9b:1:a00:0:100::]/",  # local-use NAT64 /48 (RFC 8215): 10.0.0.1
        "http://[64:ff9b:1::808:808]/",  # local-use NAT64: refused whatever it carries
        "http://[2002:a9fe:a9fe::1]/",  # 6to4 (RFC 3056): cloud metadata
        "http://[2001:0:4136:e378:8000:63bf:f5ff:fffe]/",  # Teredo, client 10.0.0.1
        "http://[::8.8.8.8]/",  # IPv4-compatible: ::/8 is never routed
        "http://user@[64:ff9b::7f00:1]/x.jpg",
    ],
)
def test_embedded_non_global_ipv4_is_a_private_host(url):
    verdict = normalize_url(url, max_length=2048)
    assert verdict.reason == PRIVATE_HOST, verdict


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("http://[64:ff9b::808:808]/x.jpg", "http://[64:ff9b::808:808]/x.jpg"),
        ("http://[64:ff9b::8.8.8.8]/x.jpg", "http://[64:ff9b::808:808]/x.jpg"),
        ("http://[2002:808:808::1]/x.jpg", "http://[2002:808:808::1]/x.jpg"),
        ("http://[::ffff:8.8.8.8]/x.jpg", "http://[::ffff:808:808]/x.jpg"),
    ],
)
def test_global_ipv4_behind_a_routable_prefix_is_kept(url, expected):
    verdict = normalize_url(url, max_length=2048)
    assert verdict.reason is None
    assert verdict.url == expected


@pytest.mark.parametrize(
    ("url", "allowed"),
    [
        ("http://[64:ff9b::7f00:1]:8000/x.jpg", ("127.0.0.1/32",)),
        ("http://[::ffff:127.0.0.1]:8000/x.jpg", ("127.0.0.1/32",)),
        ("http://[::127.0.0.1]/x.jpg", ("127.0.0.0/8",)),
        ("http://[64:ff9b:1:a00:0:100::]/x.jpg", ("10.0.0.0/8",)),
    ],
)
def test_allowed_network_covering_the_embedded_ipv4(url, allowed):
    assert normalize_url(url, max_length=2048).reason == PRIVATE_HOST
    assert normalize_url(url, max_length=2048, allowed_networks=allowed).reason is None


def test_loopback_stays_refused_whatever_ipv4_block_is_allowed():
    for url in ("http://[::1]/x.jpg", "http://[::]/x.jpg"):
        assert normalize_url(url, 2048, allowed_networks=("0.0.0.0/0",)).reason == PRIVATE_HOST
