"""The training data stream: shard specs, batches independent of the process layout, and exact
continuation from saved stream positions (with and without sizes.json)."""

from __future__ import annotations

import io
import itertools
import tarfile

import open_clip
import pytest
import torch

from pipeline.clip.models import register_project_configs
from pipeline.errors import InputError
from pipeline.train.data import Batches, StreamPlan, TrainStream, probe, read_pairs
from pipeline.train.shards import resolve_shards
from tests.train.shards import write_shards


@pytest.fixture(scope="module")
def transforms():
    register_project_configs()
    _, train, _ = open_clip.create_model_and_transforms("curate-tiny-vit")
    return train, open_clip.get_tokenizer("curate-tiny-vit")


@pytest.fixture(scope="module")
def small_shards(tmp_path_factory):
    """5 shards of 8 pairs: a pass of a slot is a few steps, so tests cross pass boundaries."""
    return write_shards(tmp_path_factory.mktemp("small"), n_samples=40, n_shards=5, seed=7)


def _plan(folder, slots, resampled=True, seed=5):
    return StreamPlan(resolve_shards(folder), slots, seed, resampled, shuffle_buffer=6)


def _stream(plan, transforms, rank, workers, rank_batch, starts):
    preprocess, tokenizer = transforms
    return TrainStream(plan, rank, workers, rank_batch, starts, preprocess, tokenizer)


def test_resolve_folder_pattern_and_sizes(shards):
    by_folder = resolve_shards(shards)
    by_pattern = resolve_shards(f"{shards}/{{00000..00004}}.tar")
    assert by_folder.urls == by_pattern.urls
    assert [u.rsplit("/", 1)[1] for u in by_folder.urls] == [f"{i:05d}.tar" for i in range(5)]
    assert by_folder.num_samples == 1600
    train, held = by_folder.split(1)
    assert len(train.urls) == 4 and held.urls == by_folder.urls[-1:]


def test_bad_shard_specs(tmp_path, shards):
    with pytest.raises(InputError, match=r"no \.tar file"):
        resolve_shards(tmp_path)
    with pytest.raises(InputError, match="do not exist"):
        resolve_shards(f"{shards}/{{00000..00009}}.tar")
    with pytest.raises(InputError, match="no shards"):
        resolve_shards("")
    (tmp_path / "00000.tar").write_bytes(b"")
    with tarfile.open(tmp_path / "00000.tar", "w") as tar:
        info = tarfile.TarInfo("0001.json")
        info.size = 2
        tar.addfile(info, io.BytesIO(b"{}"))
    with pytest.raises(InputError, match="no sample with an image"):
        probe(resolve_shards(tmp_path))


def test_global_batch_is_the_same_for_one_process_with_two_workers_and_two_processes(
    small_shards, transforms
):
    plan = _plan(small_shards, slots=2)
    one = Batches(_stream(plan, transforms, 0, 2, 8, [0, 0]), workers=2)
    ranks = [iter(_stream(plan, transforms, r, 0, 4, [0, 0])) for r in (0, 1)]
    try:
        for _ in range(8):  # two passes and more
            images, tokens = next(one)
            parts = [next(r) for r in ranks]
            assert torch.equal(images, torch.cat([p[0] for p in parts]))
            assert torch.equal(tokens, torch.cat([p[1] for p in parts]))
    finally:
        one.close()


@pytest.mark.parametrize("resampled", [True, False])
@pytest.mark.parametrize("with_sizes", [True, False])
def test_resume_from_positions_continues_exactly(tmp_path, transforms, resampled, with_sizes):
    folder = write_shards(tmp_path, n_samples=40, n_shards=5, seed=7, sizes_json=with_sizes)
    plan = _plan(folder, slots=2, resampled=resampled)
    stream = _stream(plan, transforms, 0, 0, 4, [0, 0])
    batches = Batches(stream, workers=0)
    # 4 samples per step from an 8- to 24-sample pass: step 7 starts past the first pass.
    list(itertools.islice(batches, 7))
    positions = [batches.positions.get(s, 0) for s in range(2)]
    expected = list(itertools.islice(batches, 4))
    resumed = Batches(_stream(plan, transforms, 0, 0, 4, positions), workers=0)
    for (img_a, tok_a), (img_b, tok_b) in zip(expected, itertools.islice(resumed, 4), strict=True):
        assert torch.equal(img_a, img_b)
        assert torch.equal(tok_a, tok_b)


def test_corrupt_image_is_skipped_and_counted_in_the_position(tmp_path, transforms):
    folder = write_shards(tmp_path, n_samples=6, n_shards=1, seed=1)
    with tarfile.open(folder / "00000.tar", "a") as tar:
        for name, data in (("000000099.jpg", b"not a jpeg"), ("000000099.txt", b"a red star")):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    plan = StreamPlan(resolve_shards(folder), 1, 0, False, shuffle_buffer=1)
    batches = Batches(_stream(plan, transforms, 0, 0, 7, [0]), workers=0)
    images, tokens = next(batches)
    assert images.shape[0] == tokens.shape[0] == 7
    # 7 good samples plus the corrupt one were consumed (the pass wrapped round once).
    assert batches.positions[0] == 8


def test_read_pairs_in_order(small_shards):
    pairs = read_pairs(resolve_shards(small_shards), limit=10)
    assert len(pairs) == 10
    assert all(img[:2] == b"\xff\xd8" and isinstance(text, str) and text for img, text in pairs)


def test_draft_decode_keeps_the_model_input_and_stays_close(transforms):
    """A JPEG decoded in draft mode (at >= 2x the model's side) gives the same tensor shape and
    nearly the same pixels as a full decode."""
    from PIL import Image

    from pipeline.train.data import Decoder
    from pipeline.train.run import draft_side

    register_project_configs()
    model = open_clip.create_model("curate-tiny-vit")
    side = draft_side(model)
    assert side == 128  # curate-tiny-vit reads 64 px
    picture = Image.radial_gradient("L").convert("RGB").resize((416, 480))
    data = io.BytesIO()
    picture.save(data, format="JPEG", quality=95)
    sample = {"jpg": data.getvalue(), "txt": b"a gradient"}
    _, _, preprocess_val = open_clip.create_model_and_transforms("curate-tiny-vit")
    full = Decoder(preprocess_val, seed=0, slot=0)(sample, 0)
    draft = Decoder(preprocess_val, seed=0, slot=0, draft_side=side)(sample, 0)
    assert full[0].shape == draft[0].shape == (3, 64, 64) and draft[1] == "a gradient"
    assert (full[0] - draft[0]).abs().mean().item() < 0.05
