"""`curate demo`: generate the synthetic web, serve it on 127.0.0.1, run every stage on it,
bootstrap a CLIP scorer on the raw downloads, select, shard, then train the same model on several
selections (raw, the CLIP cut, CLIP AND image-based, CLIP + MetaCLIP balancing), compare them
zero-shot on a clean held-out set, overall and on the tail classes, and write the report."""

from __future__ import annotations

import dataclasses
import logging
import shutil
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

from pipeline.compare.run_compare import run_compare, train_selection
from pipeline.compare.selections import Selection, parse_selections
from pipeline.config import Config
from pipeline.demo.blocklists import blocklist_paths, write_demo_blocklists
from pipeline.demo.compare import RAW, demo_compare_config, demo_train_config, scorer_config
from pipeline.demo.head import HEAD_NAME, ensure_demo_head
from pipeline.demo.image_server import ImageServer
from pipeline.demo.pictures import CLASSES, DEFAULT_IMAGE_SIZE
from pipeline.demo.synthetic_web import (
    CONCEPTS_FILE,
    NoiseMix,
    SyntheticWeb,
    generate_eval_set,
    generate_web,
    write_input_parquet,
)
from pipeline.report.stage import run_report
from pipeline.run_dir import RunDir
from pipeline.runner import preflight, run_stages, stage_state
from pipeline.stages import get_stage

