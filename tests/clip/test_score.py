"""CLIP scores from a model trained on the raw synthetic web: true captions beat mismatched
ones, and scores computed inside a Spark task equal scores computed in-process."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from pipeline.clip.score import score_pairs
from pipeline.demo.synthetic_web import load_ground_truth
from tests.conftest import clip_overrides


def _samples(run, web):
    """Downloaded samples with their ground truth: (uid, image bytes, caption, noise, label)."""
    gt = {r["gt_id"]: r for r in load_ground_truth(web).to_pylist()}
    ann = {r["uid"]: r for r in pq.read_table(run.annotations).to_pylist()}
    out = []
    for shard in sorted(run.downloads.glob("*.parquet")):
        meta = pq.read_table(shard, columns=["uid", "caption", "gt_id", "status"]).to_pylist()
        with open(shard.with_suffix(".tar"), "rb") as tar:
            for m in meta:
                if m["uid"] not in ann:
                    continue
                tar.seek(ann[m["uid"]]["offset"])
                data = tar.read(ann[m["uid"]]["image_bytes"])
                g = gt[m["gt_id"]]
                out.append((m["uid"], data, m["caption"], g["noise"], g["label"]))
    return out, ann


def test_mismatched_captions_score_lower_than_true_ones(scored, web_and_server):
    run, config = scored
    web, _ = web_and_server
    samples, _ = _samples(run, web)
    mismatched = [s for s in samples if s[3] == "mismatched_caption"]
    assert len(mismatched) >= 8
    images = [s[1] for s in mismatched]
    given = score_pairs(images, [s[2] for s in mismatched], config.clip).scores
    true = score_pairs(images, [f"a photo of a {s[4]}" for s in mismatched], config.clip).scores
    fraction = float(np.mean(given < true))
    print(
        f"mismatched caption scores lower than the true caption for {fraction:.0%} of {len(mismatched)}"
    )
    assert fraction >= 0.75


def test_spark_scores_equal_in_process_scores(scored, web_and_server):
    run, config = scored
    web, _ = web_and_server
    samples, ann = _samples(run, web)
    local = score_pairs([s[1] for s in samples], [s[2] for s in samples], config.clip).scores
    spark = np.array([ann[s[0]]["clip_score"] for s in samples], dtype=np.float32)
    assert np.max(np.abs(local - spark)) <= 1e-4
    assert pa.types.is_float32(pq.read_table(run.annotations).schema.field("clip_score").type)


def test_embeddings_are_normalised_float16(tiny_checkpoint, web_and_server):
    from pipeline.config import load_config

    web, _ = web_and_server
    cfg = load_config(None, [*clip_overrides(tiny_checkpoint), "clip.save_embeddings=true"]).clip
    paths = [p for p in sorted((web.files_dir / "images").glob("*.jpg"))[:5]]
    result = score_pairs([p.read_bytes() for p in paths], ["a photo of a red circle"] * 5, cfg)
    image = np.frombuffer(result.image_embeddings[0], dtype=np.float16)
    text = np.frombuffer(result.text_embeddings[0], dtype=np.float16)
    assert image.shape == (64,) and abs(float(np.linalg.norm(image.astype(np.float32))) - 1) < 1e-2
    assert (
        abs(float(image.astype(np.float32) @ text.astype(np.float32)) - float(result.scores[0]))
        < 1e-2
    )
