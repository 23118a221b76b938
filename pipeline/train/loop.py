"""The training loop: one optimizer step per global batch, open_clip style (InfoNCE, clip the
gradient norm, AdamW, clamp the temperature), with periodic logging, evaluation and checkpoints."""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import torch
from tqdm import tqdm

from pipeline.train.distributed import DistEnv
from pipeline.train.optim import clamp_logit_scale, cosine_lr, set_lr
from pipeline.train.settings import TrainConfig

log = logging.getLogger(__name__)


def autocast_for(
    precision: str, device: torch.device
) -> Callable[[], contextlib.AbstractContextManager]:
    """bf16 autocast on GPU (open_clip's amp_bf16), plain fp32 on CPU unless bf16 is forced."""
    if precision == "bf16" or (precision == "auto" and device.type == "cuda"):
        return functools.partial(torch.autocast, device_type=device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext


def train_step(
    model: torch.nn.Module,
    raw_model: torch.nn.Module,
    loss_fn: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    images: torch.Tensor,
    texts: torch.Tensor,
    lr: float,
    grad_clip: float,
    autocast: Callable[[], contextlib.AbstractContextManager],
) -> torch.Tensor:
    """One step on this process's share of the global batch; returns the (global) loss, detached."""
    set_lr(optimizer, lr)
    optimizer.zero_grad(set_to_none=True)
    with autocast():
        out = model(images, texts)
        loss = loss_fn(out["image_features"], out["text_features"], out["logit_scale"])
    loss.backward()
    if grad_clip > 0:
        torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip, norm_type=2.0)
    optimizer.step()
    clamp_logit_scale(raw_model)
    return loss.detach()


@dataclass
class LoopParts:
    """What the loop drives. `model` may be DDP-wrapped; `raw_model` is the bare open_clip model."""

    model: torch.nn.Module
    raw_model: torch.nn.Module
    loss_fn: torch.nn.Module
    optimizer: torch.optim.Optimizer
    batches: Iterator[tuple[torch.Tensor, torch.Tensor]]
    autocast: Callable[[], contextlib.AbstractContextManager]


def truncate_log(path: Path, step: int) -> None:
    """Drop log lines past `step` (written by a run that was killed after its last checkpoint)."""
    if not path.exists():
        return
    kept = [
        line for line in path.read_text().splitlines() if line and json.loads(line)["step"] <= step
    ]
    path.write_text("".join(line + "\n" for line in kept))


def train_loop(
    parts: LoopParts,
    cfg: TrainConfig,
    env: DistEnv,
    start_step: int,
    log_path: Path,
    on_eval: Callable[[int, float | None], None],
    on_checkpoint: Callable[[int, float | None], None],
) -> float | None:
    """Train from `start_step` to `cfg.steps`; evaluate, then checkpoint, when due and at the end.

    Returns the loss of the last step (None when there was nothing left to do).
    """
    parts.model.train()
    device = env.device
    last_loss: float | None = None
    window_start, window_steps = time.perf_counter(), 0
    bar = tqdm(
        total=cfg.steps,
        initial=start_step,
        unit="step",
        desc="train",
        disable=None if env.is_main else True,
    )
    for step in range(start_step, cfg.steps):
        images, texts = next(parts.batches)
        images = images.to(device, non_blocking=True)
        texts = texts.to(device, non_blocking=True)
        lr = cosine_lr(step, cfg.lr, cfg.warmup_steps, cfg.steps)
        loss = train_step(
            parts.model,
            parts.raw_model,
            parts.loss_fn,
            parts.optimizer,
            images,
            texts,
            lr,
            cfg.grad_clip,
            parts.autocast,
        )
        done = step + 1
        window_steps += 1
        bar.update(1)
        if done % cfg.log_every == 0 or done == cfg.steps:
            last_loss = loss.item()
            elapsed = time.perf_counter() - window_start
            rate = window_steps * cfg.batch_size / elapsed if elapsed > 0 else 0.0
            scale = parts.raw_model.logit_scale.exp().item()
            bar.set_postfix(loss=f"{last_loss:.4f}", samples_s=f"{rate:.1f}")
            if env.is_main:
                entry = {
                    "step": done,
                    "loss": last_loss,
                    "lr": lr,
                    "logit_scale": scale,
                    "samples_per_s": rate,
                }
                with log_path.open("a") as fh:
                    fh.write(json.dumps(entry) + "\n")
            # Without a terminal the bar is off: the log carries the progress instead.
            level = logging.INFO if bar.disable and env.is_main else logging.DEBUG
            log.log(
                level,
                "step %d/%d loss %.4f lr %.3g scale %.2f %.1f samples/s",
                done,
                cfg.steps,
                last_loss,
                lr,
                scale,
                rate,
            )
            window_start, window_steps = time.perf_counter(), 0
        final = done == cfg.steps
        paused = time.perf_counter()
        # Evaluation first: a run killed between the two redoes both, and metrics are idempotent.
        if final or (cfg.eval_every and done % cfg.eval_every == 0):
            on_eval(done, last_loss)
            parts.model.train()
        if final or (cfg.checkpoint_every and done % cfg.checkpoint_every == 0):
            on_checkpoint(done, last_loss)
        # Evaluation and checkpoints are not training time.
        window_start += time.perf_counter() - paused
    bar.close()
    return last_loss
