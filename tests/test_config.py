"""Config loading: defaults from the recipes, overrides, unknown keys and bad values rejected."""

from __future__ import annotations

import re

import pytest

from pipeline.config import dump_yaml, load_config
from pipeline.errors import ConfigError
from pipeline.ingest.settings import ingest_columns


def test_defaults_are_the_published_recipes():
    cfg = load_config()
    ing = cfg.ingest
    assert (ing.min_words, ing.max_words, ing.max_caption_repeats) == (3, 20, 10)
    assert (ing.max_captions_per_url, ing.vocab_size, ing.min_chars) == (1000, 100_000_000, 5)
    assert ing.languages == ("en",)
    assert cfg.network.allowed_networks == ()
    assert cfg.select.rules == ("clip_score",)


def test_yaml_file_and_overrides(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("ingest:\n  min_words: 2\n  languages: [en, de]\nspark:\n  conf: {a.b: 1}\n")
    cfg = load_config(
        path, ["ingest.max_words=30", "ingest.languages=all", "ingest.min_lang_score=0.5"]
    )
    assert cfg.ingest.min_words == 2
    assert cfg.ingest.max_words == 30
    assert cfg.ingest.languages == ("all",)
    assert cfg.ingest.min_lang_score == 0.5
    assert cfg.spark.conf == {"a.b": "1"}


def test_resolved_config_round_trips(tmp_path):
    cfg = load_config(None, ["ingest.preset=laion", "ingest.languages=[en, fr]"])
    path = tmp_path / "resolved.yaml"
    path.write_text(dump_yaml(cfg))
    assert load_config(path) == cfg


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["ingest.min_wrods=3"], "unknown key ingest.min_wrods"),
        (["ingestt.min_words=3"], "unknown section 'ingestt'"),
        (["ingest.min_words=three"], "config ingest.min_words: expected int, got 'three'"),
        (["ingest.min_words=true"], "config ingest.min_words: expected int, got True"),
        (["clip.enabled=1"], "expected bool"),
        (
            ["ingest.allow_private_networks=true"],
            "ingest.allow_private_networks is no longer a setting: use network.allowed_networks",
        ),
        (
            ["download.allowed_networks=[127.0.0.1/32]"],
            "download.allowed_networks is no longer a setting: use network.allowed_networks",
        ),
        (
            ["download.allow_private_networks=true"],
            "download.allow_private_networks is no longer a setting: use network.allowed_networks",
        ),
        (["network.allowed_networks=[10.0.0.0/33]"], "is not a CIDR block"),
        (["select.rules=[clip_score, clip_score]"], "config select.rules: a rule is listed twice"),
        (["ingest.min_words=30"], "ingest.min_words (30) is above ingest.max_words (20)"),
        (["ingest.min_lang_score=2"], "must be in [0, 1]"),
        (["ingest.preset=yfcc"], "unknown preset 'yfcc'"),
        (["ingest.vocab_size=0"], "ingest.vocab_size: must be at least 1"),
        (["min_words=3"], "expected section.key=value"),
        (["ingest.languages=[]"], "ingest.languages"),
    ],
)
def test_bad_settings_are_rejected(overrides, message):
    with pytest.raises(ConfigError) as err:
        load_config(None, overrides)
    assert message in str(err.value)


def test_bad_files_are_rejected(tmp_path):
    missing = tmp_path / "nope.yaml"
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(missing)
    bad = tmp_path / "bad.yaml"
    bad.write_text("ingest: [1, 2]\n")
    with pytest.raises(ConfigError, match="expected a mapping"):
        load_config(bad)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "ingest:\n  min_words: [1\n",
            "not valid YAML: line 3 column 1: while parsing a flow sequence, expected ',' or ']',"
            " but got '<stream end>'",
        ),
        (
            "ingest:\n\tmin_words: 2\n",
            "not valid YAML: line 2 column 1: while scanning for the next token, found character"
            " '\\t' that cannot start any token",
        ),
        ("- ingest\n- dedup\n", "expected a mapping of sections at the top"),
        ("ingest: 3\n", "config section ingest: expected a mapping, got 3"),
    ],
)
def test_a_bad_config_file_is_one_line_naming_where(tmp_path, text, expected):
    """PyYAML's own message is four lines with a source excerpt; ours is one, with the place."""
    bad = tmp_path / "bad.yaml"
    bad.write_text(text)
    with pytest.raises(ConfigError) as err:
        load_config(bad)
    assert len(str(err.value).splitlines()) == 1
    assert str(err.value).endswith(expected), str(err.value)


@pytest.mark.parametrize(
    ("preset", "expected"),
    [
        ("default", {"url_col": "url", "caption_col": "caption", "uid_col": ""}),
        ("laion", {"url_col": "URL", "caption_col": "TEXT", "uid_col": ""}),
        ("datacomp", {"url_col": "url", "caption_col": "text", "uid_col": "uid"}),
    ],
)
def test_column_presets(preset, expected):
    assert ingest_columns(load_config(None, [f"ingest.preset={preset}"]).ingest) == expected


def test_explicit_columns_override_the_preset():
    cfg = load_config(None, ["ingest.preset=laion", "ingest.caption_col=ALT"])
    assert ingest_columns(cfg.ingest)["caption_col"] == "ALT"
    assert ingest_columns(cfg.ingest)["url_col"] == "URL"


@pytest.mark.parametrize(
    ("override", "message"),
    [
        # A mapping setting is not walked into: its dotted keys are refused, not mangled.
        ("spark.conf.spark.executor.memory=4g", "unknown key spark.conf.spark.executor.memory"),
        ("dedup.semantic.eps.x=1", "unknown key dedup.semantic.eps.x"),
        ("dedup.semantic.nope=1", "unknown key dedup.semantic.nope (known keys of dedup.semantic"),
        ("dedup.semantic=0.5", "config dedup.semantic: expected a mapping, got 0.5"),
    ],
)
def test_nested_overrides_are_checked(override, message):
    with pytest.raises(ConfigError, match=re.escape(message)):
        load_config(None, [override])


def test_a_nested_section_is_set_by_its_dotted_keys():
    config = load_config(None, ["dedup.semantic.eps=0.02", "dedup.semantic.assignments=2"])
    assert (config.dedup.semantic.eps, config.dedup.semantic.assignments) == (0.02, 2)
    assert config.dedup.max_distance == 6
