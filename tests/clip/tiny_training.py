"""A minimal contrastive training run for tests: the tiny project config trained on the raw
(unfiltered) synthetic web, as a user with no CLIP weights bootstraps a scorer (DFN-style)."""

from __future__ import annotations

from pathlib import Path

import pyarrow.parquet as pq
import torch
from PIL import Image

from pipeline.clip.models import register_project_configs
from pipeline.demo.synthetic_web import SyntheticWeb


def train_tiny_clip(
    web: SyntheticWeb, out: Path, steps: int = 200, batch: int = 128, seed: int = 0
) -> Path:
    """Train `curate-micro-vit` (32 px, a test-sized config) on the web's pictures and captions; returns the checkpoint path."""
    import open_clip
    from open_clip.loss import ClipLoss

    register_project_configs()
    torch.manual_seed(seed)
    model, _, preprocess = open_clip.create_model_and_transforms("curate-micro-vit")
    tokenizer = open_clip.get_tokenizer("curate-micro-vit")
    rows = [
        r
        for r in pq.read_table(web.ground_truth).to_pylist()
        if r["label"] is not None and not r["path"].startswith("fault/")
    ]
    pixels = torch.stack(
        [preprocess(Image.open(web.files_dir / r["path"]).convert("RGB")) for r in rows]
    )
    tokens = tokenizer([r["caption"] for r in rows])
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.1)
    loss_fn = ClipLoss()
    generator = torch.Generator().manual_seed(seed)
    model.train()
    for _ in range(steps):
        idx = torch.randint(0, len(rows), (batch,), generator=generator)
        image_features, text_features, logit_scale = model(pixels[idx], tokens[idx])
        loss = loss_fn(image_features, text_features, logit_scale)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    path = out / "tiny_clip.pt"
    torch.save({"state_dict": model.state_dict(), "model": "curate-micro-vit", "step": steps}, path)
    return path
