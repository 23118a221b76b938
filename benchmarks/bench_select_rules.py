"""The new selection rules at 1x and 10x their input: preselect's pool-score rules on candidates
(DataComp's CLIP L/14 top 30 % plus LAION's punsafe/pwatermark bounds) and select's image-based
rule (k-means on a bounded driver sample, reference clusters, assignment in `mapInArrow`).

Preselect: `preselect.plan.decide` on a synthetic candidates table (uid, url, caption and the
pool's score columns) at `--pool-sizes` (default 1M and 10M rows), forced by writing the
decisions to parquet (as the stage does). Image-based: `select.plan.decide` with
`select.rules: [image_based]` on synthetic 512-d unit embeddings (float16 bytes, as annotate
stores them) around 200 topic centres, 100 of which the reference set covers, at
`--embedding-sizes` (default 100k and 1M), with 1,000 reference embeddings in a parquet file.

Reported: seconds, rows/s, peak RSS of the driver python, the JVM and the python workers
(`MemoryPoller` of bench_dedup), and `ratio <rule>_growth_10x` (cost at 10x over cost at 1x;
target <= 12, linear or better). `make bench-select-rules`; quick:
`BENCH_ARGS="--pool-sizes 1e5,1e6 --embedding-sizes 2e4,2e5"`.
"""

from __future__ import annotations

import argparse
import logging
import shutil
import tempfile
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from benchmarks.bench_dedup import MemoryPoller, mib, parse_count
from benchmarks.common import report_rate, report_ratio, timed
from pipeline.config import load_config
from pipeline.logs import setup_logging
from pipeline.preselect.plan import decide as preselect_decide
from pipeline.select.plan import decide as select_decide
from pipeline.spark.session import get_spark

log = logging.getLogger(__name__)
CHUNK = 1_000_000
DIM = 512
TOPICS = 200
REFERENCE_TOPICS = 100


def write_candidates(folder: Path, n: int, seed: int) -> None:
    """n candidate rows in parquet chunks: DataComp's and LAION's score columns."""
    folder.mkdir(parents=True)
    rng = np.random.default_rng(seed)
    for start in range(0, n, CHUNK):
        m = min(CHUNK, n - start)
        ids = np.arange(start, start + m)
        table = pa.table(
            {
                "uid": [f"{i:032x}" for i in ids],
                "url": [f"http://img{i % 97}.example.com/{i}.jpg" for i in ids],
                "caption": [f"a photo of item {i}" for i in ids],
                "clip_l14_similarity_score": rng.uniform(0.1, 0.4, m).astype(np.float32),
                "punsafe": rng.uniform(0, 1, m).astype(np.float32),
                "pwatermark": rng.uniform(0, 1, m).astype(np.float32),
            }
        )
        pq.write_table(table, folder / f"part-{start // CHUNK:05d}.parquet")


def _unit_f16(rows: np.ndarray) -> pa.Array:
    rows = rows / np.linalg.norm(rows, axis=1, keepdims=True)
    data = rows.astype(np.float16)
    offsets = np.arange(len(data) + 1, dtype=np.int32) * (DIM * 2)
    return pa.Array.from_buffers(
        pa.binary(), len(data), [None, pa.py_buffer(offsets), pa.py_buffer(data.tobytes())]
    )


