"""Download throughput: our guarded stage vs bare img2dataset on the same URL list, both against
the synthetic web served on 127.0.0.1 (target: ours >= 0.9 of bare).

Run with `make bench-download`.
"""

from __future__ import annotations

import argparse
import logging
import shutil
import tempfile
from pathlib import Path

import img2dataset
import pyarrow as pa
import pyarrow.parquet as pq

from benchmarks.common import report_rate, report_ratio, timed
from pipeline.config import load_config
from pipeline.demo.image_server import ImageServer
from pipeline.demo.synthetic_web import NoiseMix, generate_web
from pipeline.download.runner import img2dataset_options
from pipeline.ingest.normalize import make_uid
from pipeline.run_dir import RunDir
from pipeline.runner import run_stage
from pipeline.stats import record_stage


def _candidates(web_root: Path, base_url: str, n: int) -> pa.Table:
    paths = sorted(p.relative_to(web_root).as_posix() for p in web_root.rglob("*.jpg"))[:n]
    urls = [f"{base_url}/{p}" for p in paths]
    captions = [f"a synthetic picture number {i}" for i in range(len(urls))]
    return pa.table(
        {
            "uid": [make_uid(u, c) for u, c in zip(urls, captions, strict=True)],
            "url": urls,
            "caption": captions,
            "lang": ["en"] * len(urls),
            "lang_score": pa.array([0.9] * len(urls), pa.float32()),
        }
    ).sort_by("uid")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--images", type=int, default=2000)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    work = Path(tempfile.mkdtemp(prefix="bench-download-"))
    overrides = [
        "network.allowed_networks=[127.0.0.1/32]",
        "download.processes=2",
        "download.threads=32",
    ]
    config = load_config(None, overrides)
    try:
        web = generate_web(
            work / "web", n_pairs=args.images, seed=0, mix=NoiseMix(clean=1.0, **_zero_noise())
        )
        with ImageServer(web.files_dir) as server:
            table = _candidates(web.files_dir, server.base_url, args.images)
            n = table.num_rows
            ours_best = bare_best = float("inf")
            for i in range(args.repeats):
                run = RunDir(work / f"ours_{i}")
                run.candidates.mkdir(parents=True)
                pq.write_table(table, run.candidates / "part-0.parquet")
                record_stage(run, "ingest", n, n, {}, 0.0)
                ours, entry = timed(lambda run=run: run_stage("download", run.root, config))
                assert entry["rows_kept"] == n, entry
                ours_best = min(ours_best, ours)

                bare_in = work / f"bare_{i}.parquet"
                pq.write_table(table, bare_in)
                options = img2dataset_options(
                    config.download, "multiprocessing", ["uid", "lang", "lang_score"]
                )
                bare, _ = timed(
                    lambda i=i, bare_in=bare_in, options=options: img2dataset.download(
                        url_list=str(bare_in), output_folder=str(work / f"bare_out_{i}"), **options
                    )
                )
                bare_best = min(bare_best, bare)
            ours_rate = report_rate("ours_download", n, ours_best, "images/s")
            bare_rate = report_rate("bare_img2dataset", n, bare_best, "images/s")
            report_ratio("download_ours_vs_bare_img2dataset", ours_rate / bare_rate, ">=", 0.9)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _zero_noise() -> dict[str, float]:
    fields = NoiseMix.__dataclass_fields__
    return {name: 0.0 for name in fields if name != "clean"}


if __name__ == "__main__":
    main()
