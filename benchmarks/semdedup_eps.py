"""Semantic dedup against a labelled web, over a range of `dedup.semantic.eps`.

For a run over a labelled web (the demo's layout: `RUN/web/ground_truth.parquet`) whose annotate
is complete with CLIP image embeddings, runs the dedup plan (pHash pass, then semantic pass) once
per eps, in memory (the run directory is not written), and scores each against the planted
copies with the report's own scoring (`score_dedup_against_truth`): recall per planted kind,
semantic drops, and drops that merged distinct pictures. Also the pHash pass alone (semantic
off) as the baseline row, and the default dedup.semantic settings (the separation check on).

    python -m benchmarks.semdedup_eps --run-dir runs/demo [--eps 0.0025,0.005,0.01,0.02,0.05]
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import sys
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
from pyspark.sql import functions as F

from pipeline.config import load_config
from pipeline.dedup.plan import decide
from pipeline.dedup.settings import SemanticDedupConfig
from pipeline.logs import setup_logging
from pipeline.report.ground_truth import score_dedup_against_truth
from pipeline.report.input_pairs import input_pairs
from pipeline.report.run_tables import GROUND_TRUTH
from pipeline.run_dir import RunDir
from pipeline.spark.session import get_spark
from schemas.ground_truth import DUPLICATE_KINDS, NOISE_KINDS

log = logging.getLogger("semdedup_eps")
# The planted copy kinds, in the ground truth's order.
KINDS = tuple(k for k in NOISE_KINDS if k in DUPLICATE_KINDS)
SHORT = {k: k.replace("near_duplicate_", "near_").replace("_duplicate", "") for k in KINDS}


def _row(label: str, result, seconds: float) -> list[str]:
    recall = {k.kind: k for k in result.kinds}
    drops = {d.reason: d for d in result.drops}
    semantic = drops.get("dedup.semantic_duplicate")
    cells = [label]
    for kind in KINDS:
        k = recall.get(kind)
        cells.append(f"{k.recall:.2f}" if k and k.recall is not None else "-")
    everything = drops.get("all")
    cells += [
        str(semantic.drops if semantic else 0),
        str(semantic.distinct_pictures if semantic else 0),
        str(everything.distinct_pictures if everything else 0),
        f"{seconds:.0f}",
    ]
    return cells


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run-dir", required=True)
    parser.add_argument("--eps", default="0.0025,0.005,0.01,0.02,0.05")
    parser.add_argument("--set", action="append", default=[], help="further config overrides")
    args = parser.parse_args(argv)
    setup_logging(False)
    run = RunDir(Path(args.run_dir).resolve())
    base = load_config(run.config_file if run.config_file.is_file() else None, args.set)
    spark = get_spark(base.spark)
    annotations = spark.read.parquet(str(run.annotations))
    if "image_embedding" not in annotations.columns:
        log.error("%s: annotations have no image embeddings (annotate ran without CLIP)", run.root)
        return 2
    annotations = annotations.localCheckpoint()
    truth = pq.read_table(run.root / GROUND_TRUTH, columns=["gt_id", "noise", "duplicate_of"])
    pairs = input_pairs(run)
    rows = []
    settings = [
        ("pHash only", dataclasses.replace(base.dedup.semantic, enabled=False)),
        ("defaults", SemanticDedupConfig()),
    ]
    for eps in (float(e) for e in args.eps.split(",")):
        settings.append((f"eps {eps:g}", dataclasses.replace(base.dedup.semantic, eps=eps)))
    for label, semantic in settings:
        config = base.replace(dedup=dataclasses.replace(base.dedup, semantic=semantic))
        started = time.perf_counter()
        frame = decide({"annotations": annotations}, config).frame.localCheckpoint()
        ledger = pa.Table.from_pylist(
            [r.asDict() for r in frame.filter(F.col("reason").isNotNull()).collect()]
        )
        kept = {r["uid"] for r in frame.filter(F.col("reason").isNull()).select("uid").collect()}
        seconds = time.perf_counter() - started
        rows.append(_row(label, score_dedup_against_truth(truth, pairs, ledger, kept), seconds))
        log.info("%s done in %.0f s", label, seconds)
    headers = [
        "setting",
        *(SHORT[k] for k in KINDS),
        "sem drops",
        "sem distinct",
        "all distinct",
        "s",
    ]
    widths = [max(len(r[i]) for r in [headers, *rows]) for i in range(len(headers))]
    out = [" | ".join(c.rjust(w) for c, w in zip(headers, widths, strict=True))]
    out += [" | ".join(c.rjust(w) for c, w in zip(r, widths, strict=True)) for r in rows]
    sys.stdout.write(
        "recall per planted kind; drops of dedup.semantic_duplicate; drops that "
        "merged distinct pictures\n" + "\n".join(out) + "\n"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
