"""The balance plan on 100k synthetic captions over 200 Zipf-popular entries: every entry's kept
matches within sampling error of the expected keep probabilities, exact figures, the same
keep-list for any partitioning, unmatched samples dropped or kept per the setting, and nothing
applied without an entry list."""

from __future__ import annotations

import dataclasses
from collections import Counter

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipeline.balance.plan import decide
from pipeline.config import load_config

ROWS = 100_000
ENTRIES = 200
T = 300
UNMATCHED_SHARE = 0.05
SECOND_ENTRY_SHARE = 0.3


@dataclasses.dataclass(frozen=True)
class Synthetic:
    """Captions naming one or two entries `w000`...`w199` (Zipf popularity), or none."""

    selection: str
    candidates: str
    entries_file: str
    ids: list[tuple[int, ...]]  # the entries each row names, as generated
    uids: list[str]


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory) -> Synthetic:
    base = tmp_path_factory.mktemp("balance_synthetic")
    rng = np.random.default_rng(7)
    names = [f"w{i:03d}" for i in range(ENTRIES)]
    weights = 1 / np.arange(1, ENTRIES + 1)
    weights /= weights.sum()
    first = rng.choice(ENTRIES, size=ROWS, p=weights)
    second = rng.choice(ENTRIES, size=ROWS, p=weights)
    kind = rng.random(ROWS)
    captions, ids = [], []
    for i in range(ROWS):
        if kind[i] < UNMATCHED_SHARE:
            captions.append(f"untitled image {i}")
            ids.append(())
        elif kind[i] < UNMATCHED_SHARE + SECOND_ENTRY_SHARE and second[i] != first[i]:
            # Upper case and punctuation: matching is case-folded and whole-word.
            captions.append(f"A {names[first[i]].upper()}, next to a {names[second[i]]}.")
            ids.append(tuple(sorted((int(first[i]), int(second[i])))))
        else:
            captions.append(f"a photo of {names[first[i]]} on grey")
            ids.append((int(first[i]),))
    uids = [f"{i:032x}" for i in rng.permutation(ROWS)]
    pq.write_table(
        pa.table({"uid": uids, "clip_score": rng.random(ROWS).astype(np.float32)}),
        base / "selection.parquet",
    )
    pq.write_table(pa.table({"uid": uids, "caption": captions}), base / "candidates.parquet")
    entries_file = base / "entries.txt"
    entries_file.write_text("# synthetic entries\n" + "\n".join(names) + "\n")
    return Synthetic(
        str(base / "selection.parquet"),
        str(base / "candidates.parquet"),
        str(entries_file),
        ids,
        uids,
    )


def _config(data: Synthetic, *more: str):
    # The captions are built for case-folded matching (upper case, punctuation, a # comment
    # line); MetaCLIP's matcher is tested in tests/balance/test_stage.py and test_entry_match.py.
    return load_config(
        None,
        [
            f"balance.entries={data.entries_file}",
            f"balance.t={T}",
            "entry_match.mode=casefold",
            *more,
        ],
    )


def _decide(spark, data: Synthetic, config, partitions: int = 4):
    inputs = {
        "select": spark.read.parquet(data.selection).repartition(partitions),
        "candidates": spark.read.parquet(data.candidates).repartition(max(1, partitions - 1)),
    }
    decisions = decide(inputs, config)
    rows = decisions.frame.toArrow().sort_by("uid").to_pylist()
    return rows, decisions.figures


@pytest.fixture(scope="module")
def decided(spark, synthetic):
    return _decide(spark, synthetic, _config(synthetic))


def _counts(ids: list[tuple[int, ...]]) -> np.ndarray:
    counts = np.zeros(ENTRIES, dtype=np.int64)
    for row in ids:
        counts[list(row)] += 1
    return counts


def test_every_entry_keeps_its_expected_share_within_sampling_error(synthetic, decided):
    rows, figures = decided
    counts = _counts(synthetic.ids)
    entry_p = np.minimum(1.0, T / np.maximum(counts, 1))
    kept = {r["uid"] for r in rows if r["reason"] is None}
    expected = np.zeros(ENTRIES)
    variance = np.zeros(ENTRIES)
    got = np.zeros(ENTRIES)
    single_kept, single_total = Counter(), Counter()
    for uid, ids in zip(synthetic.uids, synthetic.ids, strict=True):
        if not ids:
            continue
        p = 1 - np.prod([1 - entry_p[e] for e in ids])
        for e in ids:
            expected[e] += p
            variance[e] += p * (1 - p)
            got[e] += uid in kept
        if len(ids) == 1:
            single_total[ids[0]] += 1
            single_kept[ids[0]] += uid in kept
    # Kept matches per entry: within 4 sigma of the binomial sum (exact where nothing is drawn).
    assert np.all(np.abs(got - expected) <= 4 * np.sqrt(variance) + 1e-9)
    # Captions naming one entry: the kept share is min(1, t / count) within 4 sigma.
    for e, n in single_total.items():
        p = entry_p[e]
        assert abs(single_kept[e] / n - p) <= 4 * np.sqrt(p * (1 - p) / n) + 1e-12, e
    # Head entries end near t matches; tail entries keep every match.
    head = counts > T
    assert head.sum() > 20 and (~head & (counts > 0)).sum() > 20
    assert np.all(got[~head] == counts[~head])
    after = {r["entry"]: r["after"] for r in figures["distribution"]["top"]}
    assert after == {f"w{e:03d}": int(got[e]) for e in np.argsort(-counts, kind="stable")[:10]}


