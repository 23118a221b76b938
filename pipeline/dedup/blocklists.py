"""Image hash blocklists (`dedup.blocklists`): pictures dropped before anything reaches the
shards, as `dedup.blocked_image`, whatever their cluster.

A list is a UTF-8 text file (a path or a URL), one entry per line; empty lines and lines
starting with "#" are skipped. An entry is `sha256:<64 hex digits>` (or the bare 64 digits): the
SHA-256 of the image's bytes as served, which img2dataset records for every download; or
`phash:<16 hex digits>` (or the bare 16 digits): a 64-bit pHash, matching every image within
`dedup.blocklist_distance` bits of it (re-encodes, resizes and small crops of a listed picture).
MD5 entries are refused: img2dataset records one hash of the served bytes, and ours is SHA-256.
The detail of a drop names the list and the kind of match, never the hash it matched.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from pipeline.annotate.phash import to_signed
from pipeline.errors import InputError
from pipeline.ingest.blocklists import list_name, read_list_text

_HEX = re.compile(r"^[0-9a-f]+$")


@dataclass(frozen=True)
class ImageBlocklist:
    """One list's entries: SHA-256 digests (lowercase hex, as annotations/ stores them) and
    pHashes (signed 64-bit, as annotations/ stores them)."""

    name: str
    sha256: frozenset[str]
    phash: frozenset[int]


def parse_image_blocklist(name: str, text: str) -> ImageBlocklist:
    """A list's entries; InputError naming the list and line of an entry of no known kind."""
    sha256, phash = set(), set()
    for number, raw in enumerate(text.splitlines(), 1):
        entry = raw.strip().lower()
        if not entry or entry.startswith("#"):
            continue
        kind, _, value = entry.rpartition(":")
        if kind == "md5" or (not kind and len(value) == 32 and _HEX.match(value)):
            raise InputError(
                f"blocklist {name} line {number}: MD5 entries cannot be matched (img2dataset"
                " records the SHA-256 of the served bytes: use sha256:<hex>)"
            )
        if kind in ("", "sha256") and len(value) == 64 and _HEX.match(value):
            sha256.add(value)
        elif kind in ("", "phash") and len(value) == 16 and _HEX.match(value):
            phash.add(to_signed(int(value, 16)))
        else:
            raise InputError(
                f"blocklist {name} line {number}: expected sha256:<64 hex digits> or"
                " phash:<16 hex digits>"
            )
    return ImageBlocklist(name, frozenset(sha256), frozenset(phash))


def load_image_blocklists(paths: Sequence[str]) -> tuple[ImageBlocklist, ...]:
    """Every list of `dedup.blocklists` (read on the driver: lists are small next to a pool)."""
    return tuple(parse_image_blocklist(list_name(p), read_list_text(p)) for p in paths)
