"""Evaluation's pieces on hand-made features and files: caption retrieval ranked within
galleries (exact recalls and per-pair hits), and the eval set's optional caption and gallery
columns."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch

from pipeline.errors import InputError
from pipeline.train.evaluate import caption_retrieval, load_zero_shot_set


def _unit(*rows):
    return torch.nn.functional.normalize(torch.tensor(rows, dtype=torch.float32), dim=-1)


# Four pairs; galleries {0, 1} and {2, 3}. Image 2 is closer to caption 0 (cosine 0.89) than to
# its own (0.45), and caption 2 is closer to image 3 (0.71) than to its own; image 3 and caption
# 3 are in gallery 2 with them, caption 0 is not.
IMAGES = _unit([1, 0, 0], [0, 1, 0], [2, 0, 1], [0, 1, 1])
TEXTS = _unit([1, 0, 0], [0, 1, 0], [0, 0, 1], [0, 1, 1])


@pytest.mark.parametrize(
    ("galleries", "expected"),
    [
        # One gallery: image 2 ranks caption 0 first, caption 2 ranks image 3 first.
        (
            (0, 0, 0, 0),
            {"eval_i2t_hits": [1, 1, 0, 1], "eval_t2i_hits": [1, 1, 0, 1], "eval_gallery_size": 4},
        ),
        # Two galleries: caption 0 is out of image 2's reach; image 3 still outranks for caption 2.
        (
            (7, 7, 9, 9),
            {"eval_i2t_hits": [1, 1, 1, 1], "eval_t2i_hits": [1, 1, 0, 1], "eval_gallery_size": 2},
        ),
    ],
)
def test_caption_retrieval_ranks_within_galleries(galleries, expected):
    got = caption_retrieval(IMAGES, TEXTS, galleries)
    for key, value in expected.items():
        assert got[key] == value
    assert got["eval_i2t_r1"] == sum(expected["eval_i2t_hits"]) / 4
    assert got["eval_t2i_r1"] == sum(expected["eval_t2i_hits"]) / 4
    # Every gallery holds at most four pairs: at 5 each pair is found.
    assert got["eval_i2t_r5"] == got["eval_t2i_r5"] == 1.0
    assert got["eval_retrieval_pairs"] == 4


def _eval_folder(tmp_path, columns):
    (tmp_path / "a.jpg").write_bytes(b"x")
    (tmp_path / "b.jpg").write_bytes(b"x")
    pq.write_table(pa.table(columns), tmp_path / "eval.parquet")
    return tmp_path


@pytest.mark.parametrize(
    ("extra", "captions", "galleries"),
    [
        ({}, None, None),
        ({"caption": ["a red circle", "a blue star"]}, ("a red circle", "a blue star"), (0, 0)),
        ({"caption": ["x", "y"], "gallery": [3, 4]}, ("x", "y"), (3, 4)),
    ],
)
def test_the_eval_set_reads_its_optional_captions(tmp_path, extra, captions, galleries):
    folder = _eval_folder(
        tmp_path, {"path": ["a.jpg", "b.jpg"], "label": ["red circle", "blue star"], **extra}
    )
    data = load_zero_shot_set(folder)
    assert (data.captions, data.galleries) == (captions, galleries)
    assert data.labels == ("red circle", "blue star") and len(data.digest) == 64


def test_an_eval_set_without_labels_is_refused(tmp_path):
    folder = _eval_folder(tmp_path, {"path": ["a.jpg", "b.jpg"]})
    with pytest.raises(InputError, match="lacks column"):
        load_zero_shot_set(folder)
