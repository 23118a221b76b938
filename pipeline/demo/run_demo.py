"""`curate demo`: generate the synthetic web, serve it on 127.0.0.1, run every implemented stage
on it, and summarise the funnel."""

from __future__ import annotations

import dataclasses
import logging
import shutil
from pathlib import Path
from typing import Any

from pipeline.annotate.stage import run_annotate
from pipeline.config import Config
from pipeline.dedup.stage import run_dedup
from pipeline.demo.image_server import ImageServer
from pipeline.demo.synthetic_web import SyntheticWeb, generate_web, write_input_parquet
from pipeline.download.stage import run_download
from pipeline.ingest.stage import run_ingest
from pipeline.run_dir import RunDir
from pipeline.select.stage import run_select
from pipeline.shard.stage import run_shard

log = logging.getLogger(__name__)
LAST_STAGE = "shard"


def demo_config(config: Config) -> Config:
    """The user's config, with the local image server allowed and a timeout under its slow route."""
    if config.clip.enabled and config.clip.pretrained == "openai":
        # No pretrained weights can be fetched offline: without a checkpoint of the user's, the
        # demo runs pHash-only and select records that no CLIP rule ran.
        log.warning("demo: no CLIP checkpoint given (clip.pretrained), CLIP scoring is off")
        config = dataclasses.replace(config, clip=dataclasses.replace(config.clip, enabled=False))
    return dataclasses.replace(
        config,
        ingest=dataclasses.replace(config.ingest, allow_private_networks=True),
        download=dataclasses.replace(
            config.download,
            allowed_networks=(*config.download.allowed_networks, "127.0.0.1/32"),
            timeout=min(config.download.timeout, 3.0),
        ),
    )


def run_demo(
    run_dir: Path | str, config: Config, pairs: int = 2000, seed: int = 0
) -> dict[str, Any]:
    """Run the demo into `run_dir` (web in `run_dir/web`); returns stats.json's content.

    A finished demo is not redone. An unfinished one starts over: the server's port, and so the
    URLs and uids, differ between runs.
    """
    run = RunDir(Path(run_dir).resolve())
    if run.is_complete(LAST_STAGE):
        log.info("demo: already complete in %s", run.root)
        return run.stats()
    for leftover in (
        run.candidates,
        run.downloads,
        run.ledger,
        run.work,
        run.stats_file,
        run.config_file,
    ):
        if leftover.is_dir():
            shutil.rmtree(leftover)
        elif leftover.exists():
            leftover.unlink()
    web_dir = run.root / "web"
    web = SyntheticWeb.load(web_dir) if (web_dir / "ground_truth.parquet").exists() else None
    if web is None or web.n_pairs != pairs:
        web = generate_web(web_dir, n_pairs=pairs, seed=seed)
    config = demo_config(config)
    with ImageServer(web.files_dir, slow_seconds=5.0) as server:
        source = write_input_parquet(web, server.base_url, run.root / "input.parquet")
        run_ingest(str(source), run.root, config)
        run_download(run.root, config)
    run_annotate(run.root, config)
    run_dedup(run.root, config)
    run_select(run.root, config)
    run_shard(run.root, config)
    return run.stats()


def summary_lines(stats: dict[str, Any]) -> list[str]:
    """A short text table of the funnel and the drops per reason code."""
    lines = [f"{'stage':<10} {'rows in':>9} {'kept':>9} {'dropped':>9}"]
    for stage, entry in stats.get("stages", {}).items():
        lines.append(
            f"{stage:<10} {entry['rows_in']:>9} {entry['rows_kept']:>9} {entry['rows_dropped']:>9}"
        )
    lines.append("")
    lines.append(f"{'reason':<34} {'rows':>6}")
    for entry in stats.get("stages", {}).values():
        for reason, n in entry["dropped_by_reason"].items():
            lines.append(f"{reason:<34} {n:>6}")
    return lines
