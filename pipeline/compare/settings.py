"""The `compare` config section: how many seeds each selection is trained with, which selection
the others are measured against, and the bootstrap behind the intervals (pipeline/compare/
intervals.py)."""

from __future__ import annotations

from dataclasses import dataclass

from pipeline.errors import ConfigError


@dataclass(frozen=True)
class CompareConfig:
    """Seeds and intervals of `curate compare` (DataComp reports its noise; one seed of a small
    model cannot tell selections apart)."""

    # Each selection is trained this many times, with train.seed, train.seed + 1, ...: the seed
    # sets the model's initial weights and the data order. Selections are paired by seed.
    seeds: int = 1
    # The selection the others are measured against (its name); empty: the first one.
    baseline: str = ""
    # Resamples of the paired bootstrap (over seeds, then over evaluation images).
    bootstrap: int = 2000
    # Coverage of the intervals; a difference is significant when its interval excludes 0.
    confidence: float = 0.95
    # Trainings run at once, each in its own process with usable cores / parallel torch threads
    # (pipeline/compare/trainings.py); 1: one after another in this process.
    parallel: int = 1

    def validate(self) -> None:
        if self.seeds < 1 or self.bootstrap < 100 or self.parallel < 1:
            raise ConfigError(
                "config compare: seeds must be >= 1, bootstrap >= 100 and parallel >= 1"
            )
        if not 0.5 <= self.confidence < 1:
            raise ConfigError(
                f"config compare.confidence: expected 0.5 to 1 (excluded), got {self.confidence}"
            )
