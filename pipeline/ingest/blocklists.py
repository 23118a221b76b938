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
into the ledger's detail, the logs or the report. The driver pins each list to its content's
digest; each executor process parses it once per digest and keeps its entries as sets (about
170 bytes an entry: `make bench-blocklists`).
"""

from __future__ import annotations

import functools
import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass

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
    if hashlib.sha256(text.encode()).hexdigest() != digest:
        raise InputError(f"blocklist {path}: changed while the run was reading it")
    return parse_blocklist(list_name(path), text)


def pin_blocklists(paths: Sequence[str]) -> tuple[tuple[str, str], ...]:
    """(path, sha256 of its content) of each list, read on the driver: the executors load each
    list once per process and content (`load_pinned`), never once a batch."""
    return tuple((p, hashlib.sha256(read_list_text(p).encode()).hexdigest()) for p in paths)


@functools.cache
def load_pinned(pinned: tuple[tuple[str, str], ...]) -> BlockIndex:
    """The lists `pin_blocklists` named, parsed and merged once per process (each checked
    against its digest: a list edited during the run is an error, not a silent mix)."""
    return merge([_cached(path, digest) for path, digest in pinned])


def load_blocklists(paths: Sequence[str]) -> BlockIndex:
    """Every list of `ingest.blocklists`, parsed and merged (the preflight's check, and tests)."""
    return load_pinned(pin_blocklists(paths))


@dataclass(frozen=True)
class BlockIndex:
    """Every list merged into one lookup per kind (entry -> the first list naming it), so a row
    costs one set lookup per kind whatever the number of lists."""

    urls: dict[str, str]
    md5: dict[bytes, str]
    sha256: dict[bytes, str]
    domains: dict[str, str]

    def __bool__(self) -> bool:
        return bool(self.urls or self.md5 or self.sha256 or self.domains)


def merge(lists: Sequence[Blocklist]) -> BlockIndex:
    index = BlockIndex({}, {}, {}, {})
    for blocklist in lists:
        for target, entries in (
            (index.urls, blocklist.urls),
            (index.md5, blocklist.md5),
            (index.sha256, blocklist.sha256),
            (index.domains, blocklist.domains),
        ):
            for entry in entries:
                target.setdefault(entry, blocklist.name)  # type: ignore[attr-defined]
    return index


def _host(url: str) -> str:
    """The host of a normalised URL (scheme://[userinfo@]host[:port]/...), without urlsplit's
    cost: normalize_url has validated and lower-cased it already."""
    authority = url.split("://", 1)[-1].split("/", 1)[0].split("?", 1)[0].rsplit("@", 1)[-1]
    if authority.startswith("["):
        return authority[1 : authority.find("]")]
    return authority.rsplit(":", 1)[0] if ":" in authority else authority


def blocked(url: str, index: BlockIndex) -> tuple[str, str] | None:
    """(reason, detail) for a normalised URL that a list blocks, else None: the URL itself, its
    MD5, its SHA-256, then its host and each domain above it. The detail names the list and the
    kind of match, never the URL."""
    if not index:
        return None
    name = index.urls.get(url)
    if name is not None:
        return BLOCKED_URL, f"list {name} (url)"
    if index.md5 or index.sha256:
        encoded = url.encode("utf-8")
        if index.md5:
            name = index.md5.get(hashlib.md5(encoded, usedforsecurity=False).digest())
            if name is not None:
                return BLOCKED_URL, f"list {name} (md5)"
        if index.sha256:
            name = index.sha256.get(hashlib.sha256(encoded).digest())
            if name is not None:
                return BLOCKED_URL, f"list {name} (sha256)"
    if index.domains:
        host = _host(url)
        while host:
            name = index.domains.get(host)
            if name is not None:
                return BLOCKED_DOMAIN, f"list {name} (domain)"
            host = host.partition(".")[2]
    return None
