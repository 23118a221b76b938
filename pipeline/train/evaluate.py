"""Evaluation: zero-shot classification on a labelled image folder (class names in prompt
templates, as CLIP does), image<->text recall@1/5 on the folder's own captions where it has them
(ranked within its galleries) and on held-out pairs; metrics as JSON files."""

from __future__ import annotations

import hashlib
import io
import json
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import pyarrow.parquet as pq
import torch
import torch.nn.functional as F
from PIL import Image

from pipeline.errors import InputError
from pipeline.files import write_text_atomically

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ZeroShotSet:
    """Image paths with their class names, as `generate_eval_set` writes them; optionally a
    caption per image and the gallery it is ranked in for retrieval (see caption_retrieval)."""

    paths: tuple[Path, ...]
    labels: tuple[str, ...]
    captions: tuple[str, ...] | None = None
    galleries: tuple[int, ...] | None = None
    # SHA-256 of eval.parquet: a finished model's metrics name the set they were measured on.
    digest: str = ""

    @property
    def classes(self) -> list[str]:
        return sorted(set(self.labels))


def load_zero_shot_set(folder: str | Path) -> ZeroShotSet:
    """Read `folder/eval.parquet` (columns path, label; paths relative to the folder; optional
    caption, and gallery: an integer, one gallery when absent)."""
    table_path = Path(folder) / "eval.parquet"
    try:
        table = pq.read_table(table_path)
    except (OSError, ValueError) as exc:
        raise InputError(f"train.eval_data: cannot read {table_path} ({exc})") from exc
    missing = {"path", "label"} - set(table.column_names)
    if missing:
        raise InputError(
            f"train.eval_data: {table_path} lacks column(s) {', '.join(sorted(missing))}"
            f" (found: {', '.join(table.column_names)})"
        )
    paths = tuple(Path(folder) / p for p in table.column("path").to_pylist())
    labels = tuple(str(v) for v in table.column("label").to_pylist())
    absent = [p for p in paths if not p.is_file()]
    if absent or not paths:
        raise InputError(
            f"train.eval_data: {len(absent)} of {len(paths)} images missing (first: {absent[0] if absent else '-'})"
        )
    captions = galleries = None
    if "caption" in table.column_names:
        captions = tuple(str(v) for v in table.column("caption").to_pylist())
        galleries = (
            tuple(int(v) for v in table.column("gallery").to_pylist())
            if "gallery" in table.column_names
            else (0,) * len(paths)
        )
    digest = hashlib.sha256(table_path.read_bytes()).hexdigest()
    return ZeroShotSet(paths, labels, captions, galleries, digest)


def _batches(items: Sequence, size: int):
    for start in range(0, len(items), size):
        yield items[start : start + size]


@torch.no_grad()
def _encode_images(
    model, images: Sequence, preprocess: Callable, device, batch: int, autocast, draft: int = 0
):
    out = []
    for chunk in _batches(images, batch):
        pixels = []
        for item in chunk:
            source = io.BytesIO(item) if isinstance(item, bytes) else item
            with Image.open(source) as img:
                if draft:
                    # A JPEG decoded by DCT scaling to no less than `draft` pixels a side, as the
                    # trainer's own decoder does: several times faster than a full decode.
                    img.draft("RGB", (draft, draft))
                pixels.append(preprocess(img.convert("RGB")))
        with autocast():
            features = model.encode_image(torch.stack(pixels).to(device))
        out.append(F.normalize(features.float(), dim=-1))
    return torch.cat(out)


@torch.no_grad()
def _encode_texts(model, texts: Sequence[str], tokenizer: Callable, device, batch: int, autocast):
    out = []
    for chunk in _batches(texts, batch):
        with autocast():
            features = model.encode_text(tokenizer(list(chunk)).to(device))
        out.append(F.normalize(features.float(), dim=-1))
    return torch.cat(out)


