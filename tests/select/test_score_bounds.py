"""select.min / select.max on any score column (the score_bounds rule): exact codes and counts
over Arrow, the rule's place among the listed rules, and a stage run on a candidate score column
carried into select (fastText's lang_score), with an unknown column refused."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipeline.config import load_config
from pipeline.errors import ConfigError
from pipeline.ledger import read_ledger
from pipeline.runner import run_stage
from pipeline.select.rules import get_rule
from tests.conftest import FINISHED, copy_run

BATCH = pa.record_batch(
    {
        "score_aesthetic": pa.array([6.0, 4.9, 5.0, None, 7.0, float("nan")], pa.float32()),
        "score_nsfw": pa.array([0.1, 0.2, 0.6, 0.1, float("inf"), 0.0], pa.float64()),
    }
)


@pytest.mark.parametrize(
    ("settings", "reasons", "details"),
    [
        (
            ["select.min={score_aesthetic: 5}"],
            [None, "select.score_below", None, "select.no_score", None, "select.no_score"],
            [
                None,
                "score_aesthetic 4.9 < 5",
                None,
                "score_aesthetic is null or NaN",
                None,
                "score_aesthetic is null or NaN",
            ],
        ),
        (
            ["select.max={score_nsfw: 0.5}"],
            [None, None, "select.score_above", None, "select.no_score", None],
            [None, None, "score_nsfw 0.6 > 0.5", None, "score_nsfw is infinite", None],
        ),
        (  # lower bounds first, then upper: the first failure names the row
            ["select.min={score_aesthetic: 5}", "select.max={score_nsfw: 0.15}"],
            [
                None,
                "select.score_below",
                "select.score_above",
                "select.no_score",
                "select.no_score",
                "select.no_score",
            ],
            [
                None,
                "score_aesthetic 4.9 < 5",
                "score_nsfw 0.6 > 0.15",
                "score_aesthetic is null or NaN",
                "score_nsfw is infinite",
                "score_aesthetic is null or NaN",
            ],
        ),
    ],
)
def test_bounds_over_arrow(settings, reasons, details):
    config = load_config(None, settings)
    rule = get_rule("score_bounds")
    params = rule.params(config, set(BATCH.schema.names), pool=None)
    reason, detail = rule.decide(BATCH, params.values)
    assert reason.to_pylist() == reasons
    assert detail.to_pylist() == details


def test_the_rule_runs_where_listed_or_after_the_listed_ones():
    assert load_config(None, []).select.effective_rules == ("clip_score",)
    bounded = load_config(None, ["select.max={score_nsfw: 0.5}"])
    assert bounded.select.effective_rules == ("clip_score", "score_bounds")
    placed = load_config(
        None, ["select.max={score_nsfw: 0.5}", "select.rules=[score_bounds, clip_score]"]
    )
    assert placed.select.effective_rules == ("score_bounds", "clip_score")
    with pytest.raises(ConfigError, match=r"select\.min\.x: expected a number"):
        load_config(None, ["select.min={x: high}"])


def test_a_stage_run_on_a_carried_score_column(finished, tmp_path):
    run = copy_run(finished.root, tmp_path / "run")
    pooled = {r["uid"] for r in pq.read_table(run.dedup, columns=["uid"]).to_pylist()}
    scores = {
        r["uid"]: r["lang_score"]
        for r in pq.read_table(run.candidates, columns=["uid", "lang_score"]).to_pylist()
        if r["uid"] in pooled
    }
    bound = sorted(scores.values())[len(scores) // 3]  # about a third below it
    below = sum(1 for v in scores.values() if v < pa.scalar(bound, pa.float32()).as_py())
    config = load_config(None, [*FINISHED, f"select.min={{lang_score: {bound!r}}}"])
    entry = run_stage("select", run.root, config)
    assert entry["rules"]["score_bounds"]["applied"] is True
    assert entry["dropped_by_reason"] == {"select.score_below": below} and below > 0
    assert entry["rows_kept"] == len(pooled) - below
    ledger = read_ledger(run.ledger_for("select")).to_pylist()
    assert all(r["detail"].startswith("lang_score ") for r in ledger)
    with pytest.raises(ConfigError, match="no column 'score_nsfw' in the annotations"):
        run_stage("select", run.root, load_config(None, [*FINISHED, "select.max={score_nsfw: 1}"]))
