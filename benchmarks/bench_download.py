"""Download throughput: our guarded stage vs bare img2dataset on the same URL list, both against
the synthetic web served on 127.0.0.1 (target: ours >= 0.9 of bare). Ours honours robots.txt
(`download.respect_robots_txt`, the default): the web serves one that disallows a path no URL
uses, so every request is checked against parsed rules; the run must fetch it once.

With `--components`, two more variants on the same list split the stage's cost: img2dataset
with our guarded Downloader and Resizer swapped in (the guards alone, no stage around them), and
with the guarded Downloader only (the opener's share). Every variant runs `--repeats` times,
interleaved, and reports its fastest run.

Run with `make bench-download` (`BENCH_ARGS="--images 20000 --components"` for the 10x case).
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import shutil
import tempfile
from pathlib import Path

import img2dataset
import pyarrow.parquet as pq

from benchmarks.common import report_rate, report_ratio, timed
from pipeline.config import load_config
from pipeline.demo.image_server import ImageServer
from pipeline.demo.synthetic_web import NoiseMix, generate_web, write_input_parquet
from pipeline.download.runner import guarded_components, img2dataset_main, img2dataset_options
from pipeline.run_dir import RunDir
from pipeline.runner import run_stage

log = logging.getLogger(__name__)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--images", type=int, default=2000)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--components", action="store_true", help="time the guards alone too")
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
        (web.files_dir / "robots.txt").write_text("User-agent: *\nDisallow: /not-served/\n")
        with ImageServer(web.files_dir) as server:
            # The real ingest and preselect stages (untimed) make the run download starts from.
            prepared = RunDir(work / "prepared")
            src = write_input_parquet(web, server.base_url, work / "input.parquet")
            run_stage("ingest", prepared.root, config, input_path=str(src))
            run_stage("preselect", prepared.root, config)
            table = pq.read_table(prepared.candidates)
            n = table.num_rows
            ours_best = bare_best = float("inf")
            parts: dict[str, float] = {}
            for i in range(args.repeats):
                run = RunDir(work / f"ours_{i}")
                shutil.copytree(prepared.root, run.root)
                seen = len(server.requests)
                ours, entry = timed(lambda run=run: run_stage("download", run.root, config))
                assert entry["rows_kept"] == n, entry
                robots = server.requests[seen:].count("/robots.txt")
                assert robots == 1, f"robots.txt fetched {robots} times in one run"
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
                if args.components:
                    for name, swap in (("guards", _guards), ("opener", _opener)):
                        out = work / f"{name}_out_{i}"
                        seconds, _ = timed(
                            lambda out=out, bare_in=bare_in, options=options, swap=swap: _swapped(
                                swap(config), bare_in, out, options
                            )
                        )
                        parts[name] = min(parts.get(name, seconds), seconds)
            log.warning("robots.txt fetched once per run (one origin)")
            ours_rate = report_rate("ours_download", n, ours_best, "images/s")
            bare_rate = report_rate("bare_img2dataset", n, bare_best, "images/s")
            for name, seconds in parts.items():
                rate = report_rate(f"img2dataset_with_{name}", n, seconds, "images/s")
                report_ratio(f"download_{name}_vs_bare_img2dataset", rate / bare_rate)
            report_ratio("download_ours_vs_bare_img2dataset", ours_rate / bare_rate, ">=", 0.9)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _guards(config):
    """Our Downloader and Resizer swapped into img2dataset, as the stage runs it."""
    return guarded_components(config.download, config.network.allowed_networks)


@contextlib.contextmanager
def _opener(config):
    """The guarded Downloader only: img2dataset's own Resizer decodes."""
    saved = img2dataset_main.Resizer
    with _guards(config):
        img2dataset_main.Resizer = saved
        yield


def _swapped(swap, url_list: Path, out: Path, options: dict) -> None:
    with swap:
        img2dataset.download(url_list=str(url_list), output_folder=str(out), **options)


def _zero_noise() -> dict[str, float]:
    fields = NoiseMix.__dataclass_fields__
    return {name: 0.0 for name in fields if name != "clean"}


if __name__ == "__main__":
    main()
