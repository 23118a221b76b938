"""Read the samples of one webdataset tar: image bytes with their byte offsets, grouped by key."""

from __future__ import annotations

import contextlib
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass
from typing import BinaryIO

from pipeline.storage import StoragePath, as_path, filesystem, is_local

IMAGE_EXTENSIONS = ("jpg", "jpeg", "png", "webp")


@dataclass(frozen=True)
class ImageMember:
    """One image member of a shard: its key, where its data starts in the tar, its bytes."""

    key: str
    offset: int
    data: bytes


@contextlib.contextmanager
def open_binary(path: StoragePath) -> Iterator[BinaryIO]:
    """A file for reading, local or through fsspec (whose reads are byte-range requests)."""
    if is_local(path):
        with open(path, "rb") as f:
            yield f
    else:
        fs, inner = filesystem(path)
        with fs.open(inner, "rb") as f:
            yield f


def iter_images(tar_path: str | StoragePath) -> Iterator[ImageMember]:
    """Image members of a tar (a path or URL) in file order. Member names are `KEY.ext`;
    anything with a path separator is skipped (webdataset keys are plain names)."""
    with open_binary(as_path(tar_path)) as f, tarfile.open(fileobj=f, mode="r:") as tar:
        for member in tar:
            if not member.isfile() or "/" in member.name:
                continue
            key, _, ext = member.name.rpartition(".")
            if ext.lower() not in IMAGE_EXTENSIONS:
                continue
            handle = tar.extractfile(member)
            if handle is None:
                continue
            data = handle.read()
            if len(data) != member.size:
                # tarfile stops quietly at the end of a cut file: a short member means a cut tar.
                raise tarfile.ReadError(
                    f"member {member.name} truncated ({len(data)} of {member.size} bytes)"
                )
            yield ImageMember(key=key, offset=member.offset_data, data=data)
