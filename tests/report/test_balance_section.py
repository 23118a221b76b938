"""The report's balance section: drawn from the balance stage's figures (t, head entries, the
distribution before and after, samples per outcome), and absent when balancing did not apply."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from pipeline.balance.kernels import distribution
from pipeline.report.balance_section import balance_section
from pipeline.report.run_tables import RunTables
from pipeline.run_dir import RunDir

LEDGER = pa.schema([(n, pa.string()) for n in ["uid", "stage", "reason", "detail"]])


def _tables(tmp_path, balance: dict | None) -> RunTables:
    stages = {} if balance is None else {"balance": balance}
    return RunTables(
        run=RunDir(tmp_path),
        stats={"stages": stages},
        ledger=LEDGER.empty_table(),
        candidates=None,
        annotations=None,
        selection=None,
        dedup=None,
        comparison=None,
    )


def _figures() -> dict:
    before = np.array([0, 5, 10, 40, 3000])
    after = np.array([0, 5, 10, 9, 11])
    return {
        "applied": True,
        "entries": 5,
        "matched_entries": 4,
        "matched_share": 0.875,
        "t": 10,
        "t_rule": "balance.t",
        "head_entries": 2,
        "rows_by_outcome": {"balance.head_entry": 3020, "head_draw": 20, "tail_entry": 15},
        "distribution": distribution(before, after, 10, ["a", "<b>", "c", "d", "e"]),
    }


def test_the_section_shows_t_head_entries_outcomes_and_both_plots(tmp_path):
    heading, html = balance_section(_tables(tmp_path, _figures()))
    assert heading == "Balance"
    assert html.count('<img class="plot"') == 2
    assert "<td>10</td>" in html and "t (balance.t)" in html  # t and how it was chosen
    assert "head entries (more than t matches)</td><td>2</td>" in html
    assert "<td>3,040</td>" in html and "<td>20</td>" in html  # head matches before, after
    assert "dropped: only head entries, the draw said drop</td><td>3,020</td>" in html
    assert "&lt;b&gt;" in html and "<b>" not in html  # entries are data: escaped


@pytest.mark.parametrize(
    "balance",
    [None, {"applied": False, "why": "balance.entries is empty: every selected sample kept"}],
)
def test_no_section_when_balancing_did_not_apply(tmp_path, balance):
    assert balance_section(_tables(tmp_path, balance)) is None
