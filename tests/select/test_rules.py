"""The select rules as plain functions over Arrow batches: text-based (whole-word term match)
and image-based (reference clusters), with exact reasons and details."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipeline.config import load_config
from pipeline.errors import InputError
from pipeline.select.rules import apply_rules, get_rule, image_cluster_count
from pipeline.select.top_fraction import Cut, reference_cut


class ArrayPool:
    """The select.rules.Pool protocol over in-memory columns (the plan's is Spark's)."""

    def __init__(self, embeddings: np.ndarray, scores: np.ndarray | None = None) -> None:
        self.embeddings = embeddings
        self.scores = scores

    def top_fraction(self, column: str, fraction: float, rule: str, denominator: str) -> Cut:
        assert self.scores is not None
        descending = -np.sort(-self.scores[~np.isnan(self.scores)])
        return reference_cut(
            fraction, denominator, len(self.scores), len(descending), lambda k: float(descending[k])
        )

    def count(self) -> int:
        return len(self.embeddings)

    def embedding_sample(self, wanted: int, seed: int) -> np.ndarray:
        order = np.random.default_rng(seed).permutation(len(self.embeddings))[:wanted]
        return self.embeddings[np.sort(order)]


def _f16(matrix: np.ndarray) -> list[bytes]:
    unit = matrix / np.linalg.norm(matrix, axis=1, keepdims=True)
    return [row.astype(np.float16).tobytes() for row in unit]


def _blobs(rng: np.random.Generator, centres: np.ndarray, per: int, spread: float) -> np.ndarray:
    return np.concatenate(
        [c + spread * rng.standard_normal((per, centres.shape[1])) for c in centres]
    )


def test_text_based_keeps_captions_naming_a_term(tmp_path):
    terms = tmp_path / "terms.txt"
    terms.write_text("red circle\nblue square\n")
    config = load_config(None, [f"select.text_based.terms={terms}"])
    rule = get_rule("text_based")
    params = rule.params(config, {"caption"}, ArrayPool(np.zeros((1, 2))))
    assert params.summary["term_count"] == 2 and params.summary["applied"] is True
    captions = [
        "a red circle",
        "Blue-Square on paper",
        "redcircle",
        None,
        "a red square",
        "RED CIRCLE",
    ]
    batch = pa.record_batch([pa.array(captions, pa.string())], names=["caption"])
    reasons, details = rule.decide(batch, params.values)
    assert reasons.to_pylist() == [
        None,
        None,
        "select.no_concept_match",
        "select.no_concept_match",
        "select.no_concept_match",
        None,
    ]
    assert details.to_pylist() == [None] * 6


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        # terms mode under entry_match.mode metaclip: case and "-" count.
        (["entry_match.mode=metaclip"], [None, None, "no", "no", "no", "no"]),
        # DataComp's rule needs no term file: circle.n.01, paper.n.01, dog.n.01 ("Dogs") and
        # child.n.01 ("kids") are ImageNet-21k synsets; "dog," has no sense, photograph.n.01
        # is not one.
        (["select.text_based.mode=datacomp"], [None, None, None, None, "no", None]),
    ],
)
def test_text_based_modes(tmp_path, overrides, expected):
    terms = tmp_path / "terms.txt"
    terms.write_text("red circle\nBlue-Square\n")
    config = load_config(None, [f"select.text_based.terms={terms}", *overrides])
    rule = get_rule("text_based")
    params = rule.params(config, {"caption"}, ArrayPool(np.zeros((1, 2))))
    captions = [
        "a red circle",
        "Blue-Square on paper",
        "RED CIRCLE",
        "two Dogs",
        "dog, photo",
        "kids in a church",
    ]
    batch = pa.record_batch([pa.array(captions, pa.string())], names=["caption"])
    reasons, _ = rule.decide(batch, params.values)
    codes = [None if r is None else "no" for r in reasons.to_pylist()]
    assert codes == expected
    assert set(reasons.to_pylist()) <= {None, "select.no_concept_match"}
    if "select.text_based.mode=datacomp" in overrides:
        assert params.summary["mode"] == "datacomp" and "terms" not in params.summary
    else:
        assert params.summary["matching"] == "metaclip"


def test_image_based_drops_the_clusters_no_reference_image_falls_in(tmp_path):
    rng = np.random.default_rng(0)
    dim = 16
    centres = 5 * np.eye(dim)[:4]  # four well-separated concepts
    pool = _blobs(rng, centres, 50, 0.3)  # rows 0-99 concepts 0-1, rows 100-199 concepts 2-3
    reference = _blobs(rng, centres[:2], 5, 0.3)  # reference images of concepts 0 and 1 only
    ref_path = tmp_path / "reference.parquet"
    pq.write_table(pa.table({"image_embedding": pa.array(_f16(reference), pa.binary())}), ref_path)
    config = load_config(
        None, [f"select.image_based.reference={ref_path}", "select.image_based.clusters=4"]
    )
    rule = get_rule("image_based")
    unit = np.asarray([np.frombuffer(b, np.float16) for b in _f16(pool)], np.float32)
    params = rule.params(config, {"image_embedding"}, ArrayPool(unit))
    assert params.summary["clusters"] == 4
    assert params.summary["target_clusters"] == 2
    assert params.summary["reference_images"] == 10
    assert params.summary["sample_on_target"] == 0.5
    embeddings = pa.array([*_f16(pool), None], pa.binary())
    batch = pa.record_batch([embeddings], names=["image_embedding"])
    reasons, details = rule.decide(batch, params.values)
    got = reasons.to_pylist()
    assert got[:100] == [None] * 100
    assert got[100:200] == ["select.off_target_cluster"] * 100
    assert got[200] == "select.no_embedding"
    assert all(d.startswith("cluster ") for d in details.to_pylist()[100:200])


def test_image_based_without_embeddings_says_why():
    params = get_rule("image_based").params(
        load_config(), {"clip_score"}, ArrayPool(np.zeros((0, 2)))
    )
    assert params.values is None
    assert params.summary == {
        "applied": False,
        "why": "annotations have no image_embedding (annotate ran without CLIP)",
    }


def test_image_based_reference_must_exist(tmp_path):
    config = load_config(None, [f"select.image_based.reference={tmp_path / 'absent'}"])
    pool = ArrayPool(np.eye(4, dtype=np.float32))
    with pytest.raises(InputError, match="no such file or folder"):
        get_rule("image_based").params(config, {"image_embedding"}, pool)


@pytest.mark.parametrize(
    ("n", "clusters", "per", "expected"),
    [
        (128_000_000, 0, 1_300, 98_462),
        (2_600, 0, 1_300, 2),
        (10, 0, 1_300, 1),
        (10, 50, 1_300, 10),
        (1000, 7, 1, 7),
    ],
)
def test_image_cluster_count(n, clusters, per, expected):
    assert image_cluster_count(n, clusters, per) == expected


def test_rules_compose_first_failure_names_the_reason(tmp_path):
    terms = tmp_path / "terms.txt"
    terms.write_text("cat\n")
    config = load_config(None, [f"select.text_based.terms={terms}", "clip.threshold=0.5"])
    pool = ArrayPool(np.zeros((1, 2)))
    clip, text = get_rule("clip_score"), get_rule("text_based")
    rules = [
        (clip, clip.params(config, {"clip_score"}, pool).values),
        (text, text.params(config, {"caption"}, pool).values),
    ]
    batch = pa.record_batch(
        [
            pa.array([0.9, 0.1, 0.9, 0.1], pa.float32()),
            pa.array(["a cat", "a cat", "a dog", "a dog"]),
        ],
        names=["clip_score", "caption"],
    )
    reasons, _ = apply_rules(batch, rules)
    assert reasons.to_pylist() == [
        None,
        "select.clip_score",
        "select.no_concept_match",
        "select.clip_score",
    ]


@pytest.mark.parametrize(
    ("scores", "expected"),
    [
        # NaN and infinite scores are unscored: select.no_clip_score, never kept.
        (
            [float("nan"), float("inf"), None, 0.5],
            [("select.no_clip_score", None)] * 3 + [(None, None)],
        ),
        # float32 scores meet the threshold as float32 (0.22 -> 0.2199999988): DataComp keeps
        # a score stored as 0.22; the float32 just below it is dropped.
        (
            [0.22, 0.21999998, 0.23],
            [(None, None), ("select.clip_score", "0.2200 < 0.2200"), (None, None)],
        ),
    ],
)
def test_clip_rule_non_finite_and_float32(scores, expected):
    config = load_config(None, ["clip.threshold=0.22"])
    rule = get_rule("clip_score")
    params = rule.params(config, {"clip_score"}, ArrayPool(np.zeros((1, 2))))
    batch = pa.record_batch([pa.array(scores, pa.float32())], names=["clip_score"])
    reasons, details = rule.decide(batch, params.values)
    assert list(zip(reasons.to_pylist(), details.to_pylist(), strict=True)) == expected
