"""The selections a comparison trains on, written `NAME=SPEC` on the command line.

SPEC is `raw` (every downloaded pair), `run` (the run's own shards, as its config made them), or
select rules and `balance` joined by `+` (`clip_score+image_based`, `clip_score+balance`): the
run's dedup survivors through those rules (all must pass), then MetaCLIP balancing if named.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from pipeline.config import Config
from pipeline.errors import ConfigError
from pipeline.select.rules import RULE_NAMES

RAW = "raw"
RUN = "run"
BALANCE = "balance"


@dataclass(frozen=True)
class Selection:
    """One named selection: raw, the run's own, or select rules (+ balance)."""

    name: str
    spec: str
    rules: tuple[str, ...] = ()
    balance: bool = False


def parse_selection(text: str) -> Selection:
    """`NAME=SPEC` -> Selection; ConfigError names what is wrong."""
    name, sep, spec = text.partition("=")
    name, spec = name.strip(), spec.strip()
    if not sep or not name or not spec:
        raise ConfigError(f"--selections {text!r}: expected NAME=SPEC, e.g. clip=clip_score")
    if not name.replace("_", "").replace("-", "").isalnum():
        raise ConfigError(f"--selections {text!r}: NAME may hold letters, digits, - and _ only")
    if spec in (RAW, RUN):
        return Selection(name, spec)
    items = [item.strip() for item in spec.split("+")]
    unknown = [i for i in items if i not in RULE_NAMES and i != BALANCE]
    if unknown or len(set(items)) != len(items):
        raise ConfigError(
            f"--selections {text!r}: SPEC is raw, run, or distinct items of "
            f"{', '.join((*RULE_NAMES, BALANCE))} joined by +"
        )
    rules = tuple(i for i in items if i != BALANCE)
    return Selection(name, spec, rules, BALANCE in items)


def parse_selections(texts: list[str]) -> list[Selection]:
    selections = [parse_selection(t) for t in texts]
    names = [s.name for s in selections]
    if len(set(names)) != len(names):
        raise ConfigError(f"--selections: a NAME is used twice in {names}")
    return selections


def selection_config(config: Config, selection: Selection) -> Config:
    """The run's config with this selection's rules and balancing (on or off)."""
    if selection.balance and not config.balance.entries:
        raise ConfigError(
            f"selection {selection.name}: balance needs balance.entries (an entry list file)"
        )
    select = dataclasses.replace(config.select, rules=selection.rules)
    balance = (
        config.balance if selection.balance else dataclasses.replace(config.balance, entries="")
    )
    return config.replace(select=select, balance=balance)
