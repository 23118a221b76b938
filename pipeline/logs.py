"""Logging for the `curate` command: our loggers at INFO (DEBUG with -v), third-party chatter
(open_clip logs on the root logger, py4j, urllib3, img2dataset's libraries) only at WARNING
unless -v."""

from __future__ import annotations

import logging
import sys

# Libraries whose INFO lines say nothing a user acts on ("Loaded ViT-B-32 model config.").
_QUIET = ("py4j", "urllib3", "fsspec", "huggingface_hub", "PIL", "matplotlib", "timm")


_HANDLER: logging.Handler | None = None


class _OursOrWarnings(logging.Filter):
    """Pass every record of the `pipeline` loggers, and others from WARNING up."""

    def filter(self, record: logging.LogRecord) -> bool:
        return (
            record.name.startswith(("pipeline", "benchmarks")) or record.levelno >= logging.WARNING
        )


def setup_logging(verbose: bool = False) -> None:
    """One handler on stderr; with `verbose` everything at DEBUG, else ours at INFO only."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    if not verbose:
        handler.addFilter(_OursOrWarnings())
    for name in _QUIET:
        logging.getLogger(name).setLevel(logging.NOTSET if verbose else logging.WARNING)
    root = logging.getLogger()
    global _HANDLER
    if _HANDLER is not None:
        root.removeHandler(_HANDLER)  # called again (tests call main() many times)
    _HANDLER = handler
    root.addHandler(handler)
    root.setLevel(logging.DEBUG if verbose else logging.INFO)
