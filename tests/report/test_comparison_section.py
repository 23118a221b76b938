"""The training comparison's figures come from a file a user may edit: every value is escaped."""

from __future__ import annotations

import pytest

from pipeline.ledger import LEDGER
from pipeline.report.run_tables import RunTables
from pipeline.report.sections import comparison_section
from pipeline.run_dir import RunDir

SCRIPT = "<script>alert(1)</script>"
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
    tables = RunTables(
        run=RunDir(tmp_path),
        stats={},
        ledger=LEDGER.empty_table(),
        candidates=None,
        annotations=None,
        selection=None,
        dedup=None,
        comparison=comparison,
    )
    _, body = comparison_section(tables)
    assert "<script>" not in body
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in body