def write_embeddings(folder: Path, n: int, seed: int) -> Path:
    """n pool embeddings around TOPICS centres (dedup survivors and annotations alike), and a
    reference parquet of 1,000 embeddings around the first REFERENCE_TOPICS centres."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((TOPICS, DIM)).astype(np.float32)
    for name in ("dedup", "annotations"):
        (folder / name).mkdir(parents=True)
    chunk = 200_000
    for start in range(0, n, chunk):
        m = min(chunk, n - start)
        topic = rng.integers(TOPICS, size=m)
        points = centres[topic] + 0.8 * rng.standard_normal((m, DIM)).astype(np.float32)
        uids = pa.array([f"{i:032x}" for i in range(start, start + m)])
        part = f"part-{start // chunk:05d}.parquet"
        pq.write_table(pa.table({"uid": uids}), folder / "dedup" / part)
        pq.write_table(
            pa.table(
                {
                    "uid": uids,
                    "clip_score": rng.uniform(0.1, 0.4, m).astype(np.float32),
                    "image_embedding": _unit_f16(points),
                }
            ),
            folder / "annotations" / part,
        )
    topic = rng.integers(REFERENCE_TOPICS, size=1000)
    points = centres[topic] + 0.8 * rng.standard_normal((1000, DIM)).astype(np.float32)
    reference = folder / "reference.parquet"
    pq.write_table(pa.table({"image_embedding": _unit_f16(points)}), reference)
    return reference


def run_case(name: str, n: int, fn, poller: MemoryPoller) -> float:
    poller.reset()
    seconds, figures = timed(fn)
    peaks = poller.read()
    report_rate(f"{name}_{n:.0e}", n, seconds)
    print(
        f"memory {name} n={n:,} (peak RSS): driver python {mib(peaks.get('driver', 0))}, "
        f"JVM {mib(peaks.get('jvm', 0))}, python workers {mib(peaks.get('workers', 0))}"
    )
    print(f"figures {name} n={n:,}: {figures}")
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pool-sizes", default="1e6,1e7")
    parser.add_argument("--embedding-sizes", default="1e5,1e6")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    setup_logging(False)
    pool_sizes = [parse_count(s) for s in args.pool_sizes.split(",")]
    embedding_sizes = [parse_count(s) for s in args.embedding_sizes.split(",")]
    spark = get_spark(load_config().spark)
    poller = MemoryPoller()
    root = Path(tempfile.mkdtemp(prefix="bench-select-rules-"))
    try:
        pool_config = load_config(
            None,
            [
                "select.pool.clip_column=clip_l14_similarity_score",
                "select.pool.clip_top_fraction=0.3",
                "select.pool.max={punsafe: 0.5, pwatermark: 0.8}",
            ],
        )
        seconds = {}
        for n in pool_sizes:
            folder = root / f"candidates-{n}"
            write_candidates(folder, n, args.seed)

            def preselect(folder: Path = folder, n: int = n) -> dict:
                frame = spark.read.parquet(str(folder))
                decisions = preselect_decide({"candidates": frame}, pool_config)
                out = root / f"preselected-{n}"
                decisions.frame.write.mode("overwrite").parquet(str(out))
                kept = spark.read.parquet(str(out)).filter("reason IS NULL").count()
                return {"kept": kept, "threshold": decisions.figures["clip"]["threshold"]}

            seconds[n] = run_case("preselect", n, preselect, poller)
            shutil.rmtree(folder)
        if len(pool_sizes) > 1:
            a, b = pool_sizes[0], pool_sizes[-1]
            report_ratio(f"preselect_growth_{b // a}x", seconds[b] / seconds[a], "<=", 1.2 * b / a)

        seconds = {}
        for n in embedding_sizes:
            folder = root / f"pool-{n}"
            reference = write_embeddings(folder, n, args.seed)
            config = load_config(
                None,
                [
                    "select.rules=[image_based]",
                    f"select.image_based.reference={reference}",
                    "select.image_based.clusters=400",
                ],
            )

            def image_based(folder: Path = folder, n: int = n, config=config) -> dict:
                inputs = {
                    "dedup": spark.read.parquet(str(folder / "dedup")),
                    "annotations": spark.read.parquet(str(folder / "annotations")),
                }
                decisions = select_decide(inputs, config)
                out = root / f"selected-{n}"
                decisions.frame.write.mode("overwrite").parquet(str(out))
                kept = spark.read.parquet(str(out)).filter("reason IS NULL").count()
                return {"kept": kept, **decisions.figures["rules"]["image_based"]}

            seconds[n] = run_case("image_based", n, image_based, poller)
            shutil.rmtree(folder)
        if len(embedding_sizes) > 1:
            a, b = embedding_sizes[0], embedding_sizes[-1]
            report_ratio(
                f"image_based_growth_{b // a}x", seconds[b] / seconds[a], "<=", 1.2 * b / a
            )
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
