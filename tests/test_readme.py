"""The README documents every setting and every command."""

from __future__ import annotations

import dataclasses
import typing
from pathlib import Path

from pipeline.cli import COMMANDS
from pipeline.config import Config

README = (Path(__file__).parent.parent / "README.md").read_text()


def test_every_setting_is_documented():
    missing = []
    for section in dataclasses.fields(Config):
        cls = typing.get_type_hints(Config)[section.name]
        assert f"### {section.name}" in README
        missing += [
            f"{section.name}.{f.name}"
            for f in dataclasses.fields(cls)
            if f"`{f.name}`" not in README
        ]
    assert missing == []


def test_every_command_is_documented():
    assert [c for c in COMMANDS if f"curate {c}" not in README] == []