def zero_shot(
    model,
    data: ZeroShotSet,
    templates: Sequence[str],
    preprocess,
    tokenizer,
    device,
    batch,
    autocast,
    draft: int = 0,
) -> dict:
    """Top-1/top-5 accuracy with class embeddings averaged over the prompt templates; where the
    set has captions, caption_retrieval on the same image features too."""
    classes = data.classes
    weights = []
    for name in classes:
        prompts = _encode_texts(
            model, [t.format(name) for t in templates], tokenizer, device, batch, autocast
        )
        weights.append(F.normalize(prompts.mean(dim=0), dim=-1))
    classifier = torch.stack(weights)
    features = _encode_images(model, data.paths, preprocess, device, batch, autocast, draft)
    logits = features @ classifier.T
    truth = torch.tensor([classes.index(label) for label in data.labels], device=logits.device)
    top = logits.topk(min(5, len(classes)), dim=-1).indices
    hits = (top[:, 0] == truth).float()
    # Per class, so that a comparison can report the rare (tail) classes on their own.
    per_class = {
        name: hits[truth == i].mean().item() for i, name in enumerate(classes) if (truth == i).any()
    }
    retrieved = {}
    if data.captions is not None:
        texts = _encode_texts(model, data.captions, tokenizer, device, batch, autocast)
        retrieved = caption_retrieval(features, texts, data.galleries or (0,) * len(texts))
    return retrieved | {
        "zeroshot_top1": hits.mean().item(),
        "zeroshot_top1_per_class": per_class,
        "zeroshot_top5": (top == truth[:, None]).any(dim=-1).float().mean().item(),
        # Per image, in the set's order: what a comparison's paired bootstrap resamples.
        "zeroshot_hits": [int(h) for h in hits.tolist()],
        "zeroshot_images": len(data.paths),
        "zeroshot_set": data.digest,
        "zeroshot_classes": len(classes),
    }


def _recall(similarity: torch.Tensor, ks: Sequence[int]) -> dict[int, float]:
    ranks = _ranks(similarity)
    return {k: (ranks < k).float().mean().item() for k in ks}


def caption_retrieval(
    image_features: torch.Tensor, text_features: torch.Tensor, galleries: Sequence[int]
) -> dict:
    """Recall@1/5 both ways between an eval set's images and their own captions, each ranked
    among the pairs of its gallery only. A gallery holds one picture of each class where the
    captions say what the picture shows but not which picture it is (the demo's, and any
    caption written from a label): ranked among all pairs, recall@1 could not pass one over
    the pictures of a class. Per-pair hits at 1 (in the set's order) are kept for a
    comparison's paired bootstrap."""
    group = torch.tensor(list(galleries), dtype=torch.long)
    i2t = torch.empty(len(group), dtype=torch.long)
    t2i = torch.empty(len(group), dtype=torch.long)
    sizes = []
    # One gallery at a time: memory is a gallery's square, not the whole set's (a 50,000-picture
    # set in 36-pair galleries needs 36 x 36 similarities at once, not 50,000 x 50,000).
    for value in torch.unique(group):
        members = (group == value).nonzero().squeeze(1)
        index = members.to(image_features.device)
        sim = image_features[index] @ text_features[index].T
        i2t[members], t2i[members] = _ranks(sim).cpu(), _ranks(sim.T).cpu()
        sizes.append(len(members))
    return {
        "eval_i2t_r1": (i2t < 1).float().mean().item(),
        "eval_i2t_r5": (i2t < 5).float().mean().item(),
        "eval_t2i_r1": (t2i < 1).float().mean().item(),
        "eval_t2i_r5": (t2i < 5).float().mean().item(),
        "eval_i2t_hits": [int(r < 1) for r in i2t.tolist()],
        "eval_t2i_hits": [int(r < 1) for r in t2i.tolist()],
        "eval_retrieval_pairs": len(group),
        "eval_gallery_size": min(sizes, default=0),
    }


def _ranks(similarity: torch.Tensor) -> torch.Tensor:
    """Rank of the true match (the diagonal) in each row: how many candidates score strictly
    higher."""
    return (similarity > similarity.diagonal()[:, None]).sum(dim=1)


def retrieval(
    model, pairs: Sequence[tuple[bytes, str]], preprocess, tokenizer, device, batch, autocast
) -> dict:
    """Recall@1/5 of image->text and text->image over the held-out pairs."""
    images = _encode_images(model, [p[0] for p in pairs], preprocess, device, batch, autocast)
    texts = _encode_texts(model, [p[1] for p in pairs], tokenizer, device, batch, autocast)
    sim = images @ texts.T
    i2t, t2i = _recall(sim, (1, 5)), _recall(sim.T, (1, 5))
    return {
        "i2t_r1": i2t[1],
        "i2t_r5": i2t[5],
        "t2i_r1": t2i[1],
        "t2i_r5": t2i[5],
        "retrieval_pairs": len(pairs),
    }


def write_metrics(output: Path, metrics: dict) -> Path:
    """metrics/step_XXXXXX.json, and metrics.jsonl rebuilt from them (so a resume never duplicates)."""
    folder = output / "metrics"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"step_{int(metrics['step']):06d}.json"
    write_text_atomically(path, json.dumps(metrics, indent=2, sort_keys=True) + "\n")
    entries = [json.loads(p.read_text()) for p in folder.glob("step_*.json")]
    lines = [json.dumps(e, sort_keys=True) for e in sorted(entries, key=lambda e: e["step"])]
    write_text_atomically(output / "metrics.jsonl", "".join(line + "\n" for line in lines))
    return path
