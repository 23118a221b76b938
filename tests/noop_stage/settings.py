"""The `noop` config section: declared here, beside the stage that reads it, and named by the
stage's registry entry; nothing in pipeline/config.py knows it."""

from __future__ import annotations

from dataclasses import dataclass

from pipeline.errors import ConfigError


@dataclass(frozen=True)
class NoopConfig:
    # Written into stats.json as the stage's figure: shows that the setting reached the stage.
    label: str = "noop"

    def validate(self) -> None:
        if not self.label:
            raise ConfigError("config noop.label: must not be empty")
