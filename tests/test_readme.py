"""The docs match the code: every setting in docs/configuration.md, every command in the README,
every stage of the registry in the README's stage table, ARCHITECTURE.md and the fingerprint
table, every package and top-level module in ARCHITECTURE.md's module map, and every link
between the docs pointing at a file (and heading) that exists."""

from __future__ import annotations

import dataclasses
import re
import typing
from pathlib import Path

import pytest

from pipeline.cli import COMMANDS
from pipeline.config import section_classes
from pipeline.stages import STAGES

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()
ARCHITECTURE = (ROOT / "ARCHITECTURE.md").read_text()
CONFIGURATION = (ROOT / "docs" / "configuration.md").read_text()
DOCS = [ROOT / "README.md", ROOT / "ARCHITECTURE.md", *sorted((ROOT / "docs").glob("*.md"))]


def _section(text: str, heading: str) -> str:
    """The text under `heading` (a whole line) up to the next heading of the same or a higher
    level."""
    level = len(heading) - len(heading.lstrip("#"))
    lines = text.splitlines()
    assert heading in lines, f"no heading {heading!r}"
    start = lines.index(heading) + 1
    end = next(
        (i for i in range(start, len(lines)) if re.match(rf"#{{1,{level}}} ", lines[i])),
        len(lines),
    )
    return "\n".join(lines[start:end])


def test_every_setting_is_documented_in_its_section():
    missing = []
    for name, cls in section_classes().items():
        text = _section(CONFIGURATION, f"### {name}")
        missing += [
            f"{name}.{f.name}" for f in dataclasses.fields(cls) if f"`{f.name}`" not in text
        ]
        # Nested sections (dedup.semantic) have a table of their own.
        nested = typing.get_type_hints(cls)
        for f in dataclasses.fields(cls):
            if dataclasses.is_dataclass(nested[f.name]):
                sub = _section(CONFIGURATION, f"#### {name}.{f.name}")
                missing += [
                    f"{name}.{f.name}.{g.name}"
                    for g in dataclasses.fields(nested[f.name])
                    if f"`{g.name}`" not in sub
                ]
    assert missing == []


def test_every_command_is_documented():
    assert [c for c in COMMANDS if f"curate {c}" not in README] == []


def test_every_stage_is_in_the_readme_stage_table():
    table = _section(README, "## Stages and commands")
    rows = [line for line in table.splitlines() if line.startswith("| `curate ")]
    assert [
        s.name for s in STAGES if not any(r.startswith(f"| `curate {s.name} ") for r in rows)
    ] == []
    # and has a section of its own
    assert [s.name for s in STAGES if f"### {s.name}" not in table.splitlines()] == []


def test_every_stage_is_in_the_architecture():
    flow = _section(ARCHITECTURE, "## Data flow")
    assert [s.name for s in STAGES if not re.search(rf"^\s+{s.name}\s", flow, re.M)] == []
    assert [s.name for s in STAGES if f"`{s.name}/`" not in ARCHITECTURE] == []


def test_the_fingerprint_table_follows_the_registry():
    """Each stage has a row naming what its fingerprint holds and leaves out."""
    table = _section(CONFIGURATION, "## Which settings rerun which stages")
    rows = {
        line.split("|")[1].strip(): line for line in table.splitlines() if line.startswith("| ")
    }
    missing = []
    for stage in STAGES:
        row = rows.get(stage.name)
        if row is None:
            missing.append(stage.name)
            continue
        for name in (*stage.settings, *stage.ignore):
            if "." in name:
                shown = f"`{name}`" in row
            else:  # a whole section: `section.*`, or each of its keys
                keys = [f.name for f in dataclasses.fields(section_classes()[name])]
                shown = f"`{name}.*`" in row or all(f"`{name}.{k}`" in row for k in keys)
            if not shown:
                missing.append(f"{stage.name}: {name}")
    assert missing == []


def test_every_package_and_top_level_module_is_in_the_module_map():
    pipeline = ROOT / "pipeline"
    names = [
        f"`{p.name}/`" if p.is_dir() else f"`{p.name}`"
        for p in sorted(pipeline.iterdir())
        if (p.is_dir() and (p / "__init__.py").exists())
        or (p.suffix == ".py" and p.name != "__init__.py")
    ]
    module_map = _section(ARCHITECTURE, "## Module map")
    assert [n for n in names if n not in module_map] == []


def _slug(heading: str) -> str:
    """GitHub's anchor for a heading."""
    text = heading.strip().lower().replace("`", "")
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_link_between_the_docs_resolves(doc):
    broken = []
    for target, anchor in re.findall(r"\]\(([^)#\s]*)(#[^)\s]*)?\)", doc.read_text()):
        if re.match(r"[a-z]+://", target):
            continue
        path = (doc.parent / target).resolve() if target else doc
        if not path.exists():
            broken.append(target)
        elif anchor and path.suffix == ".md":
            headings = re.findall(r"^#+ (.+)$", path.read_text(), re.M)
            if anchor[1:] not in {_slug(h) for h in headings}:
                broken.append(f"{target}{anchor}")
    assert broken == []


def test_the_readme_links_every_doc():
    linked = set(re.findall(r"\]\(([^)#\s]+)", README))
    docs = {"ARCHITECTURE.md", *(f"docs/{p.name}" for p in (ROOT / "docs").glob("*.md"))}
    assert docs - linked == set()
