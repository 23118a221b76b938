"""The training comparison's figures come from a file a user may edit: every value is escaped."""

from __future__ import annotations

import pytest

from pipeline.ledger import LEDGER
from pipeline.report.run_tables import RunTables
from pipeline.report.sections import comparison_section
from pipeline.run_dir import RunDir

SCRIPT = "<script>alert(1)</script>"


def _tables(tmp_path, comparison: dict) -> RunTables:
    """A run with nothing but a comparison."""
    return RunTables(
        run=RunDir(tmp_path),
        stats={},
        ledger=LEDGER.empty_table(),
        candidates=None,
        annotations=None,
        selection=None,
        dedup=None,
        comparison=comparison,
    )


FIELDS = ("model", "steps", "batch_size", "seed", "eval_images", "eval_classes")


@pytest.mark.parametrize("field", FIELDS)
def test_every_comparison_field_is_escaped(tmp_path, field):
    comparison = {
        "model": "curate-tiny-vit",
        "steps": 300,
        "batch_size": 64,
        "seed": 0,
        "eval_images": 200,
        "eval_classes": 10,
        "tail_classes": ["kite"],
        "runs": {"all": {"selection": "everything", "steps": 300}},
    }
    comparison[field] = SCRIPT
    _, body = comparison_section(_tables(tmp_path, comparison))
    assert "<script>" not in body
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in body


def _difference(mean, low, high, label):
    significant = low > 0 or high < 0
    return {"mean": mean, "low": low, "high": high, "confidence": 0.95, "seeds": 3} | {
        "images": 720,
        "significant": significant,
        "label": label,
    }


def test_the_differences_to_the_baseline_are_tabled_and_plotted(tmp_path):
    comparison = {
        "model": "m",
        "steps": 1,
        "batch_size": 1,
        "seed": 0,
        "eval_images": 720,
        "eval_classes": 36,
        "tail_classes": [],
        "baseline": "raw",
        "runs": {"raw": {"selection": "raw"}, "clip": {"selection": "clip_score"}},
        "differences": {
            "clip": {
                "top1": _difference(0.041, 0.012, 0.070, "top-1"),
                "top1_tail": _difference(-0.005, -0.031, 0.021, "tail top-1"),
                "i2t_r1": _difference(0.022, 0.004, 0.040, "image->text R@1"),
            }
        },
    }
    _, body = comparison_section(_tables(tmp_path, comparison))
    assert "Against the baseline (raw)" in body and "3 seed(s), 720 images" in body
    assert '<td class="text">clip</td><td class="text">top-1</td><td>4.100</td>' in body
    assert "<td>[+1.2, +7.0]</td><td>yes</td>" in body
    assert "<td>[-3.1, +2.1]</td><td>no difference detected</td>" in body
    # Every difference comparison.json holds, named by its label (escaped).
    assert '<td class="text">image-&gt;text R@1</td><td>2.200</td><td>[+0.4, +4.0]</td>' in body
    assert 'alt="differences to the baseline with their intervals"' in body