def test_figures_are_exact(synthetic, decided):
    rows, figures = decided
    counts = _counts(synthetic.ids)
    matched = sum(1 for ids in synthetic.ids if ids)
    reasons = Counter(r["reason"] for r in rows)
    assert len(rows) == ROWS and len({r["uid"] for r in rows}) == ROWS
    assert figures["applied"] is True
    assert figures["entries"] == ENTRIES
    assert figures["matched_entries"] == int((counts > 0).sum())
    assert figures["matched_share"] == round(matched / ROWS, 6)
    assert (figures["t"], figures["t_rule"]) == (T, "balance.t")
    assert figures["head_entries"] == int((counts > T).sum())
    assert reasons["balance.no_entry_match"] == ROWS - matched
    outcomes = figures["rows_by_outcome"]
    assert outcomes["balance.no_entry_match"] == ROWS - matched
    assert outcomes["balance.head_entry"] == reasons["balance.head_entry"]
    assert outcomes["tail_entry"] + outcomes["head_draw"] == reasons[None]
    assert sum(outcomes.values()) == ROWS
    dist = figures["distribution"]
    assert dist["head"]["matches_before"] == int(counts[counts > T].sum())
    assert dist["tail"]["matches_before"] == dist["tail"]["matches_after"]
    assert sum(b["entries_before"] for b in dist["histogram"]) == int((counts > 0).sum())
    assert dist["rank_curve"][0] == {
        "rank": 1,
        "before": int(counts.max()),
        "after": dist["rank_curve"][0]["after"],
    }
    # Every drop of a matched sample is a head-entry drop whose detail names its top entry.
    for r in rows:
        if r["reason"] == "balance.head_entry":
            assert r["detail"].startswith("keep probability ") and "most matched 'w" in r["detail"]


def test_the_keep_list_does_not_depend_on_partitioning(spark, synthetic, decided):
    rows, figures = decided
    for partitions in (1, 7):
        again, again_figures = _decide(spark, synthetic, _config(synthetic), partitions)
        assert again == rows
        assert again_figures == figures


def test_unmatched_samples_are_kept_with_keep_unmatched(spark, synthetic, decided):
    rows, _ = decided
    kept_too, figures = _decide(spark, synthetic, _config(synthetic, "balance.keep_unmatched=true"))
    unmatched = {u for u, ids in zip(synthetic.uids, synthetic.ids, strict=True) if not ids}
    assert figures["rows_by_outcome"]["unmatched"] == len(unmatched)
    for before, after in zip(rows, kept_too, strict=True):
        if before["uid"] in unmatched:
            assert (before["reason"], after["reason"]) == ("balance.no_entry_match", None)
        else:
            assert before == after


def test_a_seed_changes_the_draw_not_the_expected_shares(spark, synthetic, decided):
    rows, figures = decided
    other, other_figures = _decide(spark, synthetic, _config(synthetic, "balance.seed=1"))
    assert [r["reason"] for r in other] != [r["reason"] for r in rows]
    assert other_figures["head_entries"] == figures["head_entries"]


def test_without_an_entry_list_every_sample_is_kept(spark, synthetic):
    inputs = {
        "select": spark.read.parquet(synthetic.selection),
        "candidates": spark.read.parquet(synthetic.candidates),
    }
    decisions = decide(inputs, load_config())
    assert decisions.figures == {
        "applied": False,
        "why": "balance.entries is empty: every selected sample kept",
    }
    frame = decisions.frame.toArrow()
    assert frame.num_rows == ROWS and frame.column("reason").null_count == ROWS
    assert frame.schema.names == ["uid", "clip_score", "reason", "detail"]


def test_auto_t_is_chosen_from_the_pool_and_said(spark, synthetic):
    _, figures = _decide(
        spark, synthetic, load_config(None, [f"balance.entries={synthetic.entries_file}"])
    )
    assert figures["t"] == 5  # round(100,000 / 20,000)
    assert figures["t_rule"] == "auto: max(1, round(100000 rows / 20,000))"
