"""Bad input to `curate train` is one line on stderr and exit 2, with nothing written."""

from __future__ import annotations

import re

import pytest

from pipeline.cli import main
from pipeline.errors import InputError
from pipeline.train.run import run_train
from tests.train.helpers import set_args, train_config


def test_no_shards_exits_2_and_writes_nothing(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    output = tmp_path / "out"
    code = main(["train", "--shards", str(tmp_path / "empty"), "--output", str(output)])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert err[-1].startswith("curate train: error: shards ") and "no .tar file" in err[-1]
    assert not output.exists()


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["train.model=no-such-net"], "unknown architecture 'no-such-net'"),
        (["train.batch_size=0"], "train.batch_size: must be at least 1"),
        (["train.precision=fp8"], "train.precision"),
        (["train.resampled=false", "train.workers=6"], "at least one shard per loader worker"),
        (["train.eval_data=/nonexistent/eval"], "train.eval_data: cannot read"),
        (["train.pretrained=/nonexistent/model.pt"], "neither a file nor an open_clip tag"),
    ],
)
def test_bad_settings(shards, tmp_path, overrides, message):
    with pytest.raises(InputError, match=re.escape(message)):
        run_train(shards, tmp_path / "out", train_config("train.steps=1", *overrides))
    assert not (tmp_path / "out").exists()


def test_unreadable_pretrained_checkpoint(shards, tmp_path, capsys):
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"this is not a checkpoint")
    output = tmp_path / "out"
    args = ["train", "--shards", str(shards), "--output", str(output)]
    code = main([*args, *set_args(f"train.pretrained={garbage}", "train.steps=1")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert err[-1].startswith(f"curate train: error: train.pretrained {garbage}: cannot load it")
    assert not output.exists()


def test_unreadable_latest_checkpoint(shards, tmp_path):
    latest = tmp_path / "out" / "checkpoints" / "latest.pt"
    latest.parent.mkdir(parents=True)
    latest.write_bytes(b"\x80\x02torn")
    with pytest.raises(InputError, match="cannot read it"):
        run_train(shards, tmp_path / "out", train_config("train.steps=1"))
    assert sorted(p.name for p in latest.parent.iterdir()) == ["latest.pt"]
