"""The cores a process may run on: its affinity, else the machine's count."""

from __future__ import annotations

import os

from pipeline.cores import usable_cores


def test_affinity_below_the_machine_count_is_what_counts(monkeypatch):
    monkeypatch.setattr("os.sched_getaffinity", lambda _: {0, 3, 5}, raising=False)
    monkeypatch.setattr("os.cpu_count", lambda: 64)
    assert usable_cores() == 3


def test_without_affinity_the_machine_count(monkeypatch):
    monkeypatch.delattr(os, "sched_getaffinity", raising=False)
    monkeypatch.setattr("os.cpu_count", lambda: 6)
    assert usable_cores() == 6
    monkeypatch.setattr("os.cpu_count", lambda: None)
    assert usable_cores() == 1
