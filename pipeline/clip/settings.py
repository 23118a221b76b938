"""The `clip` config section: CLIP scoring (annotate) and the CLIP rule (select). Defaults:
LAION-5B."""

from __future__ import annotations

from dataclasses import dataclass

from pipeline.errors import ConfigError


@dataclass(frozen=True)
class ClipConfig:
    """CLIP scoring (during annotate) and the CLIP rule of select. Defaults: LAION-5B."""

    # false: pHash-only annotation, and select records that no CLIP rule ran.
    enabled: bool = True
    # LAION filtered with OpenAI's ViT-B/32; any open_clip architecture or a project config.
    model: str = "ViT-B-32"
    # An open_clip pretrained tag, a local checkpoint file (open_clip's or our trainer's).
    pretrained: str = "openai"
    batch_size: int = 64
    # auto: CUDA with bf16 autocast when present, else CPU in float32.
    device: str = "auto"
    # Torch threads per Spark task on CPU. Spark already runs one task per core, and OpenMP
    # threads that outnumber cores spin against each other (measured 5x slower); 0 = torch's default.
    threads: int = 1
    # Also store the normalised caption embeddings (float16); the image embeddings are always
    # stored when CLIP runs (semantic dedup reads them).
    save_embeddings: bool = False
    # LAION-5B English: cosine similarity >= 0.28 (0.26 for multilingual with mCLIP).
    threshold: float = 0.28
    # DataComp: keep the top fraction (about 0.3 is best); 0 uses `threshold` instead. The
    # fraction becomes a threshold over the whole pool, recorded in stats.json.
    top_fraction: float = 0.0

    def validate(self) -> None:
        if self.batch_size < 1 or self.threads < 0:
            raise ConfigError("config clip: batch_size must be >= 1 and threads >= 0")
        if self.device not in ("auto", "cpu", "cuda") and not self.device.startswith("cuda:"):
            raise ConfigError(
                f"config clip.device: expected auto, cpu or cuda[:N], got {self.device!r}"
            )
        if not 0.0 <= self.top_fraction <= 1.0:
            raise ConfigError(
                f"config clip.top_fraction: must be in [0, 1], got {self.top_fraction}"
            )
        if not -1.0 <= self.threshold <= 1.0:
            raise ConfigError(
                f"config clip.threshold: a cosine similarity in [-1, 1], got {self.threshold}"
            )
