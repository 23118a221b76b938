"""Configuration: YAML into frozen sections, unknown keys rejected, overrides applied.

Each section is a frozen dataclass declared in the package that reads it (pipeline/<stage>/
settings.py and the like) and listed in the stage registry (pipeline/stages.py); this module
only composes them, loads YAML and applies `section.key=value` overrides. Defaults are the
published recipes (docs/recipes.md); each section checks its own ranges (`validate`).
"""

from __future__ import annotations

import dataclasses
import functools
import importlib
import typing
from collections.abc import Iterable, Mapping
from typing import Any

import yaml

from pipeline import stages as registry
from pipeline.errors import ConfigError
from pipeline.setting_values import coerce
from pipeline.storage import StoragePath, as_path


@functools.cache
def _load_class(spec: str) -> type:
    module, _, name = spec.partition(":")
    return getattr(importlib.import_module(module), name)


def section_classes() -> dict[str, type]:
    """Every config section by name, in config.yaml's order: the run's own (spark, network),
    each stage's (pipeline.stages), then those several stages read (clip, entry_match, train)."""
    specs = [
        *registry.RUN_SECTIONS,
        *((s.name, s.section) for s in registry.STAGES if s.section),
        *registry.SHARED_SECTIONS,
    ]
    return {name: _load_class(spec) for name, spec in specs}


def section_type(dotted: str) -> type | None:
    """The dataclass of a section or nested section (`dedup.semantic`), else None (a setting,
    or a mapping-valued setting such as spark.conf)."""
    first, *rest = dotted.split(".")
    target: Any = section_classes().get(first)
    for part in rest:
        target = typing.get_type_hints(target).get(part) if target is not None else None
    return target if dataclasses.is_dataclass(target) else None


def _restore(sections: dict[str, Any]) -> Config:
    config = Config.__new__(Config)
    object.__setattr__(config, "_sections", sections)
    return config


class Config:
    """The whole resolved configuration: one frozen section per name of `section_classes()`
    (config.ingest, config.dedup.semantic.eps); a section not given takes its defaults."""

    __slots__ = ("_sections",)

    def __init__(self, **sections: Any) -> None:
        classes = section_classes()
        unknown = sorted(set(sections) - set(classes))
        if unknown:
            raise TypeError(f"Config: unknown section {unknown[0]!r}")
        built = {name: sections.get(name) or cls() for name, cls in classes.items()}
        object.__setattr__(self, "_sections", built)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        try:
            return self._sections[name]
        except KeyError:
            raise AttributeError(f"config has no section {name!r}") from None

    def __setattr__(self, name: str, value: Any) -> None:
        raise dataclasses.FrozenInstanceError(f"cannot assign to config.{name}")

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Config) and self._sections == other._sections

    __hash__ = None  # type: ignore[assignment]  # sections hold dicts (spark.conf)

    def __repr__(self) -> str:
        return f"Config({', '.join(f'{k}={v!r}' for k, v in self._sections.items())})"

    def __reduce__(self) -> tuple[Any, ...]:
        return _restore, (self._sections,)

    def sections(self) -> dict[str, Any]:
        """Section name -> section object, in config.yaml's order."""
        return dict(self._sections)

    def replace(self, **sections: Any) -> Config:
        """A copy with the named sections replaced (dataclasses.replace for the whole config)."""
        return Config(**{**self._sections, **sections})


# Keys that moved: refused with the name of the setting that replaced them.
RENAMED = {
    "ingest.allow_private_networks": "network.allowed_networks",
    "download.allow_private_networks": "network.allowed_networks",
    "download.allowed_networks": "network.allowed_networks",
}


def _build_section(name: str, cls: type, values: Mapping[str, Any]) -> Any:
    """One section (or a nested sub-section such as dedup.semantic) from its raw values."""
    hints = typing.get_type_hints(cls)
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - known)
    for key in unknown:
        if f"{name}.{key}" in RENAMED:
            raise ConfigError(
                f"config: {name}.{key} is no longer a setting: use {RENAMED[f'{name}.{key}']}"
                " (a list of CIDR blocks, e.g. [127.0.0.1/32]; one policy for ingest and download)"
            )
    if unknown:
        raise ConfigError(
            f"config: unknown key {name}.{unknown[0]} (known keys of {name}: {', '.join(sorted(known))})"
        )
    kwargs = {}
    for key, value in values.items():
        hint = hints[key]
        if dataclasses.is_dataclass(hint):
            if not isinstance(value, Mapping):
                raise ConfigError(f"config {name}.{key}: expected a mapping, got {value!r}")
            kwargs[key] = _build_section(f"{name}.{key}", hint, value)
        else:
            kwargs[key] = coerce(f"{name}.{key}", value, hint)
    return cls(**kwargs)


