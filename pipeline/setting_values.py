"""One setting's value checked against its type hint (bool, int, float, str, tuple of str,
mapping of str, or a union of them), as YAML and `--set` give it: lists become tuples, YAML 1.1's
"5e-4" string a float, a number where a string is expected its text."""

from __future__ import annotations

import types
import typing
from collections.abc import Mapping
from typing import Any

from pipeline.errors import ConfigError


def coerce(where: str, value: Any, hint: Any) -> Any:
    """Check `value` against a field's type hint; convert lists to tuples."""
    origin = typing.get_origin(hint)
    if hint is bool:
        if isinstance(value, bool):
            return value
    elif hint is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif hint is float:
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str):
            # YAML 1.1 reads 5e-4 (no dot) as a string; it is still a number.
            try:
                return float(value)
            except ValueError:
                pass
    elif hint is str:
        if isinstance(value, str):
            return value
        if isinstance(value, int | float) and not isinstance(value, bool):
            return str(value)
    elif origin is tuple:
        if isinstance(value, str):
            value = [value]
        if isinstance(value, list | tuple) and all(isinstance(v, str) for v in value):
            return tuple(value)
    elif origin in (Mapping, dict) or hint is Mapping:
        if isinstance(value, Mapping):
            return {str(k): str(v) for k, v in value.items()}
    elif origin in (typing.Union, types.UnionType):
        for arg in typing.get_args(hint):
            try:
                return coerce(where, value, arg)
            except ConfigError:
                continue
    name = getattr(hint, "__name__", str(hint))
    raise ConfigError(f"config {where}: expected {name}, got {value!r}")
