"""The ingest stage end to end on a real Spark session: exact reason codes for every rule,
the accounting identity, column mapping, determinism and completion."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipeline.config import load_config
from pipeline.ledger import read_ledger
from pipeline.run_dir import RunDir
from pipeline.runner import run_stage
from tests.conftest import write_parquet

EN = "a small red car parked on a quiet street"

# (case, url, caption, expected reason or None when kept)
CASES: list[tuple[str, str | None, str | None, str | None]] = [
    ("clean", "http://example.com/clean.jpg", EN, None),
    (
        "control_chars",
        "http://example.com/ctrl.jpg",
        "a blue\x00 boat\u202e on the\u200b calm lake",
        None,
    ),
    ("entities", "http://example.com/ent.jpg", "fish &amp; chips served on a white plate", None),
    ("unicode_host_ok", "http://例え.jp/cat.jpg", "a grey cat sleeping on a wooden chair", None),
    ("null_url", None, EN, "ingest.missing_url"),
    ("empty_url", "  ", EN, "ingest.missing_url"),
    ("null_caption", "http://example.com/nocap.jpg", None, "ingest.missing_caption"),
    ("only_controls", "http://example.com/ctl.jpg", "\x00\x01\x02", "ingest.missing_caption"),
    ("huge_caption", "http://example.com/huge.jpg", "word " * 20_000, "ingest.caption_too_long"),
    ("long_url", "http://example.com/" + "a" * 3000, EN, "ingest.url_too_long"),
    ("space_in_url", "http://exa mple.com/x.jpg", EN, "ingest.invalid_url"),
    ("no_host", "http:///x.jpg", EN, "ingest.invalid_url"),
    ("file_scheme", "file:///etc/passwd", EN, "ingest.url_scheme"),
    ("data_scheme", "data:image/png;base64,iVBORw0KGgo=", EN, "ingest.url_scheme"),
    ("metadata_ip", "http://169.254.169.254/", EN, "ingest.private_host"),
    ("ipv6_loopback", "http://[::1]/a.jpg", EN, "ingest.private_host"),
    ("localhost", "http://localhost:8080/x.jpg", EN, "ingest.private_host"),
    ("fullwidth_localhost", "http://ｌｏｃａｌｈｏｓｔ/x.jpg", EN, "ingest.private_host"),
    ("circled_loopback", "http://①②⑦.0.0.1/x.jpg", EN, "ingest.private_host"),
    ("private_10", "http://10.0.0.7/x.jpg", EN, "ingest.private_host"),
    ("cgnat", "http://100.64.0.1/x.jpg", EN, "ingest.private_host"),
    ("dup_first", "http://example.com/dup.jpg", "two dogs running on the sandy beach", None),
    (
        "dup_second",
        "HTTP://EXAMPLE.com:80/dup.jpg",
        "two  dogs running on the sandy beach",
        "ingest.duplicate_pair",
    ),
    ("too_short", "http://example.com/short.jpg", "IMG", "ingest.caption_too_short"),
    ("few_words", "http://example.com/few.jpg", "IMG_2041.JPG", "ingest.too_few_words"),
    (
        "many_words",
        "http://example.com/many.jpg",
        " ".join(["green"] * 10 + ["tree"] * 11),
        "ingest.too_many_words",
    ),
    (
        "german",
        "http://example.com/de.jpg",
        "ein rotes Auto parkt auf einer ruhigen Straße",
        "ingest.language",
    ),
]
# ALIGN: an alt-text shared by more than 10 images is boilerplate; exactly 10 is fine.
CASES += [
    (
        f"repeat11_{i}",
        f"http://example.com/r11_{i}.jpg",
        "click here to see the full size image",
        "ingest.caption_repeated",
    )
    for i in range(11)
]
CASES += [
    (f"repeat10_{i}", f"http://example.com/r10_{i}.jpg", "a white house with a large garden", None)
    for i in range(10)
]
# Images with more than max_captions_per_url alt-texts (set to 3 for the test).
CASES += [
    (
        f"url4_{i}",
        "http://example.com/popular.jpg",
        f"a photo of a mountain lake number {w}",
        "ingest.url_too_many_captions",
    )
    for i, w in enumerate(["one", "two", "three", "four"])
]
CASES += [
    (f"url3_{i}", "http://example.com/ok3.jpg", f"a yellow flower in the morning sun {w}", None)
    for i, w in enumerate(["one", "two", "three"])
]
OVERRIDES = ["ingest.max_captions_per_url=3"]


def _input(path: Path, cases=CASES) -> Path:
    return write_parquet(
        path,
        {
            "url": [c[1] for c in cases],
            "caption": [c[2] for c in cases],
            "case": [c[0] for c in cases],
            # Columns named like ours are carried under input_<name>.
            "width": list(range(len(cases))),
            "uid": ["x"] * len(cases),
        },
    )


@pytest.fixture(scope="module")
def ingested(spark, tmp_path_factory):
    base = tmp_path_factory.mktemp("ingest")
    src = _input(base / "in" / "part-0.parquet")
    run = RunDir(base / "run")
    entry = run_stage("ingest", run.root, load_config(None, OVERRIDES), input_path=str(src))
    return src, run, entry


def test_every_rule_gives_its_exact_reason(ingested):
    _, run, _ = ingested
    cands = pq.read_table(run.candidates).to_pylist()
    kept_cases = {r["case"] for r in cands}
    expected_kept = {c[0] for c in CASES if c[3] is None}
    assert kept_cases == expected_kept
    ledger = read_ledger(run.ledger_for("ingest"))
    expected_drops: dict[str, int] = {}
    for c in CASES:
        if c[3] is not None:
            expected_drops[c[3]] = expected_drops.get(c[3], 0) + 1
    counts: dict[str, int] = {}
    for reason in ledger.column("reason").to_pylist():
        counts[reason] = counts.get(reason, 0) + 1
    assert counts == expected_drops
    assert set(ledger.column("stage").to_pylist()) == {"ingest"}


def test_ledger_rows_carry_reason_per_row(spark, ingested):
    """Join each ledger row back to its input case through the uid of a hygiene-clean row."""
    _, run, _ = ingested
    ledger = {r["uid"]: r for r in read_ledger(run.ledger_for("ingest")).to_pylist()}
    decided_cases = {
        "dup_second": "ingest.duplicate_pair",
        "german": "ingest.language",
        "many_words": "ingest.too_many_words",
    }
    from pipeline.ingest.normalize import make_uid, normalize_caption, normalize_url

    for case, reason in decided_cases.items():
        _, url, caption, _ = next(c for c in CASES if c[0] == case)
        uid = make_uid(normalize_url(url, 2048, False).url, normalize_caption(caption))
        assert ledger[uid]["reason"] == reason
    assert ledger[
        make_uid(
            normalize_url("http://example.com/dup.jpg", 2048, False).url,
            "two dogs running on the sandy beach",
        )
    ]["detail"].startswith("first at ")
    german = ledger[
        make_uid("http://example.com/de.jpg", "ein rotes Auto parkt auf einer ruhigen Straße")
    ]
    assert german["detail"].startswith("de (")


def test_accounting_identity_and_stats(ingested):
    _, run, entry = ingested
    n_kept = pq.read_table(run.candidates).num_rows
    n_ledger = read_ledger(run.ledger_for("ingest")).num_rows
    assert n_kept + n_ledger == len(CASES)
    assert entry["rows_in"] == len(CASES)
    assert entry["rows_kept"] == n_kept
    assert entry["rows_dropped"] == n_ledger
    stats = run.stats()
    assert stats["funnel"] == [{"stage": "ingest", "rows_in": len(CASES), "rows_kept": n_kept}]
    assert sum(stats["stages"]["ingest"]["dropped_by_reason"].values()) == n_ledger


def test_candidates_schema_normalised_values_and_carried_columns(ingested):
    _, run, _ = ingested
    table = pq.read_table(run.candidates)
    assert table.column_names[:5] == ["uid", "url", "caption", "lang", "lang_score"]
    assert {"case", "input_width", "input_uid"} <= set(table.column_names)
    rows = {r["case"]: r for r in table.to_pylist()}
    assert rows["control_chars"]["caption"] == "a blue boat on the calm lake"
    assert rows["entities"]["caption"] == "fish & chips served on a white plate"
    assert rows["unicode_host_ok"]["url"] == "http://xn--r8jz45g.jp/cat.jpg"
    assert rows["clean"]["lang"] == "en" and rows["clean"]["lang_score"] > 0.5
    assert all(len(r["uid"]) == 32 for r in rows.values())
    uids = table.column("uid").to_pylist()
    assert uids == sorted(uids) and len(set(uids)) == len(uids)
    assert (run.root / "config.yaml").read_text().startswith("spark:")


def test_second_run_is_a_no_op(ingested):
    src, run, entry = ingested
    before = sorted(p.name for p in run.candidates.iterdir())
    again = run_stage("ingest", run.root, load_config(None, OVERRIDES), input_path=str(src))
    assert again == entry
    assert sorted(p.name for p in run.candidates.iterdir()) == before


def test_same_input_gives_same_uids_and_candidates(spark, ingested, tmp_path):
    src, run, _ = ingested
    # Same rows split over two files in another order: same decisions, same uids.
    table = pq.read_table(src)
    half = table.num_rows // 2
    write_parquet(tmp_path / "in2" / "b.parquet", table.slice(half).to_pydict())
    write_parquet(tmp_path / "in2" / "a.parquet", table.slice(0, half).to_pydict())
    run_stage(
        "ingest", tmp_path / "run2", load_config(None, OVERRIDES), input_path=str(tmp_path / "in2")
    )
    first = pq.read_table(run.candidates).drop_columns(["lang_score"]).sort_by("uid")
    second = (
        pq.read_table(tmp_path / "run2" / "candidates").drop_columns(["lang_score"]).sort_by("uid")
    )
    assert first.equals(second)
    l1 = read_ledger(run.ledger_for("ingest")).sort_by(
        [("uid", "ascending"), ("reason", "ascending")]
    )
    l2 = read_ledger(tmp_path / "run2" / "ledger" / "ingest").sort_by(
        [("uid", "ascending"), ("reason", "ascending")]
    )
    assert l1.select(["uid", "reason"]).equals(l2.select(["uid", "reason"]))


def test_rare_tokens_and_laion_preset(spark, tmp_path):
    captions = ["the red car on the road"] * 3 + ["the red car on the moon"]
    src = write_parquet(
        tmp_path / "laion.parquet",
        {
            "URL": [f"http://example.com/{i}.jpg" for i in range(4)],
            "TEXT": captions,
            "similarity": [0.3] * 4,
        },
    )
    overrides = [
        "ingest.preset=laion",
        "ingest.min_token_count=2",
        "ingest.max_caption_repeats=100",
    ]
    entry = run_stage("ingest", tmp_path / "run", load_config(None, overrides), input_path=str(src))
    assert entry["dropped_by_reason"] == {"ingest.rare_token": 1}
    ledger = read_ledger(tmp_path / "run" / "ledger" / "ingest").to_pylist()
    assert [(r["reason"], r["detail"]) for r in ledger] == [("ingest.rare_token", "moon")]
    kept = pq.read_table(tmp_path / "run" / "candidates")
    assert kept.column("similarity").to_pylist() == [0.3] * 3


def test_datacomp_preset_keeps_input_uids(spark, tmp_path):
    good = "0123456789abcdef0123456789abcdef"
    src = write_parquet(
        tmp_path / "dc.parquet",
        {
            "url": [
                "http://example.com/a.jpg",
                "http://example.com/b.jpg",
                "http://example.com/c.jpg",
            ],
            "text": [
                EN,
                "a tall glass of orange juice on a table",
                "a brown horse standing in a green field",
            ],
            "uid": [good.upper(), "not-a-uid", good],
        },
    )
    entry = run_stage(
        "ingest",
        tmp_path / "run",
        load_config(None, ["ingest.preset=datacomp"]),
        input_path=str(src),
    )
    kept = pq.read_table(tmp_path / "run" / "candidates")
    assert kept.column("uid").to_pylist() == [good]
    assert entry["dropped_by_reason"] == {"ingest.duplicate_pair": 1, "ingest.invalid_uid": 1}
    assert pa.types.is_string(kept.schema.field("uid").type)
