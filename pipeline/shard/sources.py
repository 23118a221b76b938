"""Image bytes read out of the downloaded tars by (tar, offset, size), straight into the shard
writer's buffer: `preadv` on a local disk, byte-range requests through fsspec for a URL (S3,
GCS ... have no seek; one concurrent batch of ranges per buffer chunk)."""

from __future__ import annotations

import os
from collections.abc import Sequence

from pipeline.storage import StoragePath, as_path, filesystem, is_local

# One image to read: its source shard id (e.g. '00003'), its offset in that tar, where it goes.
Read = tuple[str, int, memoryview]


class SourceTars:
    """Reads from the tars `<downloads>/<shard>.tar`; local files stay open until `close`."""

    def __init__(self, downloads: str | StoragePath) -> None:
        self.downloads = as_path(downloads)
        self._fds: dict[str, int] = {}

    def read_into(self, reads: Sequence[Read]) -> None:
        """Fill each target view with the bytes at its offset; OSError on a short read."""
        if is_local(self.downloads):
            # In (source, offset) order: each source tar is read front to back.
            for source, offset, target in sorted(reads, key=lambda r: (r[0], r[1])):
                fd = self._fds.get(source)
                if fd is None:
                    fd = self._fds[source] = os.open(self.downloads / f"{source}.tar", os.O_RDONLY)
                if os.preadv(fd, [target], offset) != len(target):
                    raise OSError(f"{source}.tar: short read at offset {offset}")
            return
        # An empty range is no request (and some stores answer it with the whole object).
        reads = [r for r in reads if len(r[2])]
        if not reads:
            return
        fs, inner = filesystem(self.downloads)
        paths = [f"{inner}/{source}.tar" for source, _, _ in reads]
        starts = [offset for _, offset, _ in reads]
        ends = [offset + len(target) for _, offset, target in reads]
        # cat_ranges issues the requests concurrently on async stores (s3fs, gcsfs).
        for (source, offset, target), data in zip(
            reads, fs.cat_ranges(paths, starts, ends), strict=True
        ):
            if len(data) != len(target):
                raise OSError(f"{source}.tar: short read at offset {offset}")
            target[:] = data

    def close(self) -> None:
        for fd in self._fds.values():
            os.close(fd)
        self._fds.clear()
