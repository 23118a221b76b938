"""The `balance` config section: MetaCLIP balancing over a list of metadata entries."""

from __future__ import annotations

from dataclasses import dataclass

from pipeline.errors import ConfigError


@dataclass(frozen=True)
class BalanceConfig:
    """MetaCLIP balancing (Xu et al. 2023, Algorithm 1) of the selected samples over a list of
    metadata entries: an entry matched by more than `t` samples keeps each of them with
    probability t / count, so head concepts are capped and the tail is kept whole."""

    # The entry list: a text file, one entry per line, or a JSON array (MetaCLIP's
    # metadata.json); matched as entry_match.mode says (pipeline/entry_match.py; MetaCLIP's
    # matcher by default). Empty: the balance stage keeps every selected sample.
    entries: str = ""
    # The cap per entry; 0 = auto, scaled linearly with the pool from MetaCLIP's t = 20,000 at
    # 400M pairs (the rule and its floor are in docs/balancing.md).
    t: int = 0
    # Randomness comes from a hash of (seed, uid): the same keep-list on every run and for any
    # partitioning of the pool.
    seed: int = 0
    # MetaCLIP drops samples whose caption matches no entry (balance.no_entry_match); true keeps
    # them.
    keep_unmatched: bool = False

    def validate(self) -> None:
        if self.t < 0:
            raise ConfigError(f"config balance.t: must be >= 0 (0 = auto), got {self.t}")
