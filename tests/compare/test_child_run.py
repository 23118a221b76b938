"""A selection's own run directory: the parent's stages up to dedup linked in with their stats
entries, select/balance/shard run there without touching the parent, and a parent rerun
upstream shows in the child as stale; the tail classes counted from the pool's captions."""

from __future__ import annotations

import json
import os
import re

import pyarrow.parquet as pq

from pipeline.compare.child_run import child_run
from pipeline.compare.tail_classes import class_counts
from pipeline.config import load_config
from pipeline.runner import run_stages, stage_state
from pipeline.stages import get_stage
from tests.conftest import FINISHED, copy_run


def test_child_run_shares_upstream_and_owns_the_rest(finished, tmp_path):
    parent = copy_run(finished.root, tmp_path / "run")
    before = parent.stats()
    child = child_run(parent, "strict")
    for name in ("ingest", "preselect", "download", "annotate", "dedup"):
        folder = child.root / get_stage(name).output
        assert folder.is_symlink() and folder.resolve() == (parent.root / get_stage(name).output)
        assert child.stats()["stages"][name] == before["stages"][name]
    config = load_config(None, [*FINISHED, "shard.samples_per_shard=7"])
    run_stages(child.root, config, names=["select", "balance", "shard"])
    entries = child.stats()["stages"]
    assert entries["shard"]["rows_kept"] == before["stages"]["shard"]["rows_kept"]
    sizes = json.loads((child.shards / "sizes.json").read_text())
    assert max(sizes.values()) == 7 and not child.shards.is_symlink()
    # The parent is untouched: same stats, its own 40-sample shards.
    assert parent.stats() == before
    assert max(json.loads((parent.shards / "sizes.json").read_text()).values()) == 40
    # Made again: nothing changes; the links stay relative (the run directory can move).
    assert child_run(parent, "strict").stats() == child.stats()
    assert not os.readlink(child.root / "dedup").startswith("/")


def test_a_parent_rerun_upstream_makes_the_child_stale(finished, tmp_path):
    parent = copy_run(finished.root, tmp_path / "run")
    child = child_run(parent, "c")
    config = load_config(None, FINISHED)
    run_stages(child.root, config, names=["select", "balance", "shard"])
    assert stage_state(child, get_stage("select"), config).status == "complete"
    changed = load_config(None, [*FINISHED, "dedup.max_distance=3"])
    run_stages(parent.root, changed, names=["dedup"])
    child = child_run(parent, "c")
    assert child.stats()["stages"]["dedup"] == parent.stats()["stages"]["dedup"]
    assert stage_state(child, get_stage("select"), changed).status == "stale"


def test_class_counts_match_captions(finished):
    captions = pq.read_table(finished.candidates, columns=["caption"]).column(0).to_pylist()
    counts = class_counts(finished, ["red circle", "Blue Square"])
    red = re.compile(r"(?<!\w)red\W+circle(?!\w)", re.IGNORECASE)
    blue = re.compile(r"(?<!\w)blue\W+square(?!\w)", re.IGNORECASE)
    assert counts == {
        "red circle": sum(bool(red.search(c)) for c in captions),
        "Blue Square": sum(bool(blue.search(c)) for c in captions),
    }
