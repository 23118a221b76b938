"""URL and domain blocklists, applied at ingest before any fetch (`ingest.blocklists`).

A list is a UTF-8 text file (a path or a URL), one entry per line; empty lines and lines
starting with "#" are skipped. An entry is one of:

- a URL (it contains "://"): normalised as ingest normalises the input's URLs
  (pipeline/ingest/normalize.py) and matched against the normalised URL;
- 32 hex digits: the MD5, or 64 hex digits: the SHA-256, of the normalised URL's UTF-8 bytes,
  which is how published lists of known-bad URLs are distributed (so the list itself does not
  carry the URLs);
- anything else: a domain (IDNA-encoded and lowercased; a leading "*." or "." is dropped),
  matching that host and every subdomain of it.

A blocked row is dropped as `ingest.blocked_url` or `ingest.blocked_domain` with the list's file
name (and the kind of match) as its detail: never the URL or the domain, which are not echoed
into the ledger's detail, the logs or the report. Each process parses a list once per content
digest and keeps its entries as sets (about 100 bytes an entry).
"""

from __future__ import annotations

import functools
import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

from pipeline.errors import InputError
from pipeline.ingest.normalize import normalize_url
from pipeline.storage import as_path
from schemas.reasons import check

BLOCKED_URL = check("ingest.blocked_url")
BLOCKED_DOMAIN = check("ingest.blocked_domain")

_HEX = re.compile(r"^[0-9a-fA-F]+$")


@dataclass(frozen=True)
class Blocklist:
    """One list's entries by kind."""

    name: str
    urls: frozenset[str]
    md5: frozenset[bytes]
    sha256: frozenset[bytes]
    domains: frozenset[str]

    @property
    def hashed(self) -> bool:
        return bool(self.md5 or self.sha256)


def _domain(entry: str) -> str | None:
    host = entry.strip().lstrip("*").lstrip(".").rstrip(".").lower()
    if not host or any(c in host for c in "/ \t"):
        return None
    try:
        return host.encode("idna").decode("ascii")
    except UnicodeError:
        return None


def parse_blocklist(name: str, text: str) -> Blocklist:
    """The entries of a list's text; InputError naming the list and line of a bad entry."""
    urls, md5, sha256, domains = set(), set(), set(), set()
    for number, raw in enumerate(text.splitlines(), 1):
        entry = raw.strip()
        if not entry or entry.startswith("#"):
            continue
        if "://" in entry:
            verdict = normalize_url(entry, 1 << 16, allowed_networks=("0.0.0.0/0", "::/0"))
            if verdict.reason is not None:
                raise InputError(
                    f"blocklist {name} line {number}: not a usable URL ({verdict.reason})"
                )
            urls.add(verdict.url)
        elif _HEX.match(entry) and len(entry) in (32, 64):
            (md5 if len(entry) == 32 else sha256).add(bytes.fromhex(entry))
        else:
            domain = _domain(entry)
            if domain is None:
                raise InputError(
                    f"blocklist {name} line {number}: expected a URL, an MD5 or SHA-256 of one,"
                    " or a domain"
                )
            domains.add(domain)
    return Blocklist(name, frozenset(urls), frozenset(md5), frozenset(sha256), frozenset(domains))


def read_list_text(path: str) -> str:
    """A list's text from a path or a URL; InputError when it cannot be read."""
    try:
        return as_path(path).read_bytes().decode("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"blocklist {path}: cannot read it ({type(exc).__name__})") from exc


def list_name(path: str) -> str:
    return path.rstrip("/").rsplit("/", 1)[-1] or path


@functools.cache
def _cached(path: str, digest: str) -> Blocklist:
    text = read_list_text(path)
    return parse_blocklist(list_name(path), text)


def load_blocklists(paths: Sequence[str]) -> tuple[Blocklist, ...]:
    """Every list of `ingest.blocklists`, parsed once per process and content."""
    loaded = []
    for path in paths:
        text = read_list_text(path)
        loaded.append(_cached(path, hashlib.sha256(text.encode()).hexdigest()))
    return tuple(loaded)


def _parents(host: str) -> list[str]:
    """host and each of its parent domains: a.b.example.com, b.example.com, example.com, com."""
    parts = host.split(".")
    return [".".join(parts[i:]) for i in range(len(parts))]


def blocked(url: str, lists: Sequence[Blocklist]) -> tuple[str, str] | None:
    """(reason, detail) for a normalised URL that a list blocks, else None. The detail names the
    list and the kind of match, never the URL."""
    if not lists:
        return None
    encoded = url.encode("utf-8")
    md5 = sha256 = None
    host = None
    for blocklist in lists:
        if url in blocklist.urls:
            return BLOCKED_URL, f"list {blocklist.name} (url)"
        if blocklist.md5:
            md5 = md5 or hashlib.md5(encoded, usedforsecurity=False).digest()
            if md5 in blocklist.md5:
                return BLOCKED_URL, f"list {blocklist.name} (md5)"
        if blocklist.sha256:
            sha256 = sha256 or hashlib.sha256(encoded).digest()
            if sha256 in blocklist.sha256:
                return BLOCKED_URL, f"list {blocklist.name} (sha256)"
        if blocklist.domains:
            host = host if host is not None else (urlsplit(url).hostname or "")
            if any(parent in blocklist.domains for parent in _parents(host)):
                return BLOCKED_DOMAIN, f"list {blocklist.name} (domain)"
    return None
