"""The `shard` config section: LAION's shard layout."""

from __future__ import annotations

from dataclasses import dataclass

from pipeline.errors import ConfigError


@dataclass(frozen=True)
class ShardConfig:
    """Output shards: LAION's layout."""

    # LAION-5B and img2dataset: 10,000 samples per shard.
    samples_per_shard: int = 10_000
    # Samples are shuffled deterministically (by a hash of seed and uid) so that every shard is
    # a fair sample of the data: trainers read shards in parallel.
    seed: int = 0

    def validate(self) -> None:
        if self.samples_per_shard < 1:
            raise ConfigError("config shard.samples_per_shard: must be at least 1")
