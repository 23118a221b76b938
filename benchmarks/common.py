"""Helpers shared by the benchmarks: timing and the `ratio <name> = <x> (target <op> <y>)` lines."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    """Wall seconds of one call, and its result."""
    start = time.perf_counter()
    result = fn()
    return time.perf_counter() - start, result


def report_rate(name: str, rows: int, seconds: float, unit: str = "rows/s") -> float:
    rate = rows / seconds if seconds > 0 else float("inf")
    print(f"rate {name} = {rate:,.0f} {unit} ({rows:,} in {seconds:.2f} s)")
    return rate


def report_ratio(
    name: str, value: float, op: str | None = None, target: float | None = None
) -> None:
    """Print one ratio line; with a target, say whether it is met."""
    if target is None:
        print(f"ratio {name} = {value:.2f} (reported, no target)")
        return
    met = {">=": value >= target, "<=": value <= target}[op or ">="]
    print(f"ratio {name} = {value:.2f} (target {op} {target}) {'OK' if met else 'MISSED'}")
