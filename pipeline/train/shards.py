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
from pipeline.storage import StoragePath, as_path, is_url

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


def _read_sizes(folder: StoragePath) -> dict[str, int]:
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


def _uses_fsspec(url: str) -> bool:
    # Object-store URLs (s3://, gs://, hdfs://, file://): listed and read through fsspec.
    return is_url(url) and not url.startswith(("http://", "https://", "pipe:"))


def _split(url: str) -> tuple[str, str]:
    """(folder, file name) of a tar path or URL; a bare name's folder is "."."""
    folder, slash, name = url.rpartition("/")
    return folder or slash or ".", name


def _folder(text: str) -> StoragePath | None:
    """The folder `text` names (a plain path or an fsspec URL), or None for a pattern, a tar,
    or a URL only webdataset opens (http, pipe:)."""
    if any(ch in text for ch in "{}") or (_is_remote(text) and not _uses_fsspec(text)):
        return None
    folder = as_path(text.rstrip("/")) if is_url(text) else Path(text)
    return folder if folder.is_dir() else None


def resolve_shards(spec: str | Path) -> ShardSet:
    """A folder (all its .tar files), a brace pattern 'DIR/{00000..00003}.tar', or one tar file."""
    text = str(spec).strip()
    if not text:
        raise InputError(
            "no shards given: expected a folder of .tar files or 'DIR/{00000..00009}.tar'"
        )
    folder = _folder(text)
    if folder is not None:
        urls = sorted(str(p) for p in folder.glob("*.tar"))
        if not urls:
            if (folder / "sizes.json").is_file() and not any(_read_sizes(folder).values()):
                # A run whose every pair was dropped: its shard stage completed with no shard.
                raise InputError(
                    f"shards {folder}: nothing to train on (the shard stage kept no sample:"
                    " sizes.json is {})"
                )
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
    # sizes.json beside the tars: on disk, or in the store of an fsspec URL (s3://...).
    readable = [u for u in urls if not _is_remote(u) or _uses_fsspec(u)]
    for parent in sorted({_split(u)[0] for u in readable}):
        by_name = _read_sizes(Path(parent) if not is_url(parent) else as_path(parent))
        sizes.update(
            {
                u: by_name[name]
                for u in readable
                for folder, name in [_split(u)]
                if folder == parent and name in by_name
            }
        )
    shard_set = ShardSet(tuple(urls), sizes)
    log.info(
        "%d shards, %s samples",
        len(urls),
        shard_set.num_samples if shard_set.num_samples is not None else "unknown",
    )
    return shard_set
