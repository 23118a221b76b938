"""Training batches from webdataset shards, resumable at any step.

The data is split into `slots` (processes x loader workers); each slot is an endless, seeded
stream of passes over its shards (resampled with wds.ResampledShards, or a share of each epoch's
permutation), shuffled in a buffer, decoded, augmented (seeded per sample) and cut into that
slot's share of every global batch. A step's global batch is the slots' shares in slot order, so
(when the batch divides evenly) it depends on the number of slots but not on how they are spread
over processes and workers. A resumed run skips what was consumed (whole passes by their
sizes.json counts, the rest without decoding) and sees exactly the batches an uninterrupted run
would have seen.
"""

from __future__ import annotations

import io
import itertools
import logging
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import fsspec
import numpy as np
import torch
import webdataset as wds
from PIL import Image
from torch.utils.data import DataLoader, IterableDataset, get_worker_info

from pipeline.errors import InputError
from pipeline.storage import is_url
from pipeline.train.shards import ShardSet

log = logging.getLogger(__name__)

IMAGE_EXTS = ("jpg", "jpeg", "png", "webp")
# A pass that yields nothing this many times in a row means the shards hold no usable sample.
MAX_EMPTY_PASSES = 20


def _seed(*parts: int) -> int:
    """A 63-bit seed mixed from integers (stable across runs and Python hash randomisation)."""
    return int(np.random.SeedSequence(list(parts)).generate_state(1, dtype=np.uint64)[0] >> 1)


def _log_and_continue(exn: Exception) -> bool:
    log.warning("skipping unreadable shard data: %r", exn)
    return True


def share(total: int, parts: int, index: int) -> int:
    """Size of part `index` when `total` items are split as evenly as possible into `parts`."""
    return total // parts + (1 if index < total % parts else 0)


def open_streams(urls: list[str]) -> Iterator[dict]:
    """(url, stream) of each tar, as webdataset's url_opener yields them: object-store URLs
    (s3://, gs://, hdfs://, file://) through fsspec, which webdataset's gopen lacks; paths,
    http(s) and pipe: through gopen as before."""
    for url in urls:
        if not uses_fsspec(url):
            yield from wds.tariterators.url_opener([{"url": url}], handler=_log_and_continue)
            continue
        try:
            stream = fsspec.open(url, "rb").open()
        except OSError as exn:
            _log_and_continue(exn)
            continue
        yield {"url": url, "stream": stream}


def uses_fsspec(url: str) -> bool:
    """True for a URL whose scheme webdataset's gopen does not open (s3, gs, hdfs, file ...)."""
    return is_url(url) and not url.startswith(("http://", "https://", "pipe:"))


def complete_samples(urls: list[str]) -> Iterator[dict]:
    """Raw samples (bytes per extension) of the tars in order, those with an image and a caption."""
    files = wds.tariterators.tar_file_expander(open_streams(urls), handler=_log_and_continue)
    for sample in wds.tariterators.group_by_keys(files, handler=_log_and_continue):
        if "txt" in sample and any(ext in sample for ext in IMAGE_EXTS):
            yield sample


