"""Resolve a shard spec (a folder, a brace pattern or one tar) to a sorted list of tar URLs, with
per-shard sample counts from `sizes.json` when the folder has one (as open_clip's trainer reads)."""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

from webdataset.shardlists import expand_urls

from pipeline.errors import InputError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ShardSet:
    """Tar URLs in a fixed order and the sample count of each, where `sizes.json` gives it."""

    urls: tuple[str, ...]
    sizes: dict[str, int] = field(default_factory=dict)

    @property
    def num_samples(self) -> int | None:
        """Total samples, or None when some shard has no count."""
        if all(u in self.sizes for u in self.urls):
            return sum(self.sizes[u] for u in self.urls)
        return None

    def split(self, holdout: int) -> tuple[ShardSet, ShardSet]:
        """(training shards, the last `holdout` shards held out for evaluation)."""
        if holdout >= len(self.urls):
            raise InputError(
                f"train.holdout_shards={holdout} leaves no training shard ({len(self.urls)} found)"
            )
        keep, held = self.urls[: len(self.urls) - holdout], self.urls[len(self.urls) - holdout :]
        return ShardSet(keep, self.sizes), ShardSet(held, self.sizes)


def _is_remote(url: str) -> bool:
    # webdataset opens these through gopen (pipe:aws s3 cp ..., http...): not checked locally.
    return "://" in url or url.startswith("pipe:")


def _read_sizes(folder: Path) -> dict[str, int]:
    path = folder / "sizes.json"
    if not path.is_file():
        return {}
    try:
        raw = json.loads(path.read_text())
        return {str(name): int(count) for name, count in raw.items()}
    except (OSError, ValueError, AttributeError, TypeError) as exc:
        raise InputError(
            f"{path}: expected a JSON object of tar name -> sample count ({exc})"
        ) from exc


def resolve_shards(spec: str | Path) -> ShardSet:
    """A folder (all its .tar files), a brace pattern 'DIR/{00000..00003}.tar', or one tar file."""
    text = str(spec).strip()
    if not text:
        raise InputError(
            "no shards given: expected a folder of .tar files or 'DIR/{00000..00009}.tar'"
        )
    if not _is_remote(text) and Path(text).is_dir():
        folder = Path(text)
        urls = sorted(str(p) for p in folder.glob("*.tar"))
        if not urls:
            raise InputError(f"shards {folder}: no .tar file in this folder")
    else:
        # webdataset's own expansion: braces, and '::' joining several patterns.
        urls = list(expand_urls(text))
        local = [u for u in urls if not _is_remote(u)]
        missing = [u for u in local if not os.path.isfile(u)]
        if missing:
            raise InputError(
                f"shards {text}: {len(missing)} of {len(urls)} tar files do not exist (first: {missing[0]})"
            )
        if not urls:
            raise InputError(f"shards {text}: the pattern names no file")
    sizes: dict[str, int] = {}
    for folder in sorted({Path(u).parent for u in urls if not _is_remote(u)}):
        by_name = _read_sizes(folder)
        sizes.update(
            {
                u: by_name[Path(u).name]
                for u in urls
                if Path(u).parent == folder and Path(u).name in by_name
            }
        )
    shard_set = ShardSet(tuple(urls), sizes)
    log.info(
        "%d shards, %s samples",
        len(urls),
        shard_set.num_samples if shard_set.num_samples is not None else "unknown",
    )
    return shard_set
