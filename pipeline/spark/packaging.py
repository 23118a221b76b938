"""The `spark-submit --py-files` package: the `pipeline` and `schemas` packages zipped
reproducibly, so executors without a checkout import the same code as the driver."""

from __future__ import annotations

import logging
import zipfile
from pathlib import Path

from pipeline.files import write_atomically

log = logging.getLogger(__name__)

PACKAGES = ("pipeline", "schemas")
DEFAULT_ZIP = Path("dist/curate.zip")
# Fixed timestamp for every zip entry: the same sources give a byte-identical package.
_ZIP_TIME = (1980, 1, 1, 0, 0, 0)


def project_root() -> Path:
    """The repository root: the folder holding the `pipeline` and `schemas` packages."""
    return Path(__file__).resolve().parents[2]


def build_pyfiles_zip(out: Path | str = DEFAULT_ZIP, root: Path | None = None) -> Path:
    """Zip the `pipeline` and `schemas` packages for `spark-submit --py-files`.

    Every file of the packages but caches goes in, in sorted order with a fixed timestamp, so the
    same sources give the same bytes. Written to a temporary name and renamed when complete.
    """
    root = root or project_root()
    out = Path(out)
    if not out.is_absolute():
        out = root / out
    count = 0

    def write(tmp: Path) -> None:
        nonlocal count
        with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as archive:
            for package in PACKAGES:
                for path in sorted((root / package).rglob("*")):
                    rel = path.relative_to(root)
                    if not path.is_file() or path.suffix == ".pyc":
                        continue
                    if any(part == "__pycache__" or part.startswith(".") for part in rel.parts):
                        continue
                    info = zipfile.ZipInfo(rel.as_posix(), date_time=_ZIP_TIME)
                    info.compress_type = zipfile.ZIP_DEFLATED
                    info.external_attr = 0o644 << 16
                    archive.writestr(info, path.read_bytes())
                    count += 1

    write_atomically(out, write)
    log.info("packaged %d files of %s into %s", count, ", ".join(PACKAGES), out)
    return out
