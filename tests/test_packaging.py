"""The package states ranges, never exact pins (it installs next to a user's own torch and Spark);
constraints.txt pins the versions it is tested with, each inside its range, so `make install`
installs exactly those."""

from __future__ import annotations

import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parent.parent
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]


def _requirements() -> list[Requirement]:
    texts = [
        *PROJECT["dependencies"],
        *(r for extra in PROJECT["optional-dependencies"].values() for r in extra),
    ]
    return [Requirement(t) for t in texts]


def _pins() -> dict[str, str]:
    pins = {}
    for line in (ROOT / "constraints.txt").read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            name, _, version = line.partition("==")
            pins[canonicalize_name(name)] = version
    return pins


def test_no_exact_pin_in_the_package_requirements():
    pinned = [
        str(r) for r in _requirements() if any(s.operator in ("==", "===") for s in r.specifier)
    ]
    assert pinned == []


def test_every_pin_of_constraints_is_inside_its_range():
    pins = _pins()
    outside = [
        f"{r.name}: {pins[canonicalize_name(r.name)]} not in {r.specifier}"
        for r in _requirements()
        if canonicalize_name(r.name) in pins
        and not r.specifier.contains(pins[canonicalize_name(r.name)], prereleases=True)
    ]
    assert outside == []
    # The two that install from this machine's files (anything else downloads gigabytes).
    assert (pins["torch"], pins["torchvision"]) == ("2.14.1", "0.29.1")
    missing = [r.name for r in _requirements() if canonicalize_name(r.name) not in pins]
    assert missing == []
