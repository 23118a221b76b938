"""URL and domain blocklists at ingest: every entry kind (plain and hashed URLs, domains with
their subdomains), exact reason codes and counts, the list's name as the only detail, no blocked
URL in the ledger, dropped_inputs/, the logs or the report, and the lists' contents in the
fingerprint."""

from __future__ import annotations

import hashlib
import logging

import pyarrow.parquet as pq
import pytest

from pipeline.config import load_config
from pipeline.errors import InputError
from pipeline.ingest.blocklists import blocked, merge, parse_blocklist
from pipeline.ledger import read_ledger
from pipeline.run_dir import RunDir
from pipeline.runner import run_stage, stage_state
from pipeline.stages import get_stage
from schemas.tables import DROPPED_INPUT
from tests.conftest import write_parquet

EN = "a small red car parked on a quiet street"


def _md5(url: str) -> str:
    return hashlib.md5(url.encode()).hexdigest()


def _sha256(url: str) -> str:
    return hashlib.sha256(url.encode()).hexdigest()


LIST = parse_blocklist(
    "safety.txt",
    "\n".join(
        [
            "# a comment, then an empty line",
            "",
            "HTTP://Plain.Example.com:80/a.jpg",  # normalised like the input's URLs
            _md5("http://md5.example.com/b.jpg"),
            _sha256("http://sha.example.com/c.jpg").upper(),
            "*.bad.example.org",
            "evil.example.net",
        ]
    ),
)


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("http://plain.example.com/a.jpg", ("ingest.blocked_url", "list safety.txt (url)")),
        ("http://plain.example.com/a.jpg?x=1", None),
        ("http://md5.example.com/b.jpg", ("ingest.blocked_url", "list safety.txt (md5)")),
        ("http://sha.example.com/c.jpg", ("ingest.blocked_url", "list safety.txt (sha256)")),
        ("http://bad.example.org/x.jpg", ("ingest.blocked_domain", "list safety.txt (domain)")),
        ("http://a.b.bad.example.org/x.jpg", ("ingest.blocked_domain", "list safety.txt (domain)")),
        ("http://notbad.example.org/x.jpg", None),
        ("http://evil.example.net/y.png", ("ingest.blocked_domain", "list safety.txt (domain)")),
        ("http://example.net/y.png", None),
    ],
)
def test_each_entry_kind(url, expected):
    assert blocked(url, merge([LIST])) == expected


def test_the_first_list_naming_an_entry_names_the_drop():
    other = parse_blocklist("other.txt", "evil.example.net\nhttp://x.example.com/1.jpg\n")
    index = merge([other, LIST])
    assert blocked("http://a.evil.example.net/", index) == (
        "ingest.blocked_domain",
        "list other.txt (domain)",
    )
    assert blocked("http://bad.example.org/z.jpg", index)[1] == "list safety.txt (domain)"
    assert blocked("http://[2001:db8::1]:8080/a.jpg", index) is None


def test_entries_are_parsed_by_kind():
    assert LIST.urls == {"http://plain.example.com/a.jpg"}
    assert (len(LIST.md5), len(LIST.sha256)) == (1, 1)
    assert LIST.domains == {"bad.example.org", "evil.example.net"}
    unicode = parse_blocklist("u.txt", "例え.jp\n")
    assert unicode.domains == {"xn--r8jz45g.jp"}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("ok.example.com\nhttp:///no-host.jpg\n", "blocklist bad.txt line 2: not a usable URL"),
        ("a b c\n", "blocklist bad.txt line 1: expected a URL, an MD5 or SHA-256 of one"),
    ],
)
def test_a_bad_entry_names_its_line(text, message):
    with pytest.raises(InputError, match=message):
        parse_blocklist("bad.txt", text)


ROWS = [
    ("http://plain.example.com/a.jpg", "ingest.blocked_url"),
    ("http://md5.example.com/b.jpg", "ingest.blocked_url"),
    ("http://sha.example.com/c.jpg", "ingest.blocked_url"),
    ("http://cdn.bad.example.org/d.jpg", "ingest.blocked_domain"),
    ("http://evil.example.net/e.jpg", "ingest.blocked_domain"),
    ("http://good.example.com/f.jpg", None),
    ("http://good.example.com/g.jpg", None),
]


@pytest.fixture
def lists(tmp_path):
    first = tmp_path / "safety.txt"
    first.write_text(
        "\n".join(["http://plain.example.com/a.jpg", _md5(ROWS[1][0]), _sha256(ROWS[2][0])]) + "\n"
    )
    second = tmp_path / "domains.txt"
    second.write_text("bad.example.org\nevil.example.net\n")
    return first, second


def test_ingest_drops_listed_pairs_and_never_shows_their_urls(spark, tmp_path, lists, caplog):
    from pipeline.report.stage import run_report

    src = write_parquet(
        tmp_path / "in.parquet",
        {"url": [u for u, _ in ROWS], "caption": [f"{EN} {i}" for i in range(len(ROWS))]},
    )
    config = load_config(None, [f"ingest.blocklists=[{lists[0]}, {lists[1]}]"])
    caplog.set_level(logging.DEBUG)
    entry = run_stage("ingest", tmp_path / "run", config, input_path=str(src))
    assert entry["dropped_by_reason"] == {"ingest.blocked_domain": 2, "ingest.blocked_url": 3}
    assert entry["rows_kept"] == 2
    run = RunDir(tmp_path / "run")
    ledger = read_ledger(run.ledger_for("ingest")).to_pylist()
    assert sorted(r["detail"] for r in ledger) == [
        "list domains.txt (domain)",
        "list domains.txt (domain)",
        "list safety.txt (md5)",
        "list safety.txt (sha256)",
        "list safety.txt (url)",
    ]
    dropped = pq.read_table(run.dropped_inputs)
    assert dropped.schema.names[: len(DROPPED_INPUT)] == DROPPED_INPUT.names
    assert dropped.column("url").null_count == dropped.column("caption").null_count == 5
    report = run_report(run.root, config).read_text()
    assert "ingest.blocked_url" in report and "3 pairs (counts only" in report
    texts = {"logs": caplog.text, "report": report, "ledger": str(ledger)}
    for url, reason in ROWS:
        host = url.split("/")[2]
        for where, text in texts.items():
            if reason is not None:
                assert url not in text and host not in text, (where, url)


def test_a_changed_list_makes_ingest_stale(spark, tmp_path, lists):
    src = write_parquet(tmp_path / "in.parquet", {"url": [ROWS[0][0]], "caption": [EN]})
    config = load_config(None, [f"ingest.blocklists=[{lists[0]}]"])
    run_stage("ingest", tmp_path / "run", config, input_path=str(src))
    run = RunDir(tmp_path / "run")
    assert stage_state(run, get_stage("ingest"), config, str(src)).status == "complete"
    lists[0].write_text("other.example.com\n")
    state = stage_state(run, get_stage("ingest"), config, str(src))
    assert state.status == "stale" and "ingest.blocklists.sha256" in state.why


def test_an_unreadable_list_is_refused_before_any_work(tmp_path):
    from pipeline.cli import main

    src = write_parquet(tmp_path / "in.parquet", {"url": [ROWS[0][0]], "caption": [EN]})
    code = main(
        [
            "ingest",
            "--input",
            str(src),
            "--run-dir",
            str(tmp_path / "run"),
            "--set",
            f"ingest.blocklists=[{tmp_path / 'missing.txt'}]",
        ]
    )
    assert code == 2 and not (tmp_path / "run" / "candidates").exists()
