"""`curate train`: check the inputs, build model, data and optimizer, resume from latest.pt when
there is one, and run the loop with evaluation and checkpoints. Bad input is an InputError
(exit 2) raised before anything is written."""

from __future__ import annotations

import json
import logging
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from pipeline.config import Config, dump_yaml
from pipeline.cores import usable_cores
from pipeline.errors import InputError
from pipeline.train import checkpoint
from pipeline.train.data import Batches, StreamPlan, TrainStream, probe, read_pairs, share
from pipeline.train.distributed import DistEnv, barrier, init_distributed, shutdown, sum_across
from pipeline.train.evaluate import (
    ZeroShotSet,
    load_zero_shot_set,
    retrieval,
    write_metrics,
    zero_shot,
)
from pipeline.train.loop import LoopParts, autocast_for, train_loop, truncate_log
from pipeline.train.optim import build_loss, build_optimizer, schedule_state
from pipeline.train.settings import TrainConfig
from pipeline.train.shards import ShardSet, resolve_shards

log = logging.getLogger(__name__)

TRAIN_LOG = "train_log.jsonl"


@dataclass(frozen=True)
class Inputs:
    """Everything checked before a file is written."""

    train: ShardSet
    val: ShardSet | None
    zero_shot: ZeroShotSet | None
    resume: dict | None
    slots: int


def _check_inputs(shards: str | Path, output: Path, cfg: TrainConfig, env: DistEnv) -> Inputs:
    import open_clip

    from pipeline.clip.models import register_project_configs

    found = resolve_shards(shards)
    if cfg.val_data:
        train, val = found, resolve_shards(cfg.val_data)
    elif cfg.holdout_shards:
        train, val = found.split(cfg.holdout_shards)
    else:
        train, val = found, None
    workers = max(1, cfg.workers)
    if cfg.batch_size % env.world_size:
        raise InputError(
            f"train.batch_size={cfg.batch_size} is not a multiple of the {env.world_size} processes"
        )
    if cfg.batch_size // env.world_size < workers:
        raise InputError(
            f"train.batch_size={cfg.batch_size} gives each of {env.world_size} process(es) fewer"
            f" samples than its {workers} loader workers; lower train.workers"
        )
    slots = env.world_size * workers
    if not cfg.resampled and len(train.urls) < slots:
        raise InputError(
            f"train.resampled=false needs at least one shard per loader worker and process"
            f" ({slots}), found {len(train.urls)}; use train.resampled=true or fewer workers"
        )
    probe(train)
    zero_shot_set = load_zero_shot_set(cfg.eval_data) if cfg.eval_data else None
    register_project_configs()
    if cfg.model not in open_clip.list_models():
        raise InputError(
            f"train.model: unknown architecture {cfg.model!r} (e.g. curate-tiny-vit, ViT-B-32;"
            " open_clip.list_models() names them all)"
        )
    if cfg.pretrained and not os.path.isfile(cfg.pretrained):
        tags = open_clip.list_pretrained_tags_by_model(cfg.model)
        if cfg.pretrained not in tags:
            raise InputError(
                f"train.pretrained: {cfg.pretrained} is neither a file nor an open_clip tag of"
                f" {cfg.model} ({', '.join(tags) or 'it has none'})"
            )
    latest = checkpoint.resume_path(output / "checkpoints")
    resume = checkpoint.load(latest) if latest is not None else None
    if resume is not None and resume.get("model") != cfg.model:
        raise InputError(
            f"{latest} was trained as {resume.get('model')!r}, not {cfg.model!r}:"
            " set train.model to match or use another --output"
        )
    return Inputs(train, val, zero_shot_set, resume, slots)


def _create_model(cfg: TrainConfig, env: DistEnv, pretrained: str):
    import open_clip

    # Same seed in every process: identical initial weights (DDP broadcasts rank 0's anyway).
    torch.manual_seed(cfg.seed)
    try:
        return open_clip.create_model_and_transforms(
            cfg.model, pretrained=pretrained or None, device=env.device, output_dict=True
        )
    except Exception as exc:  # open_clip raises many kinds for a file it cannot load as weights
        if not pretrained:
            raise
        first_line = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise InputError(f"train.pretrained {pretrained}: cannot load it ({first_line})") from exc


def _data_layout(cfg: TrainConfig, env: DistEnv, inputs: Inputs) -> dict:
    return {
        "slots": inputs.slots,
        "world_size": env.world_size,
        "workers": max(1, cfg.workers),
        "batch_size": cfg.batch_size,
        "seed": cfg.seed,
        "resampled": cfg.resampled,
        "shards": len(inputs.train.urls),
        "shuffle_buffer": cfg.shuffle_buffer,
    }


