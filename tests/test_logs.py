"""`curate` logging: our INFO lines shown, third-party INFO chatter (open_clip logs on the root
logger) only with -v; warnings from anyone always."""

from __future__ import annotations

import logging

import pytest

from pipeline import logs


@pytest.fixture
def stderr_lines(capsys):
    def emit(verbose: bool) -> list[str]:
        logs.setup_logging(verbose)
        try:
            logging.getLogger("pipeline.runner").info("ours")
            logging.getLogger().info("Loaded ViT-B-32 model config.")  # open_clip's way
            logging.getLogger("py4j.clientserver").info("chatter")
            logging.getLogger("img2dataset").warning("theirs, but a warning")
        finally:
            logging.getLogger().removeHandler(logs._HANDLER)
            logs._HANDLER = None
        return [line.split(": ", 1)[1] for line in capsys.readouterr().err.splitlines()]

    return emit


def test_quiet_by_default(stderr_lines):
    assert stderr_lines(False) == ["ours", "theirs, but a warning"]


def test_everything_with_verbose(stderr_lines):
    assert stderr_lines(True) == [
        "ours",
        "Loaded ViT-B-32 model config.",
        "chatter",
        "theirs, but a warning",
    ]
