"""The demo's blocklists, written from its web's ground truth the way re-LAION-5B's were applied:
a URL list of the `blocklisted_url` pairs, as hashes of their normalised URLs (half SHA-256, half
MD5: published lists carry hashes, never the URLs), and an image hash list of the
`blocklisted_image` pictures (half by the SHA-256 of the bytes served, half by pHash, which also
matches the re-encode img2dataset stores). The URL list names the server's port, so it is
rewritten for every server the demo starts."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import pyarrow.compute as pc

from pipeline.annotate.phash import phash_bytes, to_unsigned
from pipeline.demo.synthetic_web import SyntheticWeb, load_ground_truth
from pipeline.files import write_atomically
from pipeline.ingest.normalize import normalize_url

URL_LIST = "urls.txt"
IMAGE_LIST = "images.txt"


@dataclass(frozen=True)
class DemoBlocklists:
    """Where the demo's two lists lie (the settings ingest.blocklists and dedup.blocklists)."""

    urls: Path
    images: Path


def blocklist_paths(folder: Path) -> DemoBlocklists:
    return DemoBlocklists(urls=folder / URL_LIST, images=folder / IMAGE_LIST)


def _rows_of(web: SyntheticWeb, noise: str) -> list[dict]:
    truth = load_ground_truth(web).select(["gt_id", "path", "noise"])
    return truth.filter(pc.equal(truth.column("noise"), noise)).to_pylist()


def url_entries(web: SyntheticWeb, base_url: str) -> list[str]:
    """One hash per `blocklisted_url` pair, of its URL normalised as ingest normalises it."""
    prefix = base_url.rstrip("/") + "/"
    out = []
    for row in _rows_of(web, "blocklisted_url"):
        verdict = normalize_url(
            prefix + quote(row["path"]), 1 << 16, allowed_networks=("0.0.0.0/0", "::/0")
        )
        assert verdict.reason is None, verdict.reason
        digest = hashlib.sha256 if row["gt_id"] % 2 == 0 else hashlib.md5
        out.append(digest(verdict.url.encode()).hexdigest())
    return out


def image_entries(web: SyntheticWeb) -> list[str]:
    """One entry per `blocklisted_image` picture: `sha256:` of its bytes for even ids, `phash:`
    (the annotate stage's pHash, unsigned hex) for odd ones."""
    out = []
    for row in _rows_of(web, "blocklisted_image"):
        data = (web.files_dir / row["path"]).read_bytes()
        if row["gt_id"] % 2 == 0:
            out.append(f"sha256:{hashlib.sha256(data).hexdigest()}")
        else:
            out.append(f"phash:{to_unsigned(phash_bytes(data)[0]):016x}")
    return out


def write_demo_blocklists(web: SyntheticWeb, base_url: str, folder: Path) -> DemoBlocklists:
    """Write both lists into `folder` (each by a rename: a reader sees a whole list)."""
    paths = blocklist_paths(folder)
    folder.mkdir(parents=True, exist_ok=True)
    for path, header, entries in (
        (paths.urls, "SHA-256 or MD5 of normalised URLs", url_entries(web, base_url)),
        (paths.images, "SHA-256 of served bytes, or pHash", image_entries(web)),
    ):
        text = f"# The demo web's blocklist: {header}.\n" + "".join(f"{e}\n" for e in entries)
        write_atomically(path, lambda target, text=text: Path(target).write_text(text))
    return paths
