"""The preselect stage: DataComp's "CLIP L/14 top 30 %" and LAION's own cuts on the scores the
pool ships, before the download: exact keep-lists against a numpy oracle, select's reason codes
in preselect's ledger, and a download that never requests a dropped URL."""

from __future__ import annotations

from urllib.parse import urlparse

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipeline.config import load_config
from pipeline.demo.synthetic_web import write_input_parquet
from pipeline.ledger import read_ledger
from pipeline.run_dir import RunDir
from pipeline.runner import run_stage, run_stages
from tests.conftest import LOCAL_DOWNLOAD, LOCAL_NETWORK

N = 400
WORDS = ("photo", "picture", "drawing", "poster", "painting", "print", "sketch", "scan")


def _captions(rng: np.random.Generator) -> list[str]:
    # Distinct English captions of >= 3 words, so that ingest keeps every row.
    return [f"a {WORDS[i % len(WORDS)]} of item number {i} on a wooden table" for i in range(N)]


def _datacomp_table(rng: np.random.Generator) -> pa.Table:
    return pa.table(
        {
            "uid": [f"{i:032x}" for i in range(1, N + 1)],
            "url": [f"http://img{i % 7}.example.com/{i}.jpg" for i in range(N)],
            "text": _captions(rng),
            "original_width": rng.integers(200, 1200, N),
            "original_height": rng.integers(200, 1200, N),
            "clip_b32_similarity_score": rng.uniform(0.1, 0.4, N).astype(np.float32),
            "clip_l14_similarity_score": rng.uniform(0.1, 0.4, N).astype(np.float32),
        }
    )


def _laion_table(rng: np.random.Generator) -> pa.Table:
    similarity = rng.uniform(0.2, 0.4, N)
    similarity[::37] = np.nan  # LAION rows without a score
    return pa.table(
        {
            "URL": [f"https://cdn{i % 5}.example.org/p/{i}.png" for i in range(N)],
            "TEXT": _captions(rng),
            "WIDTH": rng.integers(200, 1200, N),
            "HEIGHT": rng.integers(200, 1200, N),
            "similarity": pa.array(similarity, pa.float64(), from_pandas=True),
            "punsafe": rng.uniform(0, 1, N).astype(np.float32),
            "pwatermark": rng.uniform(0, 1, N).astype(np.float32),
            "LICENSE": ["?"] * N,
        }
    )


def _candidates(run: RunDir) -> pa.Table:
    return pq.read_table(run.candidates)


@pytest.mark.parametrize(
    ("rule", "kept_rows"),
    # DataComp's rule (the default under ingest.preset datacomp) keeps int(N * f) + 1 rows;
    # the interpolated percentile keeps int(N * f) (the scores have no ties).
    [("auto", 121), ("interpolated", 120)],
)
def test_datacomp_clip_l14_top_30_percent(spark, tmp_path, rule, kept_rows):
    source = tmp_path / "commonpool.parquet"
    pq.write_table(_datacomp_table(np.random.default_rng(0)), source)
    config = load_config(
        None,
        [
            "ingest.preset=datacomp",
            "select.pool.clip_column=clip_l14_similarity_score",
            "select.pool.clip_top_fraction=0.3",
            f"select.top_fraction_rule={rule}",
        ],
    )
    run = RunDir(tmp_path / "run")
    run_stages(run.root, config, str(source), ["ingest", "preselect"])
    candidates = _candidates(run)
    assert candidates.num_rows == N
    scores = candidates.column("clip_l14_similarity_score").to_numpy()
    assert scores.dtype == np.float32
    ranked = np.sort(scores)[::-1]
    cut = ranked[kept_rows - 1]
    expected = {
        u for u, s in zip(candidates.column("uid").to_pylist(), scores, strict=True) if s >= cut
    }
    kept = pq.read_table(run.root / "preselected")
    assert set(kept.column("uid").to_pylist()) == expected and len(expected) == kept_rows
    # The candidates' columns pass through unchanged, in uid order (the download's shard order).
    assert kept.column_names == candidates.column_names
    assert kept.column("uid").to_pylist() == sorted(expected)
    entry = run.stats()["stages"]["preselect"]
    assert entry["dropped_by_reason"] == {"select.clip_score": N - kept_rows}
    assert entry["clip"]["column"] == "clip_l14_similarity_score"
    assert entry["clip"]["top_fraction"] == 0.3
    if rule == "auto":
        # DataComp's threshold: the float32 score at descending rank int(400 * 0.3) = 120.
        assert entry["clip"]["rule"] == "reference" and entry["clip"]["denominator"] == "all"
        assert entry["clip"]["rank"] == 120 and entry["clip"]["threshold"] == float(ranked[120])
    else:
        # Spark's percentile interpolates: the threshold falls between the 120th and 121st score.
        assert ranked[120] < entry["clip"]["threshold"] <= cut
    ledger = read_ledger(run.ledger_for("preselect")).to_pylist()
    assert {r["stage"] for r in ledger} == {"preselect"}
    assert all(r["detail"].startswith("clip_l14_similarity_score ") for r in ledger)