log = logging.getLogger(__name__)
# Clean held-out pictures per class for zero-shot evaluation and caption retrieval (36 classes):
# over 100, so that one picture is under 1 point of a class's accuracy (3,744 pictures: an
# evaluation takes about 5 s of a training's 35 on 2 cores).
EVAL_PER_CLASS = 104
# Eval pictures at half the web's size: the model sees 32 px, the download stores them at about
# 256, and a quarter of the pixels writes the set four times faster.
EVAL_IMAGE_SIZE = (DEFAULT_IMAGE_SIZE[0] // 2, DEFAULT_IMAGE_SIZE[1] // 2)
# Reference pictures per class for the image-based rule (DataComp used ImageNet-1k's training
# set, about 1,300 a class, to mark its 100,000 pool clusters).
REFERENCE_PER_CLASS = 10
# The web's classes follow a Zipf law of this exponent (noise_plan.class_weights): four head
# classes hold half of the pairs, each of the 18 rarest under 1 %.
DEMO_CLASS_TAIL = 1.0
# MetaCLIP's cap per entry for the demo's pool: its entries are the 36 class names, and ~2,600
# selected pairs are seen ~15 times each in 300 steps of 128. Measured on the demo (README): t = 100
# keeps 65 % of the selection and raised tail-class top-1 by 7 points at equal overall top-1;
# t = 40 (43 % kept, seen 34 times) let the model memorise its 1,119 pairs (final loss 0.69 vs
# 2.33) and lost 6.5 points overall. MetaCLIP raised t with its data too (20k at 400M, 170k at
# 2.5B); where data is scarce and epochs many, a larger t.
DEMO_BALANCE_T = 100
# Centroids of the image-based rule: DataComp's 100,000 centroids are about 100 per ImageNet
# class; the demo's pool of ~4,500 has 36 classes (CommonPool's 1,300 a centroid would give 4).
DEMO_IMAGE_CLUSTERS = 100
# What the demo trains and compares: NAME=SPEC (pipeline.compare.selections).
DEMO_SELECTIONS = (
    "raw=raw",
    "curated=run",
    "clip_image=clip_score+image_based",
    "clip_balance=clip_score+balance",
)
DEMO_PAIRS = 8000
# The loopback port the demo serves its web on. Ingest hashes the URL into the uid, and the uid
# orders the download and seeds every draw after it (balancing, the trainer's data order through
# the shards), so a fixed port makes a fresh run reproduce the last one's figures. When it is
# taken, any free port serves, and the run warns that its figures are its own.
DEMO_PORT = 28761
# Where the demo writes its blocklists and its trained head, in the run directory.
BLOCKLISTS = "web/blocklists"
HEADS = "heads"
# The demo's web: 16 % of alt-texts describe another picture, as in a raw crawl, where
# CLIP filtering removes most of the pool (DataComp keeps 30 % of CommonPool); 2 % each of the
# copies that full-frame pHash misses (larger crop, mirror, colour filter, text overlay), taken
# from the text noise and the size faults rather than from the clean pairs: with clean at 0.22
# the curated model's gain over raw fell from +18 to +7 top-1 points (fewer correct pairs in the
# top fraction).
DEMO_MIX = NoiseMix(
    clean=0.30,
    mismatched_caption=0.16,
    off_target=0.06,
    boilerplate_caption=0.05,
    non_english=0.05,
    small_image=0.03,
    extreme_aspect=0.02,
    variant_crop=0.02,
    variant_flip=0.02,
    variant_colour=0.02,
    variant_overlay=0.02,
    # Rights and safety, 1 % each (taken from the mismatched captions): pairs on the demo's URL
    # and image hash blocklists, and pictures under the path the server's robots.txt disallows.
    blocklisted_url=0.01,
    blocklisted_image=0.01,
    robots_disallowed=0.01,
)


def demo_config(config: Config) -> Config:
    """The user's config, with the local image server allowed and a timeout under its slow route."""
    return config.replace(
        network=dataclasses.replace(
            config.network,
            allowed_networks=(*config.network.allowed_networks, "127.0.0.1/32"),
        ),
        download=dataclasses.replace(config.download, timeout=min(config.download.timeout, 3.0)),
    )


def with_demo_blocklists(config: Config, run_root: Path) -> Config:
    """The web's URL and image hash blocklists (written by _fetch) where the user named none."""
    lists = blocklist_paths(run_root / BLOCKLISTS)
    ingest, dedup = config.ingest, config.dedup
    if not ingest.blocklists:
        ingest = dataclasses.replace(ingest, blocklists=(str(lists.urls),))
    if not dedup.blocklists:
        dedup = dataclasses.replace(dedup, blocklists=(str(lists.images),))
    return config.replace(ingest=ingest, dedup=dedup)


def _start_over(run: RunDir) -> None:
    """Remove an unfinished download's traces: the server's port, and so the URLs and uids,
    may differ between runs (DEMO_PORT taken), so ingest and download are redone together."""
    for leftover in (
        run.candidates,
        run.root / get_stage("preselect").output,
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


def serve_web(files_dir: Path, port: int = DEMO_PORT) -> ImageServer:
    """The web's server, started on `port` where it is free, else on any free port."""
    try:
        return ImageServer(files_dir, port=port, slow_seconds=5.0).start()
    except OSError as exc:
        if port == 0:
            raise
        log.warning(
            "demo: port %d is taken (%s); serving on another, so this run's uids, and its "
            "figures, differ from a run on port %d",
            port,
            exc.strerror,
            port,
        )
        return ImageServer(files_dir, port=0, slow_seconds=5.0).start()


def _fetch(run: RunDir, config: Config, pairs: int, seed: int, port: int) -> None:
    """Generate (or reuse) the web, serve it, and run ingest and download against it."""
    web_dir = run.root / "web"
    web = SyntheticWeb.load(web_dir) if (web_dir / "ground_truth.parquet").exists() else None
    if web is None or web.n_pairs != pairs:
        web = generate_web(
            web_dir, n_pairs=pairs, seed=seed, mix=DEMO_MIX, class_tail=DEMO_CLASS_TAIL
        )
    with serve_web(web.files_dir, port) as server:
        source = write_input_parquet(web, server.base_url, run.root / "input.parquet")
        # The URL list names the server's port: written for this server, before ingest reads it.
        write_demo_blocklists(web, server.base_url, run.root / BLOCKLISTS)
        run_stages(run.root, config, str(source), ["ingest", "preselect", "download"])


def _scorer(config: Config, raw: dict[str, Any]) -> Config:
    """The CLIP settings annotate uses: the user's checkpoint if given, else the raw model."""
    if config.clip.enabled and config.clip.pretrained == "openai":
        # No pretrained weights can be fetched offline: bootstrap from the raw-data model.
        return scorer_config(config, Path(raw["checkpoint"]))
    return config


def _with_head(config: Config, run: RunDir, seed: int) -> Config:
    """annotate.heads with the demo's off-target head, trained over the scorer's embeddings,
    where the user named no heads of their own."""
    if not config.clip.enabled or config.annotate.heads:
        return config
    head = ensure_demo_head(run.root / HEADS, config.clip, seed)
    return config.replace(
        annotate=dataclasses.replace(config.annotate, heads={HEAD_NAME: str(head)})
    )


def eval_set_matches(folder: Path, per_class: int) -> bool:
    """Whether `folder` holds an eval set of `per_class` pictures a class with captions (one
    written by an earlier version, or for another --eval-per-class, is written again)."""
    path = folder / "eval.parquet"
    if not path.is_file():
        return False
    found = pq.ParquetFile(path)
    return "caption" in found.schema_arrow.names and found.metadata.num_rows == per_class * len(
        CLASSES
    )


def run_demo(
    run_dir: Path | str,
    config: Config,
    pairs: int = DEMO_PAIRS,
    seed: int = 0,
    eval_per_class: int = EVAL_PER_CLASS,
    port: int = DEMO_PORT,
) -> dict[str, Any]:
    """Run the whole demo into `run_dir` (web in `run_dir/web`); returns stats.json's content
    with the training comparison under "comparison".

    Finished steps are not redone. An unfinished download starts over (see _start_over).
    """
    run = RunDir(Path(run_dir).resolve())
    config = demo_compare_config(demo_train_config(demo_config(config), run.root / "web" / "eval"))
    if config.clip.pretrained != "openai":
        # The user's own scorer: check it loads before an hour of downloading.
        preflight(config, ["annotate", "dedup"])
    config = with_demo_blocklists(config, run.root)
    fetched = (run.root / BLOCKLISTS).is_dir()
    if not fetched or stage_state(run, get_stage("download"), config).status != "complete":
        _start_over(run)
        _fetch(run, config, pairs, seed, port)
    web = run.root / "web"
    if not eval_set_matches(web / "eval", eval_per_class):
        generate_eval_set(
            web / "eval", n_per_class=eval_per_class, seed=seed + 1, image_size=EVAL_IMAGE_SIZE
        )
    if not (web / "reference" / "eval.parquet").is_file():
        generate_eval_set(web / "reference", n_per_class=REFERENCE_PER_CLASS, seed=seed + 2)
    stages = run.stats()["stages"]
    raw = train_selection(run, RAW, run.downloads, stages["download"]["fingerprint"], config)
    config = _with_head(_scorer(config, raw), run, seed)
    run_stages(run.root, config, names=["annotate", "dedup", "select", "balance", "shard"])
    comparison = run_compare(run.root, compare_config(config, web), demo_selections())
    run_report(run.root, config)
    return run.stats() | {"comparison": comparison}


def demo_selections() -> list[Selection]:
    return parse_selections(list(DEMO_SELECTIONS))


def compare_config(config: Config, web: Path) -> Config:
    """The demo's settings of the image-based rule and of balancing, where the user left them
    unset: the web's reference pictures and its class names as the entry list."""
    select = config.select
    image = select.image_based
    if not image.reference:
        image = dataclasses.replace(image, reference=str(web / "reference" / "images"))
    if not image.clusters:
        image = dataclasses.replace(image, clusters=DEMO_IMAGE_CLUSTERS)
    select = dataclasses.replace(select, image_based=image)
    if not select.text_based.terms:
        select = dataclasses.replace(
            select,
            text_based=dataclasses.replace(select.text_based, terms=str(web / CONCEPTS_FILE)),
        )
    balance = config.balance
    if not balance.entries:
        balance = dataclasses.replace(balance, entries=str(web / CONCEPTS_FILE))
    if not balance.t:
        balance = dataclasses.replace(balance, t=DEMO_BALANCE_T)
    return config.replace(select=select, balance=balance)
