"""Tarpits and oversized redirect and error bodies against the guarded opener and the download
stage: a request ends within its deadline (plus a second) as `download.timeout`, whatever part of
the exchange is dripped, and a redirect's or an error's body is never read."""

from __future__ import annotations

import resource
import time
import urllib.error

import pyarrow.parquet as pq
import pytest

from pipeline.config import load_config
from pipeline.download.fetch_guard import FetchPolicy, build_opener
from pipeline.download.reasons import classify
from pipeline.ledger import read_ledger
from pipeline.run_dir import RunDir
from pipeline.runner import run_stage
from tests.conftest import LOCAL_NETWORK, write_parquet
from tests.download.hostile_server import JPEG, HostileServer

DEADLINE = 1.0
# The per-operation timeout is far longer than the deadline: only the deadline can end a tarpit.
OP_TIMEOUT = 5.0
POLICY = FetchPolicy(allowed_networks=("127.0.0.1/32",), max_bytes=20 << 20, deadline=DEADLINE)


@pytest.fixture(scope="module")
def hostile():
    with HostileServer() as server:
        yield server


def _fetch(url: str) -> tuple[bytes | None, str | None, float]:
    """(body or None, reason code or None, seconds taken)."""
    started = time.monotonic()
    try:
        with build_opener(POLICY).open(url, timeout=OP_TIMEOUT) as response:
            body = response.read()
    except (urllib.error.URLError, OSError) as err:
        return None, classify("failed_to_download", str(err)), time.monotonic() - started
    return body, None, time.monotonic() - started


@pytest.mark.parametrize(
    "path",
    [
        "/drip-status",  # the status line, a byte every 0.1 s
        "/drip-headers",  # the headers
        "/drip-body",  # a 6 kB body (each read returns within the per-operation timeout)
        "/slow-hop/5",  # five redirects of 0.4 s each: every hop is fast, the chain is not
    ],
)
def test_a_tarpit_ends_at_the_deadline(hostile, path):
    body, code, seconds = _fetch(hostile.base_url + path)
    assert (body, code) == (None, "download.timeout")
    assert DEADLINE - 0.05 <= seconds <= DEADLINE + 1.0


def test_a_tls_handshake_that_never_completes_ends_at_the_deadline(hostile):
    body, code, seconds = _fetch(hostile.tls_url)
    assert (body, code) == (None, "download.timeout")
    assert seconds <= DEADLINE + 1.0


@pytest.mark.parametrize(
    "path", ["/redirect-huge", "/redirect-huge-unsized", "/redirect-drip-body"]
)
def test_a_redirect_body_is_never_read(hostile, path):
    """A 302 with a 300 MB (or dripped) body: the redirect is followed at once; the body is left
    on the wire, not read into memory (urllib's redirect handler alone reads it whole)."""
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    body, code, seconds = _fetch(hostile.base_url + path)
    assert (body, code) == (JPEG, None)
    assert seconds < DEADLINE
    # What the kernel buffers took before the client closed, never the 300 MB.
    time.sleep(0.2)
    (conn,) = hostile.log.for_path(path)
    assert conn.bytes_sent < 32 << 20
    grown_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss_before
    assert grown_kib < 64 << 10


@pytest.mark.parametrize(
    ("path", "code"),
    [
        ("/drip-chunked", "download.timeout"),  # one-byte chunks, each quick
        ("/many-headers", "download.bad_response"),  # 10,000 headers: refused after 100
        ("/long-header-line", "download.bad_response"),  # a 1 MB header line
        ("/garbage-status", "download.bad_response"),  # not HTTP at all
    ],
)
def test_malformed_and_chunked_answers(hostile, path, code):
    body, got, seconds = _fetch(hostile.base_url + path)
    assert (body, got) == (None, code)
    assert seconds <= DEADLINE + 1.0


def test_an_error_body_is_never_read(hostile):
    body, code, seconds = _fetch(hostile.base_url + "/missing-huge")
    assert (body, code) == (None, "download.http_error")
    assert seconds < DEADLINE


TARPITS = ["/drip-status", "/drip-headers", "/drip-body", "/redirect-drip-body", "/ok.jpg"]
# Served whole and at once: the image guard judges the bytes.
IMAGES = {"/photo.jpg": None, "/photo-truncated-eoi.jpg": "download.decode_error"}


def test_the_download_stage_ends_every_tarpit_row_at_the_deadline(spark, hostile, tmp_path):
    """Through img2dataset with `download.deadline=2` and `download.timeout=10` (the issue's
    shape): each tarpit row is `download.timeout`, held no longer than the deadline plus a
    second, as the server measured it."""
    paths = [*TARPITS, *IMAGES]
    urls = [f"{hostile.base_url}{path}?row={i}" for i, path in enumerate(paths)]
    src = write_parquet(
        tmp_path / "input.parquet",
        {"url": urls, "caption": [f"a photo of a red bird number {i}" for i in range(len(urls))]},
    )
    run = RunDir(tmp_path / "run")
    run_stage("ingest", run.root, load_config(None, LOCAL_NETWORK), input_path=str(src))
    run_stage("preselect", run.root, load_config(None, LOCAL_NETWORK))
    settings = [*LOCAL_NETWORK, "download.deadline=2", "download.timeout=10"]
    settings += ["download.processes=1", "download.threads=8", "download.min_image_size=0"]
    run_stage("download", run.root, load_config(None, settings))

    candidates = pq.read_table(run.candidates, columns=["url", "uid"]).to_pylist()
    uid_of = {row["url"].removeprefix(hostile.base_url): row["uid"] for row in candidates}
    reasons = {r["uid"]: r["reason"] for r in read_ledger(run.ledger_for("download")).to_pylist()}
    for i, path in enumerate(paths):
        query = f"{path}?row={i}"
        if path in IMAGES:  # a truncated photograph closed with an end marker is not kept
            assert reasons.get(uid_of[query]) == IMAGES[path], path
            continue
        if path in ("/redirect-drip-body", "/ok.jpg"):  # the redirect is followed at once
            assert uid_of[query] not in reasons, path
            continue
        assert reasons[uid_of[query]] == "download.timeout", path
        (conn,) = hostile.log.for_path(query)
        assert conn.held <= 2 + 1.0, (path, conn.held)
