"""The demo's blocklists name exactly its planted pairs: the URL list's hashes match what ingest
computes for those rows' URLs (and no other row), the image list's entries match those pictures'
served bytes or their pHash."""

from __future__ import annotations

import hashlib

import pytest

from pipeline.annotate.phash import phash_bytes, to_unsigned
from pipeline.dedup.blocklists import parse_image_blocklist
from pipeline.demo.blocklists import write_demo_blocklists
from pipeline.demo.synthetic_web import NOISE_KINDS, NoiseMix, generate_web, load_ground_truth
from pipeline.ingest.blocklists import load_blocklists
from pipeline.ingest.normalize import normalize_url

BASE = "http://127.0.0.1:8123"


@pytest.fixture(scope="module")
def web(tmp_path_factory):
    kinds = {"clean": 0.5, "blocklisted_url": 0.25, "blocklisted_image": 0.25}
    mix = NoiseMix(**{k: 0.0 for k in NOISE_KINDS} | kinds)
    return generate_web(tmp_path_factory.mktemp("web") / "web", n_pairs=40, seed=7, mix=mix)


def test_the_url_list_hashes_exactly_the_blocklisted_urls(web, tmp_path):
    lists = write_demo_blocklists(web, BASE, tmp_path / "lists")
    index = load_blocklists([str(lists.urls)])
    text = lists.urls.read_text()
    assert BASE not in text and "images/" not in text  # hashes only, never a URL
    blocked = set()
    for row in load_ground_truth(web).to_pylist():
        url = normalize_url(f"{BASE}/{row['path']}", 4096, ("127.0.0.1/32",)).url.encode()
        if hashlib.sha256(url).digest() in index.sha256 or hashlib.md5(url).digest() in index.md5:
            blocked.add(row["gt_id"])
            assert row["noise"] == "blocklisted_url"
    assert len(blocked) == 10
    # SHA-256 for even ids, MD5 for odd ones: both kinds of published list.
    even = sum(1 for g in blocked if g % 2 == 0)
    assert (len(index.sha256), len(index.md5)) == (even, 10 - even) and 0 < even < 10


def test_the_image_list_names_the_served_bytes_or_the_phash(web, tmp_path):
    lists = write_demo_blocklists(web, BASE, tmp_path / "lists")
    parsed = parse_image_blocklist("images.txt", lists.images.read_text())
    assert len(parsed.sha256) + len(parsed.phash) == 10 and parsed.sha256 and parsed.phash
    for row in load_ground_truth(web).to_pylist():
        data = (web.files_dir / row["path"]).read_bytes()
        by_bytes = hashlib.sha256(data).hexdigest() in parsed.sha256
        by_hash = phash_bytes(data)[0] in parsed.phash
        assert (by_bytes or by_hash) == (row["noise"] == "blocklisted_image"), row
        if row["noise"] == "blocklisted_image":
            assert by_bytes == (row["gt_id"] % 2 == 0)
    assert all(f"{to_unsigned(h):016x}" in lists.images.read_text() for h in parsed.phash)
