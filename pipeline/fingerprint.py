"""Stage fingerprints: the output-relevant settings of a stage (and the digest of a file one of
them names, where the stage says so) plus the fingerprint of the stage before it, hashed. A stage whose recorded fingerprint differs from the one the current settings
give is stale, and so is everything after it."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from pipeline.config import Config, section_type, to_dict
from pipeline.stages import Stage
from pipeline.storage import as_path


def _flatten(prefix: str, value: Any, out: dict[str, Any]) -> None:
    """Nested sections (dedup.semantic) become dotted keys: dedup.semantic.eps."""
    if isinstance(value, dict) and section_type(prefix) is not None:
        for key, inner in value.items():
            _flatten(f"{prefix}.{key}", inner, out)
    else:
        out[prefix] = value


def stage_settings(stage: Stage, config: Config, input_path: str | None = None) -> dict[str, Any]:
    """The flat `section.key -> value` settings that `stage`'s output depends on (nested
    sections flattened: `dedup.semantic.eps`)."""
    plain = to_dict(config)
    out: dict[str, Any] = {}
    for name in stage.settings:
        value: Any = plain
        for part in name.split("."):
            value = value[part]
        _flatten(name, value, out)
    for name in stage.ignore:
        out.pop(name, None)
    for name in stage.files:
        value = out.get(name)
        if isinstance(value, dict):  # files by name (annotate.heads)
            if value:
                out[f"{name}.sha256"] = {k: file_digest(str(v)) for k, v in sorted(value.items())}
        elif isinstance(value, list | tuple):  # a list of files (ingest.blocklists)
            if value:
                out[f"{name}.sha256"] = [file_digest(str(v)) for v in value]
        elif value:
            out[f"{name}.sha256"] = file_digest(str(value))
    if stage.needs is None and input_path is not None:
        out["input"] = str(input_path)
    if stage.version:
        out["output_version"] = stage.version
    return dict(sorted(out.items()))


def file_digest(path: str) -> str:
    """The first 16 hex digits of the file's sha256 (as pipeline.entry_match records it), or
    "missing" when it cannot be read (`curate status` must not fail; the preflight says why)."""
    try:
        return hashlib.sha256(as_path(path).read_bytes()).hexdigest()[:16]
    except OSError:
        return "missing"


def fingerprint(settings: dict[str, Any], upstream: str | None) -> str:
    """A short, stable hash of a stage's settings and its predecessor's fingerprint."""
    blob = json.dumps({"settings": settings, "upstream": upstream}, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def changed_settings(old: dict[str, Any] | None, new: dict[str, Any]) -> list[str]:
    """`key old -> new` for every setting that differs (for the log and `curate status`)."""
    if old is None:
        return ["no settings recorded"]
    lines = []
    for key in sorted(set(old) | set(new)):
        before, after = old.get(key, "(unset)"), new.get(key, "(unset)")
        if before != after:
            lines.append(f"{key} {_show(before)} -> {_show(after)}")
    return lines


def _show(value: Any) -> str:
    return json.dumps(value) if isinstance(value, list | dict) else str(value)
