"""Per-row normalisation: caption cleaning, URL canonicalisation and policy, uid, tokens.

Plain Python on single values; `hygiene.py` maps these over Arrow batches.
"""

from __future__ import annotations

import functools
import hashlib
import html
import itertools
import re
import unicodedata
from dataclasses import dataclass
from urllib.parse import SplitResult, urlsplit, urlunsplit

import idna

from pipeline.net_policy import host_refusal, parse_ip_literal
from schemas.reasons import check

# Reason codes, checked against schemas/reasons.py when the module loads.
INVALID_URL = check("ingest.invalid_url")
MISSING_URL = check("ingest.missing_url")
PRIVATE_HOST = check("ingest.private_host")
URL_SCHEME = check("ingest.url_scheme")
URL_TOO_LONG = check("ingest.url_too_long")


# Unicode categories removed from captions: controls, format characters (bidi overrides,
# zero-width spaces), surrogates and private use. Whitespace controls become spaces first.
_DROP_CATEGORIES = frozenset(["Cc", "Cf", "Cs", "Co"])
_WHITESPACE_CONTROLS = str.maketrans({c: " " for c in "\t\n\r\x0b\x0c\x85\u2028\u2029"})
_WORD = re.compile(r"\w+")
_URL_FORBIDDEN = re.compile(r"[\x00-\x20\x7f]")
_DEFAULT_PORTS = {"http": 80, "https": 443}
# The shape of nearly every crawled URL: http(s), plain ASCII host, optional port, no userinfo.
_SIMPLE_URL = re.compile(r"^(?i:(https?))://([A-Za-z0-9._-]+)(?::(\d{1,5}))?([/?][^#]*)?(?:#.*)?$")
_ALLOWED_SCHEMES = frozenset(_DEFAULT_PORTS)


def normalize_caption(raw: str | None) -> str:
    """HTML entities decoded, Unicode NFC, control/format characters removed, whitespace collapsed."""
    if not raw:
        return ""
    text = html.unescape(raw) if "&" in raw else raw
    text = unicodedata.normalize("NFC", text.translate(_WHITESPACE_CONTROLS))
    if not text.isprintable():
        text = "".join(c for c in text if unicodedata.category(c) not in _DROP_CATEGORIES)
    return " ".join(text.split())


def tokenize(caption: str) -> list[str]:
    """Lower-case word unigrams (ALIGN counts unigrams; punctuation is not a word)."""
    return _WORD.findall(caption.lower())


def unigrams_and_bigrams(words: list[str]) -> list[str]:
    """The caption's unigrams followed by its bigrams (space-joined), for ALIGN's rare-token rule."""
    return words + [f"{a} {b}" for a, b in itertools.pairwise(words)]


def make_uid(url: str, caption: str) -> str:
    """Stable 128-bit id of a normalised (url, caption) pair, as 32 hex characters."""
    digest = hashlib.blake2b(digest_size=16)
    digest.update(url.encode("utf-8", "surrogatepass"))
    digest.update(b"\x00")
    digest.update(caption.encode("utf-8", "surrogatepass"))
    return digest.hexdigest()


@dataclass(frozen=True)
class UrlVerdict:
    """A normalised URL, or the reason code and detail explaining why it is refused."""

    url: str
    reason: str | None = None
    detail: str | None = None


_LABEL = re.compile(r"^[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?$")


def _valid_ascii_host(host: str) -> bool:
    """RFC 1123 names (underscores tolerated, as browsers do), at most 253 characters."""
    labels = host.removesuffix(".").split(".")
    return len(host) <= 253 and all(_LABEL.match(label) for label in labels)


@functools.lru_cache(maxsize=65_536)
def _host_verdict(host: str, allowed_networks: tuple[str, ...]) -> tuple[str | None, str | None]:
    """(ASCII host or None if invalid, why it is blocked or None); crawls repeat hosts a lot."""
    ascii_host = _ascii_host(host)
    if ascii_host is None or not ascii_host.strip("."):
        return None, None
    return ascii_host, host_refusal(ascii_host, allowed_networks)


