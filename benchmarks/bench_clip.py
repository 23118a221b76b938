"""CLIP scoring throughput: end to end (JPEG bytes and captions in, scores out: decode,
preprocess, tokenize, both encoders) vs the bare model's encode_image + encode_text on ready
tensors with the same batch (the limit), for the tiny project config and ViT-B-32 (random
weights: speed does not depend on them). Target: end to end >= 0.7 of the bare model on CPU.

Run with `make bench-clip`.
"""

from __future__ import annotations

import argparse
import dataclasses
import io
import logging

import numpy as np
import torch

from benchmarks.common import report_rate, report_ratio, timed
from pipeline.clip.models import load_clip
from pipeline.clip.score import score_pairs
from pipeline.config import load_config
from pipeline.demo.synthetic_web import CLASSES, render_picture


def make_pairs(n: int) -> tuple[list[bytes], list[str]]:
    """256 px JPEGs (the size the download stage stores) with matching captions."""
    rng = np.random.default_rng(0)
    images, captions = [], []
    for i in range(n):
        label = CLASSES[i % len(CLASSES)]
        buf = io.BytesIO()
        render_picture(rng, label, 256, 296).save(buf, "JPEG", quality=95)
        images.append(buf.getvalue())
        captions.append(f"a photo of a {label} on a textured background")
    return images, captions


def bench(model: str, n: int, batch: int, threads: int) -> None:
    cfg = dataclasses.replace(
        load_config().clip,
        model=model,
        pretrained="",
        batch_size=batch,
        device="cpu",
        threads=threads,
    )
    torch.set_num_threads(threads)
    images, captions = make_pairs(n)
    net, preprocess, tokenizer = load_clip(model, "", "cpu")
    score_pairs(images[:batch], captions[:batch], cfg)  # warm-up
    end_to_end, _ = timed(lambda: score_pairs(images, captions, cfg))
    from PIL import Image

    pixels = torch.stack([preprocess(Image.open(io.BytesIO(d)).convert("RGB")) for d in images])
    tokens = tokenizer(captions)

    def bare() -> None:
        with torch.no_grad():
            for s in range(0, n, batch):
                net.encode_image(pixels[s : s + batch], normalize=True)
                net.encode_text(tokens[s : s + batch], normalize=True)

    bare()  # warm-up
    bare_s, _ = timed(bare)
    ours = report_rate(f"clip_end_to_end_{model}", n, end_to_end, "images/s")
    limit = report_rate(f"clip_bare_model_{model}", n, bare_s, "images/s")
    report_ratio(f"clip_end_to_end_vs_bare_{model}", ours / limit, ">=", 0.7)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    bench("curate-tiny-vit", 512, 64, args.threads)
    bench("ViT-B-32", 64, 32, args.threads)


if __name__ == "__main__":
    main()
