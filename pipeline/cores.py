"""The cores this process may run on: its CPU affinity where the OS has one (a container or
`taskset` limits it below os.cpu_count()), else the machine's count."""

from __future__ import annotations

import os


def usable_cores() -> int:
    """The cores this process may run on, at least 1."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return os.cpu_count() or 1