def _ascii_host(host: str) -> str | None:
    if host.isascii():
        host = host.lower()
        return host if _valid_ascii_host(host) else None
    try:
        return idna.encode(host, uts46=True).decode("ascii")
    except (idna.IDNAError, UnicodeError):
        pass
    try:  # IDNA 2003 accepts names (symbols, emoji) that browsers still resolve.
        encoded = host.encode("idna").decode("ascii").lower()
    except UnicodeError:
        return None
    return encoded if _valid_ascii_host(encoded) else None


def _normalize_simple_url(
    url: str, match: re.Match, allowed_networks: tuple[str, ...]
) -> UrlVerdict:
    """Fast path of `normalize_url` for the common URL shape (same result, no urlsplit)."""
    scheme, host, port_text, rest = match.groups()
    scheme = scheme.lower()
    ascii_host, why = _host_verdict(host, allowed_networks)
    if ascii_host is None:
        return UrlVerdict(url, INVALID_URL, f"bad host name {host!r}")
    if why is not None:
        return UrlVerdict(url, PRIVATE_HOST, why)
    netloc = ascii_host
    if port_text is not None:
        port = int(port_text)
        if port > 65535:
            return UrlVerdict(url, INVALID_URL, "Port out of range 0-65535")
        if port != _DEFAULT_PORTS[scheme]:
            netloc = f"{netloc}:{port}"
    rest = (rest or "/").removesuffix("?")
    if rest[0] == "?":
        rest = "/" + rest
    return UrlVerdict(f"{scheme}://{netloc}{rest}")


def normalize_url(
    raw: str | None, max_length: int, allowed_networks: tuple[str, ...] = ()
) -> UrlVerdict:
    """Canonicalise an http(s) URL (lower-case scheme and host, IDNA host, no default port or
    fragment) and apply the URL policy, returning the first reason code that applies."""
    url = (raw or "").strip()
    if not url:
        return UrlVerdict("", MISSING_URL)
    if len(url) > max_length:
        return UrlVerdict(url[:200], URL_TOO_LONG, f"{len(url)} characters")
    if _URL_FORBIDDEN.search(url):
        return UrlVerdict(url, INVALID_URL, "control character or space in URL")
    simple = _SIMPLE_URL.match(url)
    if simple is not None:
        return _normalize_simple_url(url, simple, allowed_networks)
    return _normalize_general_url(url, allowed_networks)


def _normalize_general_url(url: str, allowed_networks: tuple[str, ...]) -> UrlVerdict:
    """Any other URL: parsed with urlsplit (userinfo, IPv6 literals, Unicode hosts, odd schemes)."""
    try:
        parts = urlsplit(url)
        port = parts.port
        host = parts.hostname
    except ValueError as exc:
        return UrlVerdict(url, INVALID_URL, str(exc))
    scheme = parts.scheme.lower()
    if not scheme:
        return UrlVerdict(url, INVALID_URL, "no scheme")
    if scheme not in _ALLOWED_SCHEMES:
        return UrlVerdict(url, URL_SCHEME, f"scheme {scheme}")
    if not host:
        return UrlVerdict(url, INVALID_URL, "no host")
    is_ipv6 = parts.netloc.rpartition("@")[2].startswith("[")
    if is_ipv6:
        ip = parse_ip_literal(host)
        if ip is None:
            return UrlVerdict(url, INVALID_URL, f"bad IPv6 literal {host}")
        ascii_host = f"[{ip.compressed}]"
    else:
        ascii_host, why = _host_verdict(host, allowed_networks)
        if ascii_host is None:
            return UrlVerdict(url, INVALID_URL, f"bad host name {host!r}")
        if why is not None:
            return UrlVerdict(url, PRIVATE_HOST, why)
    if is_ipv6:
        why = host_refusal(ascii_host, allowed_networks)
        if why is not None:
            return UrlVerdict(url, PRIVATE_HOST, why)
    netloc = ascii_host
    if port is not None and port != _DEFAULT_PORTS[scheme]:
        netloc = f"{netloc}:{port}"
    userinfo = parts.netloc.rpartition("@")[0]
    if userinfo:
        netloc = f"{userinfo}@{netloc}"
    path = parts.path or "/"
    return UrlVerdict(urlunsplit(SplitResult(scheme, netloc, path, parts.query, "")))
