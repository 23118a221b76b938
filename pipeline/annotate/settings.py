"""The `annotate` config section: per-image annotation of the downloaded shards."""

from __future__ import annotations

from dataclasses import dataclass

from pipeline.errors import ConfigError


@dataclass(frozen=True)
class AnnotateConfig:
    """Per-image annotation of the downloaded shards."""

    # JPEGs are decoded in draft mode (DCT-domain downscaling) to at least this many pixels on
    # each side: pHash only looks at a 32x32 grey image, so a full decode is wasted work.
    draft_size: int = 64
    batch_rows: int = 2000

    def validate(self) -> None:
        if self.draft_size < 32 or self.batch_rows < 1:
            raise ConfigError("config annotate: draft_size must be >= 32 and batch_rows >= 1")
