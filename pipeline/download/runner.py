"""Runs img2dataset with our guards plugged in: the guarded opener in every download process, the
header/truncation check before every decode, and each shard's ledger part written by the process
that downloaded it, right after the shard (no Spark job over the shards afterwards)."""

from __future__ import annotations

import contextlib
import functools
import importlib
import logging
import os
from collections.abc import Iterator

import img2dataset
from img2dataset.downloader import Downloader

from pipeline.cores import usable_cores
from pipeline.download import fetch_guard
from pipeline.download.failures import write_shard_ledger
from pipeline.download.image_guard import SafeResizer
from pipeline.download.settings import DownloadConfig
from pipeline.download.shard_order import sort_shard
from pipeline.storage import StoragePath, as_path

log = logging.getLogger(__name__)
# `img2dataset.main` the attribute is the CLI function; the module is what builds the components.
img2dataset_main = importlib.import_module("img2dataset.main")


class SafeDownloader(Downloader):
    """img2dataset's Downloader; each process installs the guarded opener before its first shard,
    puts each finished shard in key order (shard_order; `download.key_order`) and, with a
    `ledger` folder, writes its ledger part."""

    def __init__(
        self,
        *args,
        fetch_policy: fetch_guard.FetchPolicy,
        ledger: str | None = None,
        key_order: bool = True,
        **kwargs,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.fetch_policy = fetch_policy
        self.ledger = ledger
        self.key_order = key_order

    def __call__(self, row):  # type: ignore[no-untyped-def]
        fetch_guard.install(self.fetch_policy)
        done = super().__call__(row)
        # img2dataset names the shard's files by its zero-padded id (writer.py).
        shard = f"{row[0]:0{self.oom_shard_count}d}"
        if done[0] and self.key_order:
            sort_shard(self.output_folder, shard)
        if done[0] and self.ledger is not None:
            # A kill between img2dataset's _stats.json and this part leaves the part to the
            # stage's Spark job.
            write_shard_ledger(as_path(self.ledger), f"{self.output_folder}/{shard}.parquet")
        return done


def fetch_policy(
    cfg: DownloadConfig, allowed_networks: tuple[str, ...], robots_cache: StoragePath | None = None
) -> fetch_guard.FetchPolicy:
    """The guards' limits; robots.txt files shared under `robots_cache` (else per process)."""
    return fetch_guard.FetchPolicy(
        allowed_networks=allowed_networks,
        max_bytes=cfg.max_bytes,
        deadline=cfg.deadline,
        max_redirects=cfg.max_redirects,
        robots_txt=cfg.respect_robots_txt,
        robots_cache=None if robots_cache is None else str(robots_cache),
    )


@contextlib.contextmanager
def guarded_components(
    cfg: DownloadConfig,
    allowed_networks: tuple[str, ...],
    ledger: StoragePath | None = None,
    robots_cache: StoragePath | None = None,
) -> Iterator[None]:
    """Swap img2dataset's Downloader and Resizer for the guarded ones while `download` runs
    (with `ledger`, the Downloader writes each shard's ledger part there; `robots_cache` is where
    the download processes share the robots.txt files they fetch).

    img2dataset builds both inside `download()` with no hook; the replacements are module-level
    classes, so they pickle to spawned processes and Spark executors by reference.
    """
    saved = (img2dataset_main.Downloader, img2dataset_main.Resizer)
    img2dataset_main.Downloader = functools.partial(
        SafeDownloader,
        fetch_policy=fetch_policy(cfg, allowed_networks, robots_cache),
        ledger=None if ledger is None else str(ledger),
        key_order=cfg.key_order,
    )
    img2dataset_main.Resizer = functools.partial(SafeResizer, max_pixels=cfg.max_pixels)
    try:
        yield
    finally:
        img2dataset_main.Downloader, img2dataset_main.Resizer = saved


def img2dataset_options(cfg: DownloadConfig, distributor: str, columns: list[str]) -> dict:
    """The img2dataset.download keyword arguments our settings map to."""
    return {
        "input_format": "parquet",
        "url_col": "url",
        "caption_col": "caption",
        "save_additional_columns": columns,
        "output_format": "webdataset",
        "processes_count": cfg.processes or usable_cores(),
        "thread_count": cfg.threads,
        "image_size": cfg.image_size,
        "resize_mode": cfg.resize_mode,
        "resize_only_if_bigger": cfg.resize_only_if_bigger,
        "encode_quality": cfg.encode_quality,
        "encode_format": cfg.encode_format,
        "number_sample_per_shard": cfg.samples_per_shard,
        "timeout": cfg.timeout,
        "retries": cfg.retries,
        "min_image_size": cfg.min_image_size,
        "max_aspect_ratio": cfg.max_aspect_ratio,
        "user_agent_token": cfg.user_agent_token or None,
        "disallowed_header_directives": list(cfg.disallowed_header_directives),
        "distributor": distributor,
        "incremental_mode": "incremental",
        "max_shard_retry": cfg.max_shard_retry,
        "compute_hash": "sha256",
        "extract_exif": False,
        "enable_wandb": False,
        "oom_shard_count": 5,
    }


def run_img2dataset(
    url_list: StoragePath,
    output_dir: StoragePath,
    cfg: DownloadConfig,
    distributor: str,
    columns: list[str],
    allowed_networks: tuple[str, ...] = (),
    ledger: StoragePath | None = None,
    robots_cache: StoragePath | None = None,
) -> None:
    """Download every row of `url_list` (a parquet file, or a folder whose `*.parquet` files
    img2dataset reads in name order) into webdataset shards under `output_dir`; either may be a
    URL: img2dataset reads and writes through fsspec.

    img2dataset's incremental mode skips shards whose `_stats.json` exists, so a killed run
    resumes without re-downloading finished shards. With `ledger`, each shard's ledger part is
    written there as the shard finishes; robots.txt files are shared under `robots_cache`.
    """
    # Second line of defence for formats Pillow cannot parse: spawned workers import OpenCV
    # fresh, and OpenCV reads this bound when it loads.
    os.environ["OPENCV_IO_MAX_IMAGE_PIXELS"] = str(cfg.max_pixels)
    options = img2dataset_options(cfg, distributor, columns)
    log.info("download: img2dataset (%s) into %s", distributor, output_dir)
    with guarded_components(cfg, allowed_networks, ledger, robots_cache):
        img2dataset.download(url_list=str(url_list), output_folder=str(output_dir), **options)
