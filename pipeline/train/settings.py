"""The `train` config section: the bundled trainer (defaults follow open_clip and DataComp
small)."""

from __future__ import annotations

from dataclasses import dataclass

from pipeline.errors import ConfigError

# Mixed precision modes of the trainer.
PRECISIONS = ("auto", "fp32", "bf16")


@dataclass(frozen=True)
class TrainConfig:
    """`train` section (the bundled trainer; defaults follow open_clip and DataComp small): model, data, optimisation, checkpoints and evaluation."""

    # Any open_clip architecture name, or one of the JSON configs in pipeline/clip/model_configs.
    model: str = "curate-tiny-vit"
    # Checkpoint file to start from (ours or open_clip's); empty starts from random weights.
    pretrained: str = ""
    # Global batch (all processes together); each of N processes gets batch_size / N.
    batch_size: int = 64
    # Optimizer steps in the whole run (the cosine schedule ends here).
    steps: int = 300
    # open_clip ViT recipe: AdamW lr 5e-4, betas (0.9, 0.98), eps 1e-6, weight decay 0.2.
    lr: float = 5e-4
    # AdamW first-moment decay (open_clip ViT recipe).
    beta1: float = 0.9
    # AdamW second-moment decay (open_clip ViT recipe).
    beta2: float = 0.98
    # AdamW epsilon (open_clip ViT recipe).
    eps: float = 1e-6
    # Decoupled weight decay, never applied to gains, biases or the temperature (as open_clip).
    weight_decay: float = 0.2
    # Also decay 2-D positional and token embeddings, as open_clip's trainer does; false exempts them.
    decay_embeddings: bool = True
    # Linear warmup steps before the cosine decay (DataComp small/medium: 500 at full scale).
    warmup_steps: int = 30
    # Global gradient-norm clip; 0 turns clipping off.
    grad_clip: float = 1.0
    # DataLoader worker processes per training process; 0 decodes in the training process.
    workers: int = 1
    # Samples in each data stream's shuffle buffer (webdataset shuffle).
    shuffle_buffer: int = 1000
    # Draw shards with replacement (wds.ResampledShards); false walks epochs without replacement.
    resampled: bool = True
    # Seeds model init, shard order, shuffling and augmentation: CPU runs are bit-reproducible.
    seed: int = 0
    # Write a checkpoint every N steps (and always at the end); 0 only at the end.
    checkpoint_every: int = 100
    # Step checkpoints kept on disk (newest first); 0 keeps all. latest.pt is always kept.
    keep_checkpoints: int = 0
    # Zero-shot set: a folder with eval.parquet (path, label) and the images; empty skips it.
    eval_data: str = ""
    # Prompt templates for zero-shot class embeddings, "{}" replaced by the class name.
    eval_templates: tuple[str, ...] = (
        "a photo of a {}.",
        "a picture of a {}.",
        "an illustration of a {}.",
        "a close-up photo of the {}.",
    )
    # Held-out pairs for retrieval recall: shards (folder or brace pattern); empty: see holdout_shards.
    val_data: str = ""
    # When val_data is empty: this many trailing training shards are held out for retrieval eval.
    holdout_shards: int = 0
    # At most this many held-out pairs are scored for retrieval (first ones in shard order).
    eval_pairs: int = 1000
    # Evaluate every N steps (and always at the end); 0 only at the end.
    eval_every: int = 0
    # Batch size of evaluation forward passes.
    eval_batch_size: int = 256
    # Append a line to train_log.jsonl (and refresh the progress bar) every N steps.
    log_every: int = 10
    # auto: bf16 autocast on GPU, fp32 on CPU (open_clip's amp_bf16); fp32 or bf16 force one.
    precision: str = "auto"
    # auto: cuda when available (one GPU per process under torchrun), else cpu; or cpu / cuda.
    device: str = "auto"

    def validate(self) -> None:
        positive = ("batch_size", "steps", "shuffle_buffer", "eval_batch_size", "log_every")
        for name in positive:
            if getattr(self, name) < 1:
                raise ConfigError(
                    f"config train.{name}: must be at least 1, got {getattr(self, name)}"
                )
        non_negative = (
            "warmup_steps",
            "workers",
            "checkpoint_every",
            "keep_checkpoints",
            "holdout_shards",
            "eval_pairs",
            "eval_every",
            "grad_clip",
            "weight_decay",
        )
        for name in non_negative:
            if getattr(self, name) < 0:
                raise ConfigError(f"config train.{name}: must be >= 0, got {getattr(self, name)}")
        if self.lr <= 0 or self.eps <= 0:
            raise ConfigError(f"config train: lr and eps must be > 0, got {self.lr} and {self.eps}")
        for name in ("beta1", "beta2"):
            if not 0.0 <= getattr(self, name) < 1.0:
                raise ConfigError(
                    f"config train.{name}: must be in [0, 1), got {getattr(self, name)}"
                )
        if self.precision not in PRECISIONS:
            raise ConfigError(
                f"config train.precision: expected one of {', '.join(PRECISIONS)}, got {self.precision!r}"
            )
        if self.device not in ("auto", "cpu", "cuda"):
            raise ConfigError(
                f"config train.device: expected auto, cpu or cuda, got {self.device!r}"
            )
        if not self.eval_templates or any("{}" not in t for t in self.eval_templates):
            raise ConfigError(
                "config train.eval_templates: expected a list of prompts containing {}, e.g. ['a photo of a {}.']"
            )
