"""`select.pool`, the preselect stage's settings: rules on the scores a pool ships, before the
download."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from pipeline.errors import ConfigError


@dataclass(frozen=True)
class PoolScoresConfig:
    """Rules on the scores a pool ships with its URLs, run by the preselect stage on the
    candidates before the download, so that only the kept pairs are fetched (downloading is by
    far a run's largest cost). DataComp's CommonPool metadata has clip_b32_similarity_score and
    clip_l14_similarity_score; LAION's parquet has similarity, punsafe and pwatermark. Nothing
    set: preselect keeps every candidate."""

    # A CLIP similarity column of the input (carried into the candidates): the CLIP rule on the
    # pool's own score, dropping with the same code as after download (select.clip_score).
    clip_column: str = ""
    # DataComp's "CLIP L/14 top 30 %": the fraction becomes a threshold over all candidates
    # (recorded in stats.json); 0 uses clip_threshold (LAION-5B: similarity >= 0.28).
    clip_top_fraction: float = 0.0
    clip_threshold: float = 0.0
    # Lower and upper bounds on other score columns: a sample is kept when column >= min and
    # column <= max. LAION's own safety cut is punsafe <= 0.5; its watermark cut
    # pwatermark <= 0.8 (REFERENCE: unsafe when > 0.5, watermarked when > 0.8).
    min: Mapping[str, str] = field(default_factory=dict)
    max: Mapping[str, str] = field(default_factory=dict)

    def bounds(self) -> tuple[dict[str, float], dict[str, float]]:
        """(min, max) as floats (validate checks they parse)."""
        return bounds_as_floats(self.min, self.max)

    @property
    def applies(self) -> bool:
        return bool(self.clip_column or self.min or self.max)

    def validate(self) -> None:
        if not 0.0 <= self.clip_top_fraction <= 1.0:
            raise ConfigError(
                "config select.pool.clip_top_fraction: must be in [0, 1], got "
                f"{self.clip_top_fraction}"
            )
        check_bound_numbers("select.pool", self.min, self.max)


def bounds_as_floats(
    lower: Mapping[str, str], upper: Mapping[str, str]
) -> tuple[dict[str, float], dict[str, float]]:
    """`{column: bound}` min and max mappings (strings, as YAML and --set give them) as floats."""
    return {c: float(v) for c, v in lower.items()}, {c: float(v) for c, v in upper.items()}


def check_bound_numbers(where: str, lower: Mapping[str, str], upper: Mapping[str, str]) -> None:
    """ConfigError naming `where.min.COLUMN` or `where.max.COLUMN` when a bound is no number
    (select.pool's bounds and select's own)."""
    for name, bounds in (("min", lower), ("max", upper)):
        for column, value in bounds.items():
            try:
                float(value)
            except ValueError:
                raise ConfigError(
                    f"config {where}.{name}.{column}: expected a number, got {value!r}"
                ) from None
