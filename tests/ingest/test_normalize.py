"""URL canonicalisation and policy, caption normalisation, tokens and uids: exact values."""

from __future__ import annotations

import pytest

from pipeline.ingest.normalize import (
    make_uid,
    normalize_caption,
    normalize_url,
    tokenize,
    unigrams_and_bigrams,
)

URL_CASES = [
    # (raw url, expected normalised url, expected reason)
    ("HTTP://Example.COM:80/a.JPG#frag", "http://example.com/a.JPG", None),
    ("https://example.com:443/x?q=1", "https://example.com/x?q=1", None),
    ("https://example.com:8443/x", "https://example.com:8443/x", None),
    ("http://example.com", "http://example.com/", None),
    ("  http://example.com/a.jpg  ", "http://example.com/a.jpg", None),
    ("http://例え.jp/a.jpg", "http://xn--r8jz45g.jp/a.jpg", None),
    ("http://Bücher.de/a.jpg", "http://xn--bcher-kva.de/a.jpg", None),
    ("http://☃.com/a.jpg", "http://xn--n3h.com/a.jpg", None),
    ("http://8.8.8.8/a.jpg", "http://8.8.8.8/a.jpg", None),
    ("http://[2001:4860::8888]/a.jpg", "http://[2001:4860::8888]/a.jpg", None),
    (None, None, "ingest.missing_url"),
    ("", None, "ingest.missing_url"),
    ("   ", None, "ingest.missing_url"),
    ("http://example.com/" + "a" * 3000, None, "ingest.url_too_long"),
    ("http://exa mple.com/x.jpg", None, "ingest.invalid_url"),
    ("http://example.com/\x00.jpg", None, "ingest.invalid_url"),
    ("www.example.com/a.jpg", None, "ingest.invalid_url"),
    ("http:///nohost.jpg", None, "ingest.invalid_url"),
    ("http://example.com:99999/a.jpg", None, "ingest.invalid_url"),
    ("http://a..b/x.jpg", None, "ingest.invalid_url"),
    ("file:///etc/passwd", None, "ingest.url_scheme"),
    ("ftp://example.com/a.jpg", None, "ingest.url_scheme"),
    ("data:image/png;base64,iVBORw0KGgo=", None, "ingest.url_scheme"),
    ("javascript:alert(1)", None, "ingest.url_scheme"),
    ("gopher://example.com/", None, "ingest.url_scheme"),
    ("http://169.254.169.254/latest/meta-data/", None, "ingest.private_host"),
    ("http://[::1]/a.jpg", None, "ingest.private_host"),
    ("http://localhost:8080/x.jpg", None, "ingest.private_host"),
    ("http://LOCALHOST./x.jpg", None, "ingest.private_host"),
    ("http://ｌｏｃａｌｈｏｓｔ/x.jpg", None, "ingest.private_host"),
    ("http://①②⑦.0.0.1/x.jpg", None, "ingest.private_host"),
    ("http://127.0.0.1:8000/x.jpg", None, "ingest.private_host"),
    ("http://2130706433/x.jpg", None, "ingest.private_host"),
    ("http://0x7f.1/x.jpg", None, "ingest.private_host"),
    ("http://10.1.2.3/x.jpg", None, "ingest.private_host"),
    ("http://172.16.0.1/x.jpg", None, "ingest.private_host"),
    ("http://192.168.1.1/x.jpg", None, "ingest.private_host"),
    ("http://100.64.0.1/x.jpg", None, "ingest.private_host"),
    ("http://[fd00::1]/x.jpg", None, "ingest.private_host"),
    ("http://[fe80::1]/x.jpg", None, "ingest.private_host"),
    ("http://[::ffff:127.0.0.1]/x.jpg", None, "ingest.private_host"),
    ("http://0.0.0.0/x.jpg", None, "ingest.private_host"),
    ("http://printer.local/x.jpg", None, "ingest.private_host"),
    ("http://metadata.google.internal/x", None, "ingest.private_host"),
    ("http://intranet/x.jpg", None, "ingest.private_host"),
    ("http://user:pw@127.0.0.1/x.jpg", None, "ingest.private_host"),
]