def test_laion_similarity_punsafe_pwatermark(spark, tmp_path):
    source = tmp_path / "laion.parquet"
    pq.write_table(_laion_table(np.random.default_rng(1)), source)
    config = load_config(
        None,
        [
            "ingest.preset=laion",
            "select.pool.clip_column=similarity",
            "select.pool.clip_threshold=0.28",
            "select.pool.max={punsafe: 0.5, pwatermark: 0.8}",
        ],
    )
    run = RunDir(tmp_path / "run")
    run_stages(run.root, config, str(source), ["ingest", "preselect"])
    expected_reason = {}
    for row in _candidates(run).to_pylist():
        sim = row["similarity"]
        if sim is None or np.isnan(sim):
            reason = "select.no_pool_score"
        elif sim < 0.28:
            reason = "select.clip_score"
        elif row["punsafe"] > 0.5 or row["pwatermark"] > 0.8:
            reason = "select.pool_score_above"
        else:
            reason = None
        expected_reason[row["uid"]] = reason
    ledger = {r["uid"]: r["reason"] for r in read_ledger(run.ledger_for("preselect")).to_pylist()}
    kept = set(pq.read_table(run.root / "preselected").column("uid").to_pylist())
    assert kept == {u for u, r in expected_reason.items() if r is None}
    assert ledger == {u: r for u, r in expected_reason.items() if r is not None}
    assert {"select.no_pool_score", "select.clip_score", "select.pool_score_above"} <= set(
        ledger.values()
    )


def test_download_fetches_only_what_preselect_kept(spark, web_and_server, tmp_path):
    web, server = web_and_server
    table = pq.read_table(write_input_parquet(web, server.base_url, tmp_path / "input.parquet"))
    scores = np.random.default_rng(2).uniform(0.1, 0.4, table.num_rows).astype(np.float32)
    source = tmp_path / "scored.parquet"
    pq.write_table(table.append_column("clip_l14_similarity_score", pa.array(scores)), source)
    config = load_config(
        None,
        [
            *LOCAL_DOWNLOAD,
            "select.pool.clip_column=clip_l14_similarity_score",
            "select.pool.clip_top_fraction=0.3",
        ],
    )
    run = RunDir(tmp_path / "run")
    run_stages(run.root, config, str(source), ["ingest", "preselect"])
    dropped = {
        urlparse(r["url"]).path.lstrip("/")
        for r in _candidates(run).to_pylist()
        if r["uid"] in set(read_ledger(run.ledger_for("preselect")).column("uid").to_pylist())
    }
    before = len(server.requests)
    entry = run_stage("download", run.root, config)
    requested = {path.split("?")[0].lstrip("/") for path in server.requests[before:]}
    stats = run.stats()["stages"]
    assert entry["rows_in"] == stats["preselect"]["rows_kept"] < stats["ingest"]["rows_kept"]
    assert dropped and not requested & dropped
    # Every pair is accounted for across the stages.
    assert stats["ingest"]["rows_in"] == entry["rows_kept"] + read_ledger(run.ledger).num_rows
    assert LOCAL_NETWORK[0] in LOCAL_DOWNLOAD