def _starts(resume: dict | None, layout: dict, cfg: TrainConfig, env: DistEnv) -> list[int]:
    """Per-slot stream positions to start from: exact when the data layout is unchanged."""
    slots = layout["slots"]
    if resume is None:
        return [0] * slots
    data = resume.get("data", {})
    if data.get("layout") == layout:
        return [int(p) for p in data["positions"]]
    log.warning(
        "data layout changed since the checkpoint (%s -> %s): the data order differs from an"
        " uninterrupted run",
        data.get("layout"),
        layout,
    )
    step = int(resume["step"])
    workers = layout["workers"]
    rank_batch = cfg.batch_size // env.world_size
    return [step * share(rank_batch, workers, s % workers) for s in range(slots)]


def draft_side(model: torch.nn.Module) -> int:
    """Smallest side a JPEG may be decoded at: twice the model's input, so the random crop and
    the resize still start from more pixels than they keep."""
    size = getattr(getattr(model, "visual", None), "image_size", None)
    if size is None:
        return 0
    side = max(size) if isinstance(size, tuple | list) else int(size)
    return 2 * side


def run_train(shards: str | Path, output: Path, config: Config) -> dict:
    """Train config.train.model on the shards; checkpoints and metrics go to `output`.

    Returns a summary: final step, last loss, final metrics, checkpoint path, samples/s.
    """
    cfg = config.train
    cfg.validate()
    env = init_distributed(cfg.device)
    threads = torch.get_num_threads()
    torch.set_num_threads(compute_threads(env, cfg.workers, threads))
    try:
        return _run(shards, Path(output), config, env)
    finally:
        torch.set_num_threads(threads)
        shutdown(env)


def compute_threads(env: DistEnv, workers: int, threads: int) -> int:
    """Torch threads of a lone CPU training process: the cores its loader workers leave free.
    Measured on the demo (2 cores, 1 worker): 556 samples/s with 1 thread, 466 with 2, where
    the worker's JPEG decoding and the training's matrix products fought over the same cores."""
    if env.device.type != "cpu" or env.world_size > 1 or workers == 0:
        return threads
    return max(1, min(threads, usable_cores() - workers))


def _run(shards: str | Path, output: Path, config: Config, env: DistEnv) -> dict:
    """The steps of a training run: check, build, resume, prepare the output, train, sum up."""
    import open_clip

    cfg = config.train
    inputs = _check_inputs(shards, output, cfg, env)
    model, preprocess_train, preprocess_val = _create_model(
        cfg, env, "" if inputs.resume else cfg.pretrained
    )
    tokenizer = open_clip.get_tokenizer(cfg.model)
    optimizer = build_optimizer(model, cfg)
    layout = _data_layout(cfg, env, inputs)
    start = _restore(inputs.resume, model, optimizer, cfg)
    starts = _starts(inputs.resume, layout, cfg, env)
    _prepare_output(output, config, start, env)
    raw_model = model
    if env.distributed:
        device_ids = [env.device.index] if env.device.type == "cuda" else None
        model = torch.nn.parallel.DistributedDataParallel(raw_model, device_ids=device_ids)
    plan = StreamPlan(inputs.train, inputs.slots, cfg.seed, cfg.resampled, cfg.shuffle_buffer)
    stream = TrainStream(
        plan,
        env.rank,
        cfg.workers,
        cfg.batch_size // env.world_size,
        starts,
        preprocess_train,
        tokenizer,
        draft_side=draft_side(raw_model),
    )
    batches = Batches(stream, cfg.workers, pin_memory=env.device.type == "cuda")
    autocast = autocast_for(cfg.precision, env.device)
    evaluator = _Evaluator(raw_model, inputs, cfg, env, output, preprocess_val, tokenizer, autocast)

    def on_checkpoint(step: int, loss: float | None) -> None:
        mine = [batches.positions.get(slot, 0) for slot in range(inputs.slots)]
        positions = sum_across(env, mine)
        if env.is_main:
            state = _checkpoint_state(raw_model, optimizer, cfg, env, step, loss)
            state["data"] = {"layout": layout, "positions": positions}
            checkpoint.save(output / "checkpoints", state, keep=cfg.keep_checkpoints)

    began = time.perf_counter()
    try:
        last_loss = train_loop(
            LoopParts(
                model, raw_model, build_loss(env.rank, env.world_size), optimizer, batches, autocast
            ),
            cfg,
            env,
            start,
            output / TRAIN_LOG,
            evaluator,
            on_checkpoint,
        )
    finally:
        batches.close()
    if start >= cfg.steps and _measured_elsewhere(output, start, inputs):
        # A finished model whose eval set changed since: measured again on today's set.
        log.info("the eval set changed since %s was evaluated; evaluating it again", output)
        evaluator(start, (inputs.resume or {}).get("loss"))
    return _summary(output, cfg, inputs.resume, start, last_loss, evaluator.final, began)


def _measured_elsewhere(output: Path, step: int, inputs: Inputs) -> bool:
    """Whether the metrics of `step` were measured on another zero-shot set than this run's
    (or on none, where it has one)."""
    if inputs.zero_shot is None:
        return False
    path = output / "metrics" / f"step_{step:06d}.json"
    recorded = json.loads(path.read_text()).get("zeroshot_set") if path.is_file() else None
    return recorded != inputs.zero_shot.digest


