"""CLIP scoring throughput: end to end (JPEG bytes and captions in, scores out: decode,
preprocess, tokenize, both encoders) vs the bare model's encode_image + encode_text on ready
tensors with the same batch (the limit), for the tiny project config and ViT-B-32 (random
weights: speed does not depend on them). Target: end to end >= 0.7 of the bare model on CPU.
Then the classifier heads of `annotate.heads` on stored embeddings at 1x and 10x rows: their
cost per image as a percentage of CLIP ViT-B-32's (target <= 1).

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


def bench(model: str, n: int, batch: int, threads: int) -> float:
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
    return ours


def bench_heads(rows: int, batch: int, clip_rate: float) -> None:
    """annotate.heads on `rows` stored (float16) embeddings and on 10x as many, in annotate's
    batches: LAION's aesthetic v2 layout (768 wide, as published) and the demo's probability head
    (512 wide); each head's cost per image against CLIP's end-to-end cost (`clip_rate`)."""
    from pipeline.clip.head_training import ProbabilityHead
    from pipeline.clip.heads import Head, _linear_stack

    widths = [768, 1024, 128, 64, 16, 1]
    aesthetic = _linear_stack(
        "aesthetic",
        {
            f"layers.{i}.weight": torch.randn(widths[i + 1], widths[i])
            for i in range(len(widths) - 1)
        },
    )
    heads = {
        "aesthetic_v2": Head("aesthetic_v2", "", aesthetic, 768, "state_dict"),
        "demo_probability": Head(
            "demo_probability", "", torch.jit.script(ProbabilityHead(512, 32).eval()), None, "ts"
        ),
    }
    for name, head in heads.items():
        width = 768 if name == "aesthetic_v2" else 512
        rates = []
        for n in (rows, 10 * rows):
            emb = np.random.default_rng(0).standard_normal((n, width)).astype(np.float16)

            def run(emb: np.ndarray = emb, head: Head = head) -> None:
                for s in range(0, len(emb), batch):
                    head.score(emb[s : s + batch].astype(np.float32))

            run(emb[:batch])
            seconds, _ = timed(run)
            rates.append(report_rate(f"head_{name}_{n}", n, seconds, "images/s"))
        report_ratio(f"head_{name}_rate_10x_vs_1x", rates[1] / rates[0], ">=", 0.8)
        report_ratio(
            f"head_{name}_cost_percent_of_clip_ViT-B-32", 100 * clip_rate / rates[1], "<=", 1
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--head-rows", type=int, default=20_000)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    bench("curate-tiny-vit", 512, 64, args.threads)
    clip_rate = bench("ViT-B-32", 64, 32, args.threads)
    bench_heads(args.head_rows, 2000, clip_rate)  # annotate.batch_rows


if __name__ == "__main__":
    main()
