"""Checkpoint files: a kill between save's two writes (the step file, then latest.pt) loses
nothing; the next run points latest.pt at the newest step file."""

from __future__ import annotations

import torch

from pipeline.train import checkpoint


def _state(step: int) -> dict:
    return {"step": step, "state_dict": {"w": torch.full((2,), float(step))}}


def test_resume_path_none_without_checkpoints(tmp_path):
    assert checkpoint.resume_path(tmp_path) is None


def test_resume_path_is_latest_when_present(tmp_path):
    checkpoint.save(tmp_path, _state(4))
    checkpoint.save(tmp_path, _state(8))
    assert checkpoint.resume_path(tmp_path) == tmp_path / checkpoint.LATEST
    assert checkpoint.load(tmp_path / checkpoint.LATEST)["step"] == 8


def test_latest_missing_is_pointed_at_the_newest_step_file(tmp_path, caplog):
    checkpoint.save(tmp_path, _state(4))
    checkpoint.save(tmp_path, _state(8))
    (tmp_path / checkpoint.LATEST).unlink()  # killed after step_000008.pt, before latest.pt
    path = checkpoint.resume_path(tmp_path)
    assert path == tmp_path / checkpoint.LATEST
    state = checkpoint.load(path)
    assert state["step"] == 8
    assert torch.equal(state["state_dict"]["w"], torch.full((2,), 8.0))
    assert "pointing it at step_000008.pt" in caplog.text
