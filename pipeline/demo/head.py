"""The demo's classifier head: an off-target detector trained by the project on a labelled set of
its own (bare textures against pictures of the 36 classes, drawn from a random stream no web or
evaluation picture uses), over the embeddings of the CLIP scorer annotate will run, then loaded
by annotate (`annotate.heads`) as any published head would be. LAION's watermark and NSFW heads
were made the same way: a labelled set apart from the pool, a small MLP on CLIP embeddings."""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.clip.head_training import save_torchscript_head, train_probability_head
from pipeline.clip.score import embed_images
from pipeline.clip.settings import ClipConfig
from pipeline.demo.noise_plan import _STREAM_HEAD
from pipeline.demo.pictures import (
    CLASSES,
    DEFAULT_IMAGE_SIZE,
    JPEG_QUALITY,
    _jpeg_bytes,
    render_off_target,
    render_picture,
)

log = logging.getLogger(__name__)
# The head's name: its column is score_off_target, and the report scores a head named after a
# planted noise kind against that kind.
HEAD_NAME = "off_target"
# The labelled set: this many pictures of each class (negatives) and as many bare textures in all
# (positives), so the two sides weigh the same.
HEAD_PER_CLASS = 10


def labelled_pictures(per_class: int, seed: int) -> tuple[list[bytes], np.ndarray]:
    """(JPEG bytes, labels): `per_class` pictures of each class (0) and as many textures (1)."""
    images: list[bytes] = []
    labels: list[int] = []
    n = per_class * len(CLASSES)
    for i in range(n):
        rng = np.random.default_rng([seed, _STREAM_HEAD, 0, i])
        picture = render_picture(rng, CLASSES[i % len(CLASSES)], *DEFAULT_IMAGE_SIZE)
        images.append(_jpeg_bytes(picture, JPEG_QUALITY))
        labels.append(0)
    for i in range(n):
        rng = np.random.default_rng([seed, _STREAM_HEAD, 1, i])
        images.append(_jpeg_bytes(render_off_target(rng, *DEFAULT_IMAGE_SIZE), JPEG_QUALITY))
        labels.append(1)
    return images, np.array(labels, np.int64)


def _scorer_digest(clip: ClipConfig) -> str:
    """What the head depends on: the scorer's model and weights (a file's content digest)."""
    weights = Path(clip.pretrained)
    content = hashlib.sha256(weights.read_bytes()).hexdigest() if weights.is_file() else ""
    return f"{clip.model}|{clip.pretrained}|{content}"


def ensure_demo_head(folder: Path, clip: ClipConfig, seed: int = 0) -> Path:
    """The head file in `folder` for the scorer `clip`, trained unless it is already there for
    that scorer (so a demo run again keeps annotate's fingerprint)."""
    path = folder / f"{HEAD_NAME}.pt"
    record_path = folder / f"{HEAD_NAME}.json"
    scorer = _scorer_digest(clip)
    trained = path.is_file() and record_path.is_file()
    if trained and json.loads(record_path.read_text()).get("scorer") == scorer:
        return path
    images, labels = labelled_pictures(HEAD_PER_CLASS, seed)
    embeddings = np.stack(
        [np.frombuffer(e, np.float16).astype(np.float32) for e in embed_images(images, clip)]
    )
    fit = train_probability_head(embeddings, labels, seed=seed)
    save_torchscript_head(fit.module, path)
    record: dict[str, Any] = {
        "scorer": scorer,
        "rows": fit.rows,
        "positives": fit.positives,
        "final_loss": round(fit.final_loss, 4),
        "train_accuracy": round(fit.train_accuracy, 4),
    }
    record_path.write_text(json.dumps(record, indent=2) + "\n")
    log.info(
        "demo head %s: trained on %d pictures (%d textures), loss %.3f, train accuracy %.3f",
        HEAD_NAME,
        fit.rows,
        fit.positives,
        fit.final_loss,
        fit.train_accuracy,
    )
    return path
