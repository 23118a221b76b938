"""Per-row normalisation: caption cleaning, URL canonicalisation and policy, uid, tokens.

Plain Python on single values; `hygiene.py` maps these over Arrow batches.
"""

from __future__ import annotations

import hashlib
import html
import re
import unicodedata
from dataclasses import dataclass
from urllib.parse import SplitResult, urlsplit, urlunsplit

import idna

from pipeline.net_policy import blocked_host_reason, parse_ip_literal

# Unicode categories removed from captions: controls, format characters (bidi overrides,
# zero-width spaces), surrogates and private use. Whitespace controls become spaces first.
_DROP_CATEGORIES = frozenset(["Cc", "Cf", "Cs", "Co"])
_WHITESPACE_CONTROLS = str.maketrans({c: " " for c in "\t\n\r\x0b\x0c\x85\u2028\u2029"})
_WORD = re.compile(r"\w+")
_URL_FORBIDDEN = re.compile(r"[\x00-\x20\x7f]")
_DEFAULT_PORTS = {"http": 80, "https": 443}
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
    return words + [f"{a} {b}" for a, b in zip(words, words[1:], strict=False)]


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


def _ascii_host(host: str) -> str | None:
    if host.isascii():
        return host.lower()
    try:
        return idna.encode(host, uts46=True).decode("ascii")
    except (idna.IDNAError, UnicodeError):
        pass
    try:  # IDNA 2003 accepts names (symbols, emoji) that browsers still resolve.
        return host.encode("idna").decode("ascii").lower()
    except UnicodeError:
        return None


def normalize_url(raw: str | None, max_length: int, allow_private: bool) -> UrlVerdict:
    """Canonicalise an http(s) URL (lower-case scheme and host, IDNA host, no default port or
    fragment) and apply the URL policy, returning the first reason code that applies."""
    url = (raw or "").strip()
    if not url:
        return UrlVerdict("", "ingest.missing_url")
    if len(url) > max_length:
        return UrlVerdict(url[:200], "ingest.url_too_long", f"{len(url)} characters")
    if _URL_FORBIDDEN.search(url):
        return UrlVerdict(url, "ingest.invalid_url", "control character or space in URL")
    try:
        parts = urlsplit(url)
        port = parts.port
        host = parts.hostname
    except ValueError as exc:
        return UrlVerdict(url, "ingest.invalid_url", str(exc))
    scheme = parts.scheme.lower()
    if not scheme:
        return UrlVerdict(url, "ingest.invalid_url", "no scheme")
    if scheme not in _ALLOWED_SCHEMES:
        return UrlVerdict(url, "ingest.url_scheme", f"scheme {scheme}")
    if not host:
        return UrlVerdict(url, "ingest.invalid_url", "no host")
    is_ipv6 = parts.netloc.rpartition("@")[2].startswith("[")
    if is_ipv6:
        ip = parse_ip_literal(host)
        if ip is None:
            return UrlVerdict(url, "ingest.invalid_url", f"bad IPv6 literal {host}")
        ascii_host = f"[{ip.compressed}]"
    else:
        ascii_host = _ascii_host(host)
        if ascii_host is None or not ascii_host.strip("."):
            return UrlVerdict(url, "ingest.invalid_url", f"bad host name {host!r}")
    if not allow_private:
        why = blocked_host_reason(ascii_host)
        if why is not None:
            return UrlVerdict(url, "ingest.private_host", why)
    netloc = ascii_host
    if port is not None and port != _DEFAULT_PORTS[scheme]:
        netloc = f"{netloc}:{port}"
    userinfo = parts.netloc.rpartition("@")[0]
    if userinfo:
        netloc = f"{userinfo}@{netloc}"
    path = parts.path or "/"
    return UrlVerdict(urlunsplit(SplitResult(scheme, netloc, path, parts.query, "")))
