"""The layout's rules, checked on the source: Spark only in `plan.py` files and `pipeline/spark/`
(and jobs/), nothing but the demo and the API import `demo`, `clip` never imports `train`,
`config` imports no stage, settings modules nothing but what a section needs, and no file of
the project points outside the repository."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PIPELINE = ROOT / "pipeline"


def _runtime_imports(path: Path) -> set[str]:
    """Modules a file imports when it runs (imports under `if TYPE_CHECKING:` left out)."""
    tree = ast.parse(path.read_text())
    skipped: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            skipped |= {id(n) for child in node.body for n in ast.walk(child)}
    found = set()
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return found


def _modules() -> list[Path]:
    return sorted(p for p in PIPELINE.rglob("*.py") if "__pycache__" not in p.parts)


def _importers(prefix: str) -> list[str]:
    return [
        str(p.relative_to(ROOT))
        for p in _modules()
        if any(m == prefix or m.startswith(prefix + ".") for m in _runtime_imports(p))
    ]


def test_only_plans_and_the_spark_package_import_pyspark():
    allowed = [p for p in _importers("pyspark") + _importers("py4j")]
    outside = [
        p for p in allowed if not (p.endswith("/plan.py") or p.startswith("pipeline/spark/"))
    ]
    assert outside == []


@pytest.mark.parametrize(
    ("imported", "allowed_prefix"),
    [
        # The API's (and so the CLI's) `demo`.
        ("pipeline.demo", ("pipeline/demo/", "pipeline/api.py")),
        # `curate compare` trains a model per selection.
        (
            "pipeline.train",
            ("pipeline/train/", "pipeline/compare/", "pipeline/demo/", "pipeline/api.py"),
        ),
    ],
)
def test_who_may_import_what(imported, allowed_prefix):
    assert [p for p in _importers(imported) if not p.startswith(allowed_prefix)] == []


def test_stats_imports_no_command():
    """The runner records every stage through stats.py: were it to import compare (and so train),
    stats -> compare -> runner would close a circle. The CLI asks compare for its table."""
    commands = ("pipeline.compare", "pipeline.train", "pipeline.demo", "pipeline.runner")
    assert not [m for m in _runtime_imports(PIPELINE / "stats.py") if m.startswith(commands)]


@pytest.mark.parametrize("module", ["cli.py", "api.py"])
def test_the_cli_and_api_import_commands_only_inside_them(module):
    """`import pipeline.api` (and `curate --help`) stays light: no Spark, torch or demo."""
    tree = ast.parse((PIPELINE / module).read_text())
    top = {n.module for n in tree.body if isinstance(n, ast.ImportFrom)}
    top |= {a.name for n in tree.body if isinstance(n, ast.Import) for a in n.names}
    heavy = ("pipeline.demo", "pipeline.train", "pipeline.runner", "pyspark", "torch")
    assert not [m for m in top if m and m.startswith(heavy)]


def test_settings_modules_import_only_what_a_section_needs():
    """Loading a config imports every section's module: they stay free of stage code."""
    allowed = {"__future__", "dataclasses", "collections.abc", "typing", "pipeline.errors"}
    allowed |= {"pipeline.preselect.settings"}  # select.pool is preselect's section
    found = {
        str(p.relative_to(ROOT)): _runtime_imports(p) - allowed
        for p in sorted(PIPELINE.rglob("settings.py"))
    }
    assert len(found) >= 10 and {p: m for p, m in found.items() if m} == {}


def test_config_imports_no_stage_package():
    stages = {p.name for p in PIPELINE.iterdir() if (p / "stage.py").exists()}
    imported = _runtime_imports(PIPELINE / "config.py")
    assert not {m for m in imported if m.split(".")[:2][-1] in stages | {"train", "clip"}}


def test_no_file_points_outside_the_repository():
    texts = [
        *ROOT.glob("*.md"),
        *ROOT.glob("docs/*.md"),
        ROOT / "Makefile",
        ROOT / "pyproject.toml",
        ROOT / ".ci" / "run",
        *_modules(),
        *(ROOT / "tests").rglob("*.py"),
        *(ROOT / "benchmarks").rglob("*.py"),
        *(ROOT / "schemas").rglob("*.py"),
    ]
    # Written split so that this file does not match itself.
    outside = "../" + "shared"
    assert [str(p.relative_to(ROOT)) for p in texts if outside in p.read_text()] == []


def test_reason_codes_are_always_checked_against_the_schema():
    """A code written as a bare string would escape the check that it is declared in schemas/."""
    from schemas.reasons import REASONS

    bare = []
    for path in _modules():
        tree = ast.parse(path.read_text())
        parents = {id(c): n for n in ast.walk(tree) for c in ast.iter_child_nodes(n)}
        for node in ast.walk(tree):
            if isinstance(node, ast.Constant) and node.value in REASONS:
                call = parents.get(id(node))
                if not (isinstance(call, ast.Call) and getattr(call.func, "id", "") == "check"):
                    bare.append(f"{path.relative_to(ROOT)}:{node.lineno} {node.value}")
    assert bare == []


def test_the_logger_is_called_log_everywhere():
    named = [
        f"{p.relative_to(ROOT)}: {line.strip()}"
        for p in _modules()
        for line in p.read_text().splitlines()
        if "= logging.getLogger(__name__)" in line and not line.startswith("log = ")
    ]
    assert named == []
