"""Test-only LAION-style shards: synthetic class pictures (render_picture) with English captions
naming the class, as `00000.tar` (KEY.jpg / KEY.txt / KEY.json) plus sizes.json."""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

import numpy as np

from pipeline.demo.synthetic_web import CLASSES, english_caption, render_picture

# Fixed member mtime: the same arguments give byte-identical tars.
MTIME = 1_700_000_000


def _add(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mtime = MTIME
    tar.addfile(info, io.BytesIO(data))


def write_shards(
    out_dir: Path,
    n_samples: int,
    n_shards: int,
    seed: int = 0,
    image_size: int = 64,
    sizes_json: bool = True,
) -> Path:
    """Write `n_samples` pairs split evenly over `n_shards` tars in `out_dir`; returns out_dir."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    sizes: dict[str, int] = {}
    bounds = np.linspace(0, n_samples, n_shards + 1).astype(int)
    for shard in range(n_shards):
        name = f"{shard:05d}.tar"
        with tarfile.open(out_dir / name, "w", format=tarfile.USTAR_FORMAT) as tar:
            for index in range(bounds[shard], bounds[shard + 1]):
                rng = np.random.default_rng([seed, index])
                label = CLASSES[int(rng.integers(len(CLASSES)))]
                picture = render_picture(rng, label, image_size, image_size)
                buf = io.BytesIO()
                picture.save(buf, format="JPEG", quality=90)
                caption = english_caption(rng, label)
                key = f"{shard:05d}{index - bounds[shard]:04d}"
                meta = {"key": key, "caption": caption, "label": label, "width": image_size}
                _add(tar, f"{key}.jpg", buf.getvalue())
                _add(tar, f"{key}.json", json.dumps(meta).encode())
                _add(tar, f"{key}.txt", caption.encode())
        sizes[name] = int(bounds[shard + 1] - bounds[shard])
    if sizes_json:
        (out_dir / "sizes.json").write_text(json.dumps(sizes, indent=1))
    return out_dir
