"""Read the samples of one webdataset tar: image bytes with their byte offsets, grouped by key."""

from __future__ import annotations

import tarfile
from collections.abc import Iterator
from dataclasses import dataclass

IMAGE_EXTENSIONS = ("jpg", "jpeg", "png", "webp")


@dataclass(frozen=True)
class ImageMember:
    """One image member of a shard: its key, where its data starts in the tar, its bytes."""

    key: str
    offset: int
    data: bytes


def iter_images(tar_path: str) -> Iterator[ImageMember]:
    """Image members of a tar in file order. Member names are `KEY.ext`; anything with a
    path separator is skipped (webdataset keys are plain names)."""
    with tarfile.open(tar_path, mode="r:") as tar:
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
