"""The CURATE_FAIL_ONCE switch of `map_batches`, without Spark: one failure after the first
batch, then normal runs; nothing changes when it is unset."""

from __future__ import annotations

import pickle
import threading
from collections.abc import Iterator

import pyarrow as pa
import pyarrow.compute as pc
import pytest

from pipeline.spark.arrow import FAIL_ONCE_ENV, FAIL_ONCE_MARKER, InjectedFailure, fail_once


def double(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
    for batch in batches:
        yield pa.record_batch({"x": pc.multiply(batch.column("x"), 2)})


def _batches(n: int) -> list[pa.RecordBatch]:
    return [pa.record_batch({"x": [i, i + 10]}) for i in range(n)]


def _run(n_batches: int) -> tuple[list[list[int]], Exception | None]:
    """Drain the wrapped function like Spark does; the batches it emitted and what it raised."""
    emitted: list[list[int]] = []
    try:
        for batch in fail_once(double)(iter(_batches(n_batches))):
            emitted.append(batch.column("x").to_pylist())
    except InjectedFailure as exc:
        return emitted, exc
    return emitted, None


# (case, env set, marker already there, input batches, batches emitted, raises)
CASES = [
    ("unset", False, False, 3, 3, False),
    ("unset_empty", False, False, 0, 0, False),
    ("first_task_fails_after_one_batch", True, False, 3, 1, True),
    ("first_task_single_batch", True, False, 1, 1, True),
    ("first_task_empty_fails_at_end", True, False, 0, 0, True),
    ("retry_finds_marker", True, True, 3, 3, False),
    ("retry_empty", True, True, 0, 0, False),
]


@pytest.mark.parametrize(
    ("env", "marker", "n_in", "n_out", "raises"),
    [c[1:] for c in CASES],
    ids=[c[0] for c in CASES],
)
def test_fail_once(monkeypatch, tmp_path, env, marker, n_in, n_out, raises):
    marker_dir = tmp_path / "markers"
    if env:
        monkeypatch.setenv(FAIL_ONCE_ENV, str(marker_dir))
    else:
        monkeypatch.delenv(FAIL_ONCE_ENV, raising=False)
    if marker:
        marker_dir.mkdir()
        (marker_dir / FAIL_ONCE_MARKER).write_text("earlier attempt\n")
    emitted, exc = _run(n_in)
    assert emitted == [[2 * i, 2 * i + 20] for i in range(n_out)]
    assert (exc is not None) == raises
    assert (marker_dir / FAIL_ONCE_MARKER).exists() == (env and (marker or raises))
    if raises:
        assert "outside Spark" in (marker_dir / FAIL_ONCE_MARKER).read_text()


def test_a_retry_after_the_failure_gives_every_batch(monkeypatch, tmp_path):
    monkeypatch.setenv(FAIL_ONCE_ENV, str(tmp_path))
    first, exc = _run(4)
    assert exc is not None and len(first) == 1
    again, exc = _run(4)
    assert exc is None and len(again) == 4


def test_concurrent_tasks_fail_exactly_once(monkeypatch, tmp_path):
    monkeypatch.setenv(FAIL_ONCE_ENV, str(tmp_path))
    results: list[Exception | None] = []
    start = threading.Barrier(8)

    def task() -> None:
        start.wait()
        results.append(_run(2)[1])

    threads = [threading.Thread(target=task) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(r is not None for r in results) == 1


def test_unset_is_the_function_itself(monkeypatch):
    """Zero cost when unset: the wrapper hands back the function's own iterator."""
    monkeypatch.delenv(FAIL_ONCE_ENV, raising=False)
    sentinel = iter([])
    assert fail_once(lambda batches: sentinel)(iter([])) is sentinel


def test_wrapper_pickles_by_reference():
    """Spark ships the wrapped function to executors: no closure, only module functions."""
    wrapped = pickle.loads(pickle.dumps(fail_once(double)))
    assert [b.column("x").to_pylist() for b in wrapped(iter(_batches(1)))] == [[0, 20]]
