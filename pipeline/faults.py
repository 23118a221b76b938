"""Kill points for the kill-anywhere tests: with CURATE_KILL_AT=<stage>:<point> set, the process
group is killed with SIGKILL when the run reaches that point (a place the test chooses, not a
sleep race). Unset, a kill point costs one environment lookup."""

from __future__ import annotations

import os
import signal

KILL_AT_ENV = "CURATE_KILL_AT"


def kill_point(stage: str, point: str) -> None:
    """SIGKILL this process group if $CURATE_KILL_AT names `stage:point`."""
    if os.environ.get(KILL_AT_ENV) == f"{stage}:{point}":
        os.killpg(os.getpgid(0), signal.SIGKILL)
