"""Training throughput: our trainer (`curate train`) vs open_clip's own trainer
(`open_clip_train.main`) on the same webdataset shards, model (curate-tiny-vit), batch size,
loader workers, precision (fp32) and thread count, both sampling shards with replacement.

Both run as fresh processes; the rate is steady-state samples/s from each trainer's per-step log
(the first steps, with start-up and warm-up, are left out). Run with `make bench-train`.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.common import report_rate, report_ratio
from pipeline.clip.models import MODEL_CONFIGS
from tests.train.shards import write_shards

MODEL = "curate-tiny-vit"
# open_clip's trainer knows only its own configs: register ours, then hand over to its main().
OPEN_CLIP_WRAPPER = (
    "import sys, open_clip; open_clip.add_model_config(sys.argv[1]); "
    "from open_clip_train.main import main; main(sys.argv[2:])"
)
# "Batch (t): 0.412, 77.6543/s, 77.6543/s/gpu": the rate of the step just logged.
OPEN_CLIP_RATE = re.compile(r"Batch \(t\): [\d.]+, ([\d.]+)/s,")


def _env(threads: int) -> dict[str, str]:
    root = str(Path(__file__).resolve().parents[1])
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
    env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH", "")) if p)
    return env


def _run(args: list[str], threads: int) -> tuple[float, str]:
    start = time.perf_counter()
    done = subprocess.run(args, env=_env(threads), capture_output=True, text=True, timeout=3600)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        sys.exit(f"{args[:4]} failed ({done.returncode}):\n{done.stderr[-3000:]}")
    return seconds, done.stdout + done.stderr


def steady(rates: list[float], batch: int, skip: int) -> tuple[int, float]:
    """(samples, seconds) of the steps after the first `skip`, from per-step samples/s."""
    kept = rates[skip:]
    return len(kept) * batch, sum(batch / r for r in kept)


def ours(shards: Path, out: Path, a: argparse.Namespace) -> list[float]:
    settings = {
        "model": MODEL,
        "steps": a.steps,
        "batch_size": a.batch,
        "workers": a.workers,
        "warmup_steps": 5,
        "resampled": "true",
        "precision": "fp32",
        "device": "cpu",
        "log_every": 1,
        "checkpoint_every": 0,
        "shuffle_buffer": 1000,
    }
    args = [
        sys.executable,
        "-m",
        "pipeline",
        "train",
        "--shards",
        str(shards),
        "--output",
        str(out),
    ]
    args += [x for k, v in settings.items() for x in ("--set", f"train.{k}={v}")]
    seconds, _ = _run(args, a.threads)
    print(
        f"wall our trainer: {seconds:.1f} s for {a.steps} steps (start-up and final checkpoint included)"
    )
    lines = (out / "train_log.jsonl").read_text().splitlines()
    return [json.loads(line)["samples_per_s"] for line in lines]


def open_clip_train(shards: Path, n_shards: int, out: Path, a: argparse.Namespace) -> list[float]:
    pattern = f"{shards}/{{00000..{n_shards - 1:05d}}}.tar"
    args = [sys.executable, "-c", OPEN_CLIP_WRAPPER, str(MODEL_CONFIGS)]
    args += ["--dataset-type", "webdataset", "--train-data", pattern, "--dataset-resampled"]
    args += ["--train-num-samples", str(a.steps * a.batch), "--epochs", "1"]
    args += ["--model", MODEL, "--batch-size", str(a.batch), "--workers", str(a.workers)]
    args += ["--precision", "fp32", "--device", "cpu", "--lr", "5e-4", "--warmup", "5"]
    args += ["--wd", "0.2", "--beta1", "0.9", "--beta2", "0.98", "--eps", "1e-6"]
    args += ["--grad-clip-norm", "1.0", "--log-every-n-steps", "1", "--zeroshot-frequency", "0"]
    args += ["--logs", str(out), "--name", "bench", "--seed", "0", "--report-to", ""]
    seconds, output = _run(args, a.threads)
    print(
        f"wall open_clip_train: {seconds:.1f} s for {a.steps} steps (start-up and final checkpoint included)"
    )
    return [float(m.group(1)) for m in OPEN_CLIP_RATE.finditer(output)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--samples", type=int, default=2048, help="pairs in the shards")
    parser.add_argument("--shards", type=int, default=4)
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--threads", type=int, default=1, help="torch threads per process")
    parser.add_argument("--skip", type=int, default=5, help="first steps left out of the rate")
    a = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    with tempfile.TemporaryDirectory(prefix="bench-train-") as tmp:
        shards = write_shards(Path(tmp) / "shards", a.samples, a.shards, seed=0)
        results = {}
        for name, fn in (
            ("train_ours", lambda: ours(shards, Path(tmp) / "ours", a)),
            (
                "train_open_clip_train",
                lambda: open_clip_train(shards, a.shards, Path(tmp) / "oc", a),
            ),
        ):
            rates = fn()
            if len(rates) <= a.skip:
                sys.exit(f"{name}: only {len(rates)} step rates logged")
            samples, seconds = steady(rates, a.batch, a.skip)
            results[name] = report_rate(name, samples, seconds, "samples/s")
    report_ratio(
        "train_ours_vs_open_clip_train",
        results["train_ours"] / results["train_open_clip_train"],
        ">=",
        1.0,
    )


if __name__ == "__main__":
    main()
