"""The `annotate` config section: per-image annotation of the downloaded shards."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from pipeline.errors import ConfigError


@dataclass(frozen=True)
class AnnotateConfig:
    """Per-image annotation of the downloaded shards."""

    # JPEGs are decoded in draft mode (DCT-domain downscaling) to at least this many pixels on
    # each side: pHash only looks at a 32x32 grey image, so a full decode is wasted work.
    draft_size: int = 64
    batch_rows: int = 2000
    # Classifier heads over the CLIP image embedding, {name: file}: each writes `score_<name>`
    # (a state dict of a Linear stack, LAION's aesthetic v2 layout, or TorchScript;
    # pipeline/clip/heads.py). Needs clip.enabled; the files' digests are in the fingerprint.
    heads: Mapping[str, str] = field(default_factory=dict)

    def validate(self) -> None:
        if self.draft_size < 32 or self.batch_rows < 1:
            raise ConfigError("config annotate: draft_size must be >= 32 and batch_rows >= 1")
        for name in self.heads:
            name = str(name)
            plain = name.isascii() and name.replace("_", "").isalnum() and name == name.lower()
            if not (plain and name[:1].isalpha()):
                raise ConfigError(
                    f"config annotate.heads: head name {name!r} must be lower case letters, "
                    "digits and _ (it names the column score_<name>)"
                )