@pytest.mark.parametrize(("raw", "expected_url", "expected_reason"), URL_CASES)
def test_normalize_url(raw, expected_url, expected_reason):
    verdict = normalize_url(raw, max_length=2048)
    assert verdict.reason == expected_reason
    if expected_url is not None:
        assert verdict.url == expected_url


@pytest.mark.parametrize(
    ("raw", "allowed", "expected_url"),
    [
        ("http://127.0.0.1:8000/x.jpg", ("127.0.0.0/8",), "http://127.0.0.1:8000/x.jpg"),
        ("http://[::1]/a.jpg", ("::1/128",), "http://[::1]/a.jpg"),
        ("http://10.20.1.2/a.jpg", ("10.20.0.0/16",), "http://10.20.1.2/a.jpg"),
    ],
)
def test_private_hosts_allowed_only_when_configured(raw, allowed, expected_url):
    verdict = normalize_url(raw, max_length=2048, allowed_networks=allowed)
    assert verdict.reason is None
    assert verdict.url == expected_url


@pytest.mark.parametrize(
    ("raw", "allowed"),
    [
        ("http://10.30.1.2/a.jpg", ("10.20.0.0/16",)),  # another private block
        ("http://169.254.169.254/latest/meta-data", ("10.20.0.0/16",)),
        ("http://[::1]/a.jpg", ("127.0.0.1/32",)),
        # Local names are refused whatever is allowed: what they resolve to depends on the host.
        ("http://localhost:8080/x.jpg", ("127.0.0.0/8",)),
        ("http://intranet/x.jpg", ("0.0.0.0/0",)),
    ],
)
def test_addresses_outside_the_allowed_blocks_stay_refused(raw, allowed):
    assert normalize_url(raw, max_length=2048, allowed_networks=allowed).reason == (
        "ingest.private_host"
    )


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (None, ""),
        ("", ""),
        ("  a   red\tcar\n on  the road ", "a red car on the road"),
        ("Tom &amp; Jerry &#39;classic&#39; &lt;b&gt;", "Tom & Jerry 'classic' <b>"),
        ("a red\x00 car\u202e on\u200b the road", "a red car on the road"),
        ("\x00\x01\x02", ""),
        ("Cafe\u0301 au lait", "Café au lait"),  # NFC composes e + combining acute
        ("emoji 👍🏽 stays", "emoji 👍🏽 stays"),
    ],
)
def test_normalize_caption(raw, expected):
    assert normalize_caption(raw) == expected


def test_tokens_are_lowercase_words_and_bigrams():
    words = tokenize("A red car, on the ROAD!")
    assert words == ["a", "red", "car", "on", "the", "road"]
    assert unigrams_and_bigrams(words[:3]) == ["a", "red", "car", "a red", "red car"]
    assert tokenize("IMG_2041.JPG") == ["img_2041", "jpg"]


def test_uid_is_stable_128_bit_hex():
    uid = make_uid("http://example.com/a.jpg", "a red car")
    assert uid == make_uid("http://example.com/a.jpg", "a red car")
    assert len(uid) == 32 and int(uid, 16) >= 0
    assert uid != make_uid("http://example.com/a.jpg", "a red car.")
    # The separator keeps (url, caption) boundaries: no collision by shifting characters.
    assert make_uid("http://e.com/ab", "c") != make_uid("http://e.com/a", "bc")


@pytest.mark.parametrize(
    "raw",
    [
        "http://example.com",
        "http://example.com?x=1",
        "http://example.com/a?",
        "http://example.com/a?b=1#frag",
        "HTTPS://EXAMPLE.COM:0443/x",
        "http://example.com:0/x",
        "http://example.com:8080",
        "http://a_b.example.com/x.jpg",
        "http://127.0.0.1/x",
        "http://localhost/x",
        "http://a..b/x",
        "http://example.com:99999/x",
        "https://img.example.co.uk/path/to/IMG.JPG?w=200&h=100",
    ],
)
def test_fast_path_agrees_with_general_parser(raw):
    from pipeline.ingest import normalize

    for allow in ((), ("127.0.0.0/8", "10.0.0.0/8"), ("0.0.0.0/0", "::/0")):
        fast = normalize.normalize_url(raw, 2048, allow)
        general = normalize._normalize_general_url(raw.strip(), allow)
        assert (fast.url, fast.reason) == (general.url, general.reason)
