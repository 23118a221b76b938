"""The `download` config section: img2dataset's settings (LAION's recipe) and our guards."""

from __future__ import annotations

from dataclasses import dataclass

from pipeline.errors import ConfigError


@dataclass(frozen=True)
class DownloadConfig:
    """img2dataset settings plus our guards. Defaults: LAION's img2dataset recipe."""

    # multiprocessing on one machine; pyspark on a cluster; auto picks by spark.master.
    distributor: str = "auto"
    processes: int = 0  # 0 = one per core
    threads: int = 64
    timeout: float = 10.0  # per socket operation (img2dataset's default)
    deadline: float = 60.0  # whole request including redirects and body, against slow drips
    retries: int = 0
    samples_per_shard: int = 10_000
    # LAION: smaller side resized to 256 keeping the ratio, never upscaled.
    image_size: int = 256
    resize_mode: str = "keep_ratio"
    resize_only_if_bigger: bool = True
    encode_quality: int = 95
    encode_format: str = "jpg"
    # ALIGN: shorter side over 200 px; aspect ratio under 3 (checked on the original size).
    min_image_size: int = 200
    max_aspect_ratio: float = 3.0
    max_bytes: int = 20 * 1024 * 1024
    # Pillow's default decompression-bomb limit; checked from the header, before decoding.
    max_pixels: int = 89_478_485
    max_redirects: int = 5
    user_agent_token: str = "img2dataset"
    disallowed_header_directives: tuple[str, ...] = ("noai", "noimageai", "noindex", "noimageindex")
    # Each origin's robots.txt fetched once per run and honoured (RFC 9309; pipeline.download.robots).
    respect_robots_txt: bool = True
    max_shard_retry: int = 1
    # Rewrite each finished shard in key order (img2dataset writes it in the order its threads
    # finish): the same input then gives the same shards, and a model trained on the raw pool
    # the same data stream. Costs a local read and write of each shard (a second upload where
    # the run directory is in a bucket).
    key_order: bool = True

    def validate(self) -> None:
        if self.distributor not in ("auto", "multiprocessing", "pyspark"):
            raise ConfigError(
                f"config download.distributor: expected auto, multiprocessing or pyspark, got {self.distributor!r}"
            )
        if self.resize_mode not in (
            "no",
            "border",
            "keep_ratio",
            "keep_ratio_largest",
            "center_crop",
        ):
            raise ConfigError(f"config download.resize_mode: unknown mode {self.resize_mode!r}")
        for name in ("threads", "samples_per_shard", "image_size", "max_bytes", "max_pixels"):
            if getattr(self, name) < 1:
                raise ConfigError(
                    f"config download.{name}: must be at least 1, got {getattr(self, name)}"
                )
        for name in ("processes", "retries", "min_image_size", "max_redirects", "max_shard_retry"):
            if getattr(self, name) < 0:
                raise ConfigError(
                    f"config download.{name}: must be >= 0, got {getattr(self, name)}"
                )
        if self.timeout <= 0 or self.deadline <= 0 or self.max_aspect_ratio < 1:
            raise ConfigError(
                "config download: timeout and deadline must be > 0, max_aspect_ratio >= 1"
            )