def _restore(resume: dict | None, model, optimizer, cfg: TrainConfig) -> int:  # type: ignore[no-untyped-def]
    """Load a checkpoint's weights, optimizer state and RNG; the step to start from (0: none)."""
    if resume is None:
        return 0
    model.load_state_dict(resume["state_dict"])
    optimizer.load_state_dict(resume["optimizer"])
    start = int(resume["step"])
    if resume.get("scheduler") != schedule_state(cfg):
        log.warning(
            "learning-rate schedule changed since the checkpoint: %s", resume.get("scheduler")
        )
    if "rng" in resume:
        torch.set_rng_state(resume["rng"]["torch"])
    log.info("resuming from step %d of %d", start, cfg.steps)
    return start


def _prepare_output(output: Path, config: Config, start: int, env: DistEnv) -> None:
    """On the main process: the checkpoint folder without a killed run's partial files, the
    config, and the log cut back to the step the run starts from."""
    if env.is_main:
        ckpt_dir = output / "checkpoints"
        ckpt_dir.mkdir(parents=True, exist_ok=True)
        checkpoint.remove_partial(ckpt_dir)
        (output / "config.yaml").write_text(dump_yaml(config))
        truncate_log(output / TRAIN_LOG, start)
    barrier(env)


# Per-image results in the metrics files, left out of the log line.
PER_IMAGE = ("zeroshot_hits", "eval_i2t_hits", "eval_t2i_hits")


class _Evaluator:
    """The loop's evaluation callback: zero-shot and retrieval on the main process, metrics
    written per evaluation; `final` holds the last ones."""

    def __init__(
        self,
        model,
        inputs: Inputs,
        cfg: TrainConfig,
        env: DistEnv,
        output: Path,
        preprocess,
        tokenizer,
        autocast,
    ) -> None:  # type: ignore[no-untyped-def]
        self.model, self.inputs, self.cfg, self.env, self.output = model, inputs, cfg, env, output
        self.preprocess, self.tokenizer, self.autocast = preprocess, tokenizer, autocast
        self.pairs = read_pairs(inputs.val, cfg.eval_pairs) if inputs.val and env.is_main else []
        self.final: dict = {}

    def __call__(self, step: int, loss: float | None) -> None:
        if self.env.is_main:
            self.model.eval()
            metrics: dict = {
                "step": step,
                "samples_seen": step * self.cfg.batch_size,
                "train_loss": loss,
            }
            args = (self.preprocess, self.tokenizer, self.env.device, self.cfg.eval_batch_size)
            if self.inputs.zero_shot is not None:
                metrics |= zero_shot(
                    self.model,
                    self.inputs.zero_shot,
                    self.cfg.eval_templates,
                    *args,
                    self.autocast,
                    draft=draft_side(self.model),
                )
            if self.pairs:
                metrics |= retrieval(self.model, self.pairs, *args, self.autocast)
            write_metrics(self.output, metrics)
            shown = {k: v for k, v in metrics.items() if k not in PER_IMAGE}
            log.info("eval at step %d: %s", step, json.dumps(shown, sort_keys=True))
            self.final = metrics
        barrier(self.env)


def _checkpoint_state(
    model, optimizer, cfg: TrainConfig, env: DistEnv, step: int, loss: float | None
) -> dict:  # type: ignore[no-untyped-def]
    """A checkpoint's content, less the data positions (see pipeline/train/checkpoint.py)."""
    rng = {"torch": torch.get_rng_state()}
    if env.device.type == "cuda":
        rng["cuda"] = torch.cuda.get_rng_state(env.device)
    return {
        "state_dict": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "scheduler": schedule_state(cfg),
        "step": step,
        "model": cfg.model,
        "config": asdict(cfg),
        "rng": rng,
        "loss": loss,
    }


def _summary(
    output: Path,
    cfg: TrainConfig,
    resume: dict | None,
    start: int,
    last_loss: float | None,
    final: dict,
    began: float,
) -> dict:
    """What run_train returns: final step, last loss, final metrics, checkpoint path, samples/s."""
    seconds = time.perf_counter() - began
    trained = max(0, cfg.steps - start)
    latest = output / "checkpoints" / checkpoint.LATEST
    final = dict(final)
    if trained == 0:
        log.info("nothing to do: %s is already at step %d", latest, start)
        done_metrics = output / "metrics" / f"step_{start:06d}.json"
        if done_metrics.exists():
            final.update(json.loads(done_metrics.read_text()))
    return {
        "step": max(start, cfg.steps),
        "resumed_from": start if resume is not None else None,
        "loss": last_loss if last_loss is not None else (resume or {}).get("loss"),
        "metrics": final,
        "checkpoint": str(latest),
        "samples_per_s": trained * cfg.batch_size / seconds if trained and seconds > 0 else 0.0,
    }
