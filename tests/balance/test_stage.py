"""The balance stage through the runner on the shared pHash-only run: a pass-through without an
entry list, MetaCLIP balancing with one (exact counts against an independent matching of the
selected captions, the accounting identity, reason codes), a changed t or an edited entry file
rerunning balance and shard, and a missing entry file refused before anything runs."""

from __future__ import annotations

import logging
from collections import Counter

import numpy as np
import pyarrow.parquet as pq
import pytest

from pipeline.cli import main
from pipeline.config import load_config
from pipeline.entry_match import metaclip_spacing, normalize
from pipeline.ledger import read_ledger
from pipeline.runner import run_stage, run_stages, stage_state
from pipeline.stages import get_stage
from tests.conftest import FINISHED, LOCAL_DOWNLOAD, copy_run

T = 3


@pytest.fixture
def run(finished, tmp_path):
    return copy_run(finished.root, tmp_path / "run")


def _uids(folder) -> list[str]:
    return sorted(pq.read_table(folder, columns=["uid"]).column("uid").to_pylist())


def _selected_captions(run) -> dict[str, str]:
    selected = set(_uids(run.selection))
    table = pq.read_table(run.candidates, columns=["uid", "caption"]).to_pylist()
    return {r["uid"]: r["caption"] for r in table if r["uid"] in selected}


def _entry_file(run, tmp_path) -> tuple[str, list[str]]:
    """The 30 words most common in the selected captions (ties alphabetical), and one no
    caption has: some head entries at t = 3, some tail ones, some captions matching none."""
    words = Counter(w for c in _selected_captions(run).values() for w in set(normalize(c).split()))
    entries = [w for w, _ in sorted(words.items(), key=lambda kv: (-kv[1], kv[0]))[:30]]
    entries.append("zzz never")
    path = tmp_path / "entries.txt"
    path.write_text("\n".join(entries) + "\n")
    return str(path), entries


def test_without_an_entry_list_balance_keeps_every_selected_sample(finished):
    entry = finished.stats()["stages"]["balance"]
    assert entry["applied"] is False and "balance.entries is empty" in entry["why"]
    assert (
        entry["rows_in"] == entry["rows_kept"] == finished.stats()["stages"]["select"]["rows_kept"]
    )
    assert entry["rows_dropped"] == 0
    assert _uids(finished.balanced) == _uids(finished.selection)
    assert pq.read_table(finished.balanced).schema.names == ["uid", "clip_score"]
    assert finished.stats()["stages"]["shard"]["rows_in"] == entry["rows_kept"]


# The matching each mode promises, written without the automaton: " entry " occurs in the
# caption as MetaCLIP's reference spaces it (the default for balance), or case-folded.
ORACLES = {
    "metaclip": ([], metaclip_spacing),
    "casefold": (["entry_match.mode=casefold"], normalize),
}


@pytest.mark.parametrize("mode", list(ORACLES))
def test_balancing_drops_head_entry_samples_with_exact_counts(run, tmp_path, mode):
    path, entries = _entry_file(run, tmp_path)
    more, pad = ORACLES[mode]
    config = load_config(None, [*FINISHED, f"balance.entries={path}", f"balance.t={T}", *more])
    entry = run_stage("balance", run.root, config)
    assert "shard" not in run.stats()["stages"]  # its keep-list changed: shard reruns
    assert entry["matching"] == mode

    captions = _selected_captions(run)
    ids = {
        uid: [i for i, e in enumerate(entries) if f" {e} " in pad(c)] for uid, c in captions.items()
    }
    counts = np.zeros(len(entries), dtype=np.int64)
    for row in ids.values():
        counts[row] += 1
    kept = _uids(run.balanced)
    ledger = read_ledger(run.ledger_for("balance")).to_pylist()
    dropped = {r["uid"]: r["reason"] for r in ledger}

    # The accounting identity, on disk and in stats.json.
    assert entry["rows_in"] == len(captions) == len(kept) + len(ledger)
    assert entry["rows_kept"] == len(kept) and not set(kept) & set(dropped)
    assert {r["stage"] for r in ledger} == {"balance"}
    # Exact figures, from the independent matching above.
    assert entry["applied"] is True and (entry["t"], entry["t_rule"]) == (T, "balance.t")
    assert entry["entries"] == len(entries)
    assert entry["head_entries"] == int((counts > T).sum()) > 0
    assert entry["matched_entries"] == int((counts > 0).sum()) < len(entries)
    unmatched = {u for u, row in ids.items() if not row}
    assert entry["matched_share"] == round(1 - len(unmatched) / len(ids), 6)
    assert {u for u, r in dropped.items() if r == "balance.no_entry_match"} == unmatched
    assert entry["dropped_by_reason"] == dict(sorted(Counter(dropped.values()).items()))
    # A sample is dropped for its head entries only when all its entries are heads; a sample
    # with a tail entry is always kept.
    for uid, row in ids.items():
        if row and (counts[row] <= T).any():
            assert uid in kept
        elif uid in dropped:
            assert dropped[uid] == "balance.head_entry"
    assert entry["dropped_by_reason"].get("balance.head_entry", 0) > 0
    # Then shard writes exactly the balanced keep-list.
    shard = run_stage("shard", run.root, config)
    assert shard["rows_in"] == shard["rows_kept"] == len(kept)
    sharded = pq.read_table([str(p) for p in sorted(run.shards.glob("*.parquet"))])
    assert sorted(sharded.column("uid").to_pylist()) == kept


def test_a_changed_t_or_entry_file_reruns_balance_and_shard(run, tmp_path, caplog):
    path, _ = _entry_file(run, tmp_path)
    made_with = [*LOCAL_DOWNLOAD, *FINISHED, f"balance.entries={path}"]
    later = ["balance", "shard"]
    run_stages(run.root, load_config(None, [*made_with, f"balance.t={T}"]), names=later)
    first = run.stats()["stages"]
    caplog.set_level(logging.INFO, logger="pipeline")
    run_stages(run.root, load_config(None, [*made_with, "balance.t=6"]), names=later)
    assert (
        f"balance: settings changed (balance.t {T} -> 6); rerunning balance, shard" in caplog.text
    )
    entries_now = run.stats()["stages"]
    for name in ("ingest", "download", "annotate", "dedup", "select"):
        assert entries_now[name] == first[name]
    assert entries_now["balance"]["t"] == 6
    assert entries_now["balance"]["rows_kept"] >= first["balance"]["rows_kept"]
    assert entries_now["shard"]["rows_in"] == entries_now["balance"]["rows_kept"]
    # The same path, another content: the file's digest is in the fingerprint.
    with open(path, "a") as f:
        f.write("another entry\n")
    config = load_config(None, [*made_with, "balance.t=6"])
    state = stage_state(run, get_stage("balance"), config)
    assert state.status == "stale" and state.why.startswith("balance.entries.sha256 ")


def test_a_missing_entry_file_is_refused_before_anything_runs(run, capsys):
    before = run.stats()
    args = ["balance", "--run-dir", str(run.root)]
    for value in [*FINISHED, "balance.entries=/nope/entries.txt"]:
        args += ["--set", value]
    assert main(args) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert "balance.entries: cannot read /nope/entries.txt" in err
    assert run.stats() == before