def _apply_override(raw: dict[str, dict[str, Any]], override: str) -> None:
    key, sep, text = override.partition("=")
    section, dot, name = key.strip().partition(".")
    if not sep or not dot or not section or not name:
        raise ConfigError(
            f"--set {override!r}: expected section.key=value, e.g. ingest.min_words=3"
        )
    try:
        value = yaml.safe_load(text) if text.strip() else ""
    except yaml.YAMLError as exc:
        raise ConfigError(
            f"--set {override!r}: value is not valid YAML ({yaml_problem(exc)})"
        ) from exc
    # dedup.semantic.eps=0.02 sets key eps of the nested section dedup.semantic. Only nested
    # sections are walked: spark.conf.x.y stays the key "conf.x.y" (refused as unknown).
    target, walked, parts = raw.setdefault(section, {}), section, name.split(".")
    while len(parts) > 1 and section_type(f"{walked}.{parts[0]}") is not None:
        walked = f"{walked}.{parts[0]}"
        target = target.setdefault(parts.pop(0), {})
        if not isinstance(target, dict):
            raise ConfigError(f"--set {override!r}: {walked} is set as a whole already")
    target[".".join(parts)] = value


def yaml_problem(exc: yaml.YAMLError) -> str:
    """A YAML error on one line: where (1-based line and column) and what, without PyYAML's
    quoted source excerpt, which spans several lines."""
    mark = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
    context = getattr(exc, "context", None)
    text = f"{context}, {problem}" if context else problem
    text = " ".join(str(text).split())
    if mark is None:
        return text
    return f"line {mark.line + 1} column {mark.column + 1}: {text}"


def _sections_of(loaded: Any, where: str) -> dict[str, Any]:
    """The raw sections of a loaded mapping, nested mappings copied (overrides write into them)."""
    if not isinstance(loaded, Mapping):
        raise ConfigError(f"{where}: expected a mapping of sections at the top")
    for section, values in loaded.items():
        if not isinstance(values or {}, Mapping):
            raise ConfigError(f"config section {section}: expected a mapping, got {values!r}")
    return {str(section): _copy(values or {}) for section, values in loaded.items()}


def _copy(value: Any) -> Any:
    return {str(k): _copy(v) for k, v in value.items()} if isinstance(value, Mapping) else value


def load_config(
    path: StoragePath | str | None = None,
    overrides: Iterable[str] = (),
    *,
    values: Mapping[str, Any] | None = None,
) -> Config:
    """Load a YAML file (optional) or `values` (the same shape: {section: {key: value}}), apply
    `section.key=value` overrides, validate, freeze."""
    raw: dict[str, dict[str, Any]] = {}
    if values is not None:
        raw = _sections_of(values, "config")
    elif path is not None:
        try:
            # A path or a URL (a run directory's config.yaml in a bucket, --config s3://...).
            loaded = yaml.safe_load(as_path(path).read_text()) or {}
        except OSError as exc:
            raise ConfigError(f"config file {path}: cannot read ({exc.strerror})") from exc
        except yaml.YAMLError as exc:
            raise ConfigError(f"config file {path}: not valid YAML: {yaml_problem(exc)}") from exc
        raw = _sections_of(loaded, f"config file {path}")
    for override in overrides:
        _apply_override(raw, override)
    sections = section_classes()
    unknown = sorted(set(raw) - set(sections))
    if unknown:
        raise ConfigError(
            f"config: unknown section {unknown[0]!r} (known sections: {', '.join(sections)})"
        )
    built = {name: _build_section(name, cls, raw.get(name, {})) for name, cls in sections.items()}
    config = Config(**built)
    validate(config)
    return config


def validate(config: Config) -> None:
    """Range checks that a type alone cannot express: each section checks its own."""
    for section in config.sections().values():
        section.validate()


def to_dict(config: Config) -> dict[str, Any]:
    """Plain-data form (lists, dicts) of a config, for YAML and JSON."""

    def plain(value: Any) -> Any:
        if isinstance(value, tuple | list):
            return [plain(v) for v in value]
        if isinstance(value, Mapping):
            return {k: plain(v) for k, v in value.items()}
        return value

    return {name: plain(dataclasses.asdict(s)) for name, s in config.sections().items()}


def dump_yaml(config: Config) -> str:
    """The resolved config as YAML, loadable again with load_config."""
    return yaml.safe_dump(to_dict(config), sort_keys=False)
