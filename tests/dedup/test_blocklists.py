"""Image hash blocklists at dedup: SHA-256 of the served bytes matched exactly, pHash entries
within dedup.blocklist_distance bits, every listed sample dropped as dedup.blocked_image (exact
counts against a brute-force search of the annotations), the list's name the only detail."""

from __future__ import annotations

import hashlib
from urllib.parse import unquote, urlsplit

import pyarrow.parquet as pq
import pytest

from pipeline.config import load_config
from pipeline.dedup.blocklists import parse_image_blocklist
from pipeline.errors import InputError
from pipeline.fingerprint import file_digest
from pipeline.ledger import read_ledger
from pipeline.runner import run_stage
from tests.conftest import NO_CLIP, copy_run

SHA = "ab" * 32


@pytest.mark.parametrize(
    ("text", "sha256", "phash"),
    [
        (f"sha256:{SHA}\n", {SHA}, set()),
        (f"# comment\n\n{SHA.upper()}\n", {SHA}, set()),
        ("phash:ffffffffffffffff\n", set(), {-1}),
        ("00000000000000ff\n", set(), {255}),
    ],
)
def test_entries_by_kind(text, sha256, phash):
    parsed = parse_image_blocklist("l.txt", text)
    assert (set(parsed.sha256), set(parsed.phash)) == (sha256, phash)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("md5:" + "a" * 32, "line 1: MD5 entries cannot be matched"),
        ("a" * 32, "line 1: MD5 entries cannot be matched"),
        (f"sha256:{SHA}\nphash:xyz", "line 2: expected sha256:<64 hex digits> or phash:"),
    ],
)
def test_bad_entries_name_their_line(text, message):
    with pytest.raises(InputError, match=message):
        parse_image_blocklist("bad.txt", text)


def _bits(a: int, b: int) -> int:
    return bin((a ^ b) & (2**64 - 1)).count("1")


def _served_sha256(run, web) -> dict[str, str]:
    """uid -> SHA-256 of the file the server sent for it (read from the web, not the run)."""
    out = {}
    for part in sorted(run.downloads.glob("*.parquet")):
        for r in pq.read_table(part, columns=["uid", "url", "status"]).to_pylist():
            if r["status"] == "success":
                # A redirect route sends the file it redirects to.
                path = unquote(urlsplit(r["url"]).path).lstrip("/").removeprefix("fault/redirect/")
                out[r["uid"]] = hashlib.sha256((web.files_dir / path).read_bytes()).hexdigest()
    return out


def test_listed_images_are_dropped_with_the_lists_name(annotated, web_and_server, tmp_path):
    run = copy_run(annotated[0].root, tmp_path / "run")
    served = _served_sha256(run, web_and_server[0])
    rows = pq.read_table(run.annotations, columns=["uid", "sha256", "phash"]).to_pylist()
    rows = [r | {"served": served[r["uid"]]} for r in rows if r["phash"] is not None]
    by_sha, by_hash = rows[0], rows[len(rows) // 2]
    # The download resizes and re-encodes: the stored bytes are not the ones a list names.
    assert by_sha["sha256"] != by_sha["served"]
    sha_list, hash_list = tmp_path / "bytes.txt", tmp_path / "phashes.txt"
    sha_list.write_text(f"sha256:{by_sha['served']}\n")
    hash_list.write_text(f"phash:{by_hash['phash'] & (2**64 - 1):016x}\n")
    want_sha = {r["uid"] for r in rows if r["served"] == by_sha["served"]}
    want_hash = {r["uid"] for r in rows if _bits(r["phash"], by_hash["phash"]) <= 4} - want_sha
    config = load_config(
        None,
        [*NO_CLIP, f"dedup.blocklists=[{sha_list}, {hash_list}]", "dedup.blocklist_distance=4"],
    )
    entry = run_stage("dedup", run.root, config)
    assert entry["blocklisted"] == len(want_sha | want_hash)
    assert entry["dropped_by_reason"]["dedup.blocked_image"] == len(want_sha | want_hash)
    ledger = [
        r
        for r in read_ledger(run.ledger_for("dedup")).to_pylist()
        if r["reason"] == "dedup.blocked_image"
    ]
    assert {r["uid"]: r["detail"] for r in ledger} == {
        **{u: "list bytes.txt (sha256)" for u in want_sha},
        **{u: "list phashes.txt (phash)" for u in want_hash},
    }
    kept = {r["uid"] for r in pq.read_table(run.dedup, columns=["uid"]).to_pylist()}
    assert not kept & (want_sha | want_hash)
    digests = [file_digest(str(sha_list)), file_digest(str(hash_list))]
    assert entry["settings"]["dedup.blocklists.sha256"] == digests


def test_annotate_records_the_served_bytes_sha256(annotated, web_and_server):
    run = annotated[0]
    served = _served_sha256(run, web_and_server[0])
    rows = pq.read_table(run.annotations, columns=["uid", "served_sha256", "phash"]).to_pylist()
    rows = [r for r in rows if r["phash"] is not None]
    assert rows and {r["uid"]: r["served_sha256"] for r in rows} == {
        r["uid"]: served[r["uid"]] for r in rows
    }


def test_a_sha256_only_list_builds_no_phash_index(annotated, tmp_path):
    run = copy_run(annotated[0].root, tmp_path / "run")
    rows = pq.read_table(run.annotations, columns=["uid", "served_sha256"]).to_pylist()
    listed = tmp_path / "bytes.txt"
    listed.write_text(f"{rows[0]['served_sha256']}\n")
    want = sum(1 for r in rows if r["served_sha256"] == rows[0]["served_sha256"])
    entry = run_stage(
        "dedup", run.root, load_config(None, [*NO_CLIP, f"dedup.blocklists=[{listed}]"])
    )
    assert entry["blocklisted"] == entry["dropped_by_reason"]["dedup.blocked_image"] == want
    assert "blocklist_index" not in entry