@dataclass(frozen=True)
class StreamPlan:
    """Which shards each slot reads in each pass, and in what shuffled order."""

    shards: ShardSet
    slots: int
    seed: int
    resampled: bool
    shuffle_buffer: int

    def pass_shards(self, slot: int, index: int) -> list[str]:
        """The shards slot `slot` reads in its pass number `index`."""
        urls = list(self.shards.urls)
        if self.resampled:
            # Each pass draws about one epoch's worth of shards per slot, with replacement.
            per_slot = -(-len(urls) // self.slots)
            seed = _seed(self.seed, slot, index, 1)
            drawn = wds.ResampledShards(
                urls, nshards=per_slot, worker_seed=lambda: seed, deterministic=True
            )
            return [d["url"] for d in drawn]
        order = random.Random(_seed(self.seed, index, 2)).sample(urls, len(urls))
        return order[slot :: self.slots]

    def pass_size(self, urls: list[str]) -> int | None:
        """Samples in a pass over `urls`, when sizes.json counts all of them."""
        if all(u in self.shards.sizes for u in urls):
            return sum(self.shards.sizes[u] for u in urls)
        return None

    def samples(self, slot: int, start: int) -> Iterator[dict]:
        """Slot `slot`'s endless raw sample stream, from its sample number `start` on."""
        to_skip = start
        empty = 0
        for index in itertools.count():
            urls = self.pass_shards(slot, index)
            size = self.pass_size(urls)
            if size is not None and to_skip >= size > 0:
                to_skip -= size  # a whole pass consumed before: not even read
                continue
            rng = random.Random(_seed(self.seed, slot, index, 3))
            # The buffer drains at the end of each pass, so passes are independent of each other.
            shuffled = wds.filters._shuffle(
                complete_samples(urls), self.shuffle_buffer, self.shuffle_buffer, rng
            )
            yielded = 0
            for sample in shuffled:
                yielded += 1
                if to_skip:
                    to_skip -= 1
                    continue
                yield sample
            empty = 0 if yielded else empty + 1
            if empty >= MAX_EMPTY_PASSES:
                raise RuntimeError(
                    f"slot {slot}: {empty} passes over the shards gave no sample with an image and a caption"
                )


class Decoder:
    """Bytes of one sample to (image tensor, caption), with augmentation seeded by sample number."""

    def __init__(self, preprocess: Callable, seed: int, slot: int, draft_side: int = 0) -> None:
        self.preprocess = preprocess
        self.base = _seed(seed, slot, 4)
        self.draft_side = draft_side

    def __call__(self, sample: dict, number: int) -> tuple[torch.Tensor, str] | None:
        ext = next(e for e in IMAGE_EXTS if e in sample)
        try:
            with Image.open(io.BytesIO(sample[ext])) as img:
                if self.draft_side:
                    # JPEG DCT scaling: decode at 1/2, 1/4 or 1/8 size when that still covers
                    # draft_side pixels, several times faster than a full decode.
                    img.draft("RGB", (self.draft_side, self.draft_side))
                image = img.convert("RGB")
            caption = sample["txt"].decode("utf-8").strip()
        except Exception as exc:  # a corrupt image is dropped, never the run
            log.warning(
                "skipping sample %s of %s: %s", sample.get("__key__"), sample.get("__url__"), exc
            )
            return None
        # open_clip's train transform draws from torch's global RNG: seeding it per sample makes
        # the augmentation independent of worker scheduling and reproducible after a resume.
        torch.default_generator.manual_seed((self.base + number) % 2**63)
        return self.preprocess(image), caption


class TrainStream(IterableDataset):
    """This process's slots as a DataLoader dataset: worker w of rank r is slot r * W + w.

    Each item is (images, tokens, slot, position): one slot's share of a step, and the number of
    raw samples that slot has consumed so far (the resume point, exact even when a corrupt image
    was dropped and the share took one more sample).
    """

    def __init__(
        self,
        plan: StreamPlan,
        rank: int,
        workers: int,
        rank_batch: int,
        starts: list[int],
        preprocess: Callable,
        tokenizer: Callable,
        draft_side: int = 0,
    ) -> None:
        super().__init__()
        self.plan = plan
        self.rank = rank
        self.workers = max(1, workers)
        self.rank_batch = rank_batch
        self.starts = list(starts)
        self.preprocess = preprocess
        self.tokenizer = tokenizer
        self.draft_side = draft_side

    @property
    def slots(self) -> list[int]:
        """The slots this process reads."""
        return [self.rank * self.workers + w for w in range(self.workers)]

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor, int, int]]:
        info = get_worker_info()
        slot = self.rank * self.workers + (info.id if info is not None else 0)
        # Every process must bring the same number of samples (the loss gathers equal shapes).
        size = share(self.rank_batch, self.workers, slot - self.rank * self.workers)
        number = self.starts[slot]
        decode = Decoder(self.preprocess, self.plan.seed, slot, self.draft_side)
        images: list[torch.Tensor] = []
        captions: list[str] = []
        # fork_rng: with workers=0 this runs in the training process, whose RNG stays untouched.
        with torch.random.fork_rng(devices=[]):
            for sample in self.plan.samples(slot, number):
                decoded = decode(sample, number)
                number += 1
                if decoded is None:
                    continue
                images.append(decoded[0])
                captions.append(decoded[1])
                if len(images) == size:
                    yield torch.stack(images), self.tokenizer(captions), slot, number
                    images, captions = [], []


class Batches:
    """This process's batches, one per step: its workers' shares concatenated in worker order.

    `positions` maps each of this process's slots to the raw samples it has consumed up to the
    last batch returned (what a checkpoint stores).
    """

    def __init__(self, stream: TrainStream, workers: int, pin_memory: bool = False) -> None:
        self.loader = DataLoader(
            stream,
            batch_size=None,
            num_workers=workers,
            pin_memory=pin_memory,
            prefetch_factor=4 if workers else None,
        )
        self.per_step = max(1, workers)
        self.positions = {slot: stream.starts[slot] for slot in stream.slots}
        self._parts: Iterator | None = None

    def __iter__(self) -> Batches:
        return self

    def __next__(self) -> tuple[torch.Tensor, torch.Tensor]:
        if self._parts is None:
            self._parts = iter(self.loader)
        # DataLoader takes from its workers round-robin and in order, so W consecutive items
        # are one share from each worker, worker 0 first.
        chunk = [next(self._parts) for _ in range(self.per_step)]
        for _, _, slot, position in chunk:
            self.positions[slot] = position
        return torch.cat([c[0] for c in chunk]), torch.cat([c[1] for c in chunk])

    def close(self) -> None:
        """Stop the loader's worker processes (the streams are endless)."""
        shutdown = getattr(self._parts, "_shutdown_workers", None)
        if shutdown is not None:
            shutdown()
        self._parts = None


def probe(shards: ShardSet) -> None:
    """Fail fast (InputError) when the first shard cannot be read or holds no usable sample."""
    first = shards.urls[0]
    try:
        next(complete_samples([first]))
    except StopIteration:
        raise InputError(
            f"shard {first}: no sample with an image (.{'/.'.join(IMAGE_EXTS)}) and a caption (.txt)"
        ) from None


def read_pairs(shards: ShardSet, limit: int) -> list[tuple[bytes, str]]:
    """The first `limit` (image bytes, caption) pairs of `shards` in order, for retrieval eval."""
    pairs = []
    for sample in itertools.islice(complete_samples(list(shards.urls)), limit):
        ext = next(e for e in IMAGE_EXTS if e in sample)
        pairs.append((sample[ext], sample["txt"].decode("utf-8", errors="replace").strip()))
    return pairs
