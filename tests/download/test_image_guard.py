"""Header and truncation checks before decoding; the bomb is refused without allocating it."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import textwrap

import pytest
from PIL import Image

from pipeline.download.image_guard import inspect_image


def _jpeg(size=(300, 240)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, (200, 30, 30)).save(buf, "JPEG", quality=90)
    return buf.getvalue()


def _png(size=(300, 240), mode="RGB") -> bytes:
    buf = io.BytesIO()
    Image.new(mode, size).save(buf, "PNG")
    return buf.getvalue()


def _bomb() -> bytes:
    # A 1-bit 14000x14000 PNG of zeros: about 24 kB on disk, 196 megapixels decoded.
    buf = io.BytesIO()
    Image.new("1", (14000, 14000)).save(buf, "PNG", optimize=True)
    return buf.getvalue()


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (_jpeg(), None),
        (_jpeg() + b"\x00" * 100, None),  # padding after the end-of-image marker is fine
        (_png(), None),
        (
            _jpeg()[: len(_jpeg()) // 2],
            "Image decoding error: truncated JPEG (no end-of-image marker)",
        ),
        (_png()[:-20], "Image decoding error: truncated PNG (no IEND chunk)"),
        (b"", "Image decoding error: not a recognised image (UnidentifiedImageError)"),
        (
            b"<html><body>nope</body></html>",
            "Image decoding error: not a recognised image (UnidentifiedImageError)",
        ),
        (_png((9000, 9000), "1"), "[too_many_pixels] 9000x9000 declared, limit 50000000 pixels"),
    ],
)
def test_inspect_image(data, expected):
    assert inspect_image(data, max_pixels=50_000_000) == expected


def _photo(name: str, progressive: bool) -> bytes:
    from skimage import data  # real photographs, shipped with scikit-image

    buf = io.BytesIO()
    Image.fromarray(getattr(data, name)()).save(buf, "JPEG", quality=90, progressive=progressive)
    return buf.getvalue()


PHOTOS = {
    (name, progressive): _photo(name, progressive)
    for name in ("astronaut", "coffee", "chelsea")
    for progressive in (False, True)
}
EOI = b"\xff\xd9"


@pytest.mark.parametrize("cut", [0.3, 0.6, 0.9])
@pytest.mark.parametrize(("name", "progressive"), list(PHOTOS))
def test_a_truncated_photograph_is_a_decode_error_with_or_without_an_end_marker(
    name, progressive, cut
):
    """Closed again with an end-of-image marker (and junk after it), a truncated JPEG passes the
    tail check; libjpeg's own 'premature end' warning catches it (the issue's grey lower half)."""
    full = PHOTOS[name, progressive]
    head = full[: int(len(full) * cut)]
    assert inspect_image(head, max_pixels=50_000_000) == (
        "Image decoding error: truncated JPEG (no end-of-image marker)"
    )
    for tail in (EOI, EOI + b"trailing junk", b"\x00" * 7 + EOI):
        # libjpeg says which: the marker met inside a scan, or (progressive) the scans ran out.
        assert inspect_image(head + tail, max_pixels=50_000_000) in {
            "Image decoding error: truncated JPEG (Corrupt JPEG data: premature end of data"
            " segment)",
            "Image decoding error: truncated JPEG (Premature end of JPEG file)",
        }, tail


@pytest.mark.parametrize(("name", "progressive"), list(PHOTOS))
def test_a_whole_photograph_is_accepted_whatever_follows_its_end_marker(name, progressive):
    full = PHOTOS[name, progressive]
    for tail in (b"", b"\x00" * 100, EOI + b"junk" * 50):
        assert inspect_image(full + tail, max_pixels=50_000_000) is None


def _variants() -> dict[str, bytes]:
    from skimage import data

    out = {f"{name}-{'progressive' if p else 'baseline'}": PHOTOS[name, p] for name, p in PHOTOS}
    for label, image in (
        ("grey", Image.fromarray(data.camera())),
        ("cmyk", Image.fromarray(data.astronaut()).convert("CMYK")),
        ("subsampling-444", Image.fromarray(data.coffee())),
    ):
        buf = io.BytesIO()
        image.save(buf, "JPEG", quality=85, subsampling=0 if label.endswith("444") else -1)
        out[label] = buf.getvalue()
    out["png"] = _png()
    return out


@pytest.mark.parametrize("resize_mode", ["border", "keep_ratio", "no"])
def test_the_safe_resizer_gives_img2datasets_bytes(resize_mode, monkeypatch):
    """The guard's JPEG decode replaces OpenCV's: the resized, re-encoded output is the same bytes
    as img2dataset's own Resizer gives (and the same sizes), with no second decode."""
    import cv2
    from img2dataset.resizer import Resizer

    from pipeline.download import image_guard

    kwargs = dict(image_size=256, resize_mode=resize_mode, resize_only_if_bigger=False)
    safe, bare = image_guard.SafeResizer(max_pixels=50_000_000, **kwargs), Resizer(**kwargs)
    opencv_decodes, real_imdecode = [], cv2.imdecode

    def counted(buf, flags):
        opencv_decodes.append(1)
        return real_imdecode(buf, flags)

    for label, data in _variants().items():
        theirs = bare(io.BytesIO(data))
        opencv_decodes.clear()
        with monkeypatch.context() as patch:
            patch.setattr(image_guard.cv2, "imdecode", counted)
            ours = safe(io.BytesIO(data))
        assert ours[5] is None and ours[1:5] == theirs[1:5], label
        assert ours[0] == theirs[0], label
        # OpenCV decodes only what the guard leaves to it: PNG, and CMYK's own conversion.
        assert len(opencv_decodes) == (1 if label in ("png", "cmyk") else 0), label


def test_bomb_header_is_refused():
    bomb = _bomb()
    assert len(bomb) < 40_000
    assert inspect_image(bomb, max_pixels=89_478_485).startswith("[too_many_pixels]")


_MEASURE = textwrap.dedent(
    """
    import io, json, sys, threading, time
    from img2dataset.resizer import Resizer
    from pipeline.download.image_guard import SafeResizer

    def rss_mb():
        with open("/proc/self/status") as f:
            return next(int(l.split()[1]) for l in f if l.startswith("VmRSS")) / 1024

    data = open(sys.argv[2], "rb").read()
    kwargs = dict(image_size=256, resize_mode="keep_ratio", resize_only_if_bigger=True)
    resizer = SafeResizer(max_pixels=89_478_485, **kwargs) if sys.argv[1] == "safe" else Resizer(**kwargs)
    # Sample the resident size while the resizer runs: the peak of imports (torch, OpenCV)
    # must not hide what the decode itself allocates.
    before, peak, done = rss_mb(), [0.0], []
    def sample():
        while not done:
            peak[0] = max(peak[0], rss_mb())
            time.sleep(0.001)
    sampler = threading.Thread(target=sample)
    sampler.start()
    result = resizer(io.BytesIO(data))
    done.append(True)
    sampler.join()
    print(json.dumps({"growth_mb": max(peak[0], rss_mb()) - before, "error": result[-1]}))
    """
)


def _peak_growth(which: str, bomb_file) -> dict:
    """Peak RSS growth of a fresh process while one resizer handles the bomb (read from a file,
    so building it does not raise the baseline)."""
    proc = subprocess.run(
        [sys.executable, "-c", _MEASURE, which, str(bomb_file)],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
        env={"NO_ALBUMENTATIONS_UPDATE": "1", "PATH": "/usr/bin:/bin"},
    )
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_bomb_is_refused_without_the_memory_growing(tmp_path):
    bomb_file = tmp_path / "bomb.png"
    bomb_file.write_bytes(_bomb())
    guarded = _peak_growth("safe", bomb_file)
    assert guarded["error"].startswith("[too_many_pixels]")
    assert guarded["growth_mb"] < 100
    # The control: img2dataset's own resizer decodes it (about 196 MB) before any size check.
    bare = _peak_growth("bare", bomb_file)
    assert bare["growth_mb"] > 150


_DECODE_IN_FRESH_PROCESS = textwrap.dedent(
    """
    import io, pickle, sys
    import cv2
    decodes = []
    real = cv2.imdecode
    cv2.imdecode = lambda buf, flags: decodes.append(1) or real(buf, flags)
    resizer = pickle.loads(sys.stdin.buffer.read())
    with open(sys.argv[1], "rb") as f:
        data = f.read()
    for _ in range(3):
        assert resizer(io.BytesIO(data))[-1] is None
    print(len(decodes))
    """
)


def test_a_resizer_pickled_to_a_fresh_process_decodes_each_jpeg_once(tmp_path):
    """img2dataset builds the resizer on the driver and pickles it to spawned workers (and Spark
    executors): there too, OpenCV must not decode a JPEG the guard decoded already."""
    import pickle

    from pipeline.download.image_guard import SafeResizer

    resizer = SafeResizer(
        max_pixels=89_478_485, image_size=64, resize_mode="keep_ratio", resize_only_if_bigger=True
    )
    image = tmp_path / "a.jpg"
    image.write_bytes(_jpeg())
    out = subprocess.run(
        [sys.executable, "-c", _DECODE_IN_FRESH_PROCESS, str(image)],
        input=pickle.dumps(resizer),
        capture_output=True,
        check=True,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
    )
    assert out.stdout.decode().split()[-1] == "0"  # OpenCV decoded none of the three JPEGs


def test_resizer_sets_the_opencv_bound_in_the_process_that_decodes(monkeypatch):
    """Executors of the pyspark distributor never run the driver's setup: the resizer itself
    sets OpenCV's decode bound before the first decode of its process."""
    from pipeline.download.image_guard import SafeResizer

    monkeypatch.delenv("OPENCV_IO_MAX_IMAGE_PIXELS", raising=False)
    resizer = SafeResizer(
        max_pixels=12_345_678, image_size=64, resize_mode="keep_ratio", resize_only_if_bigger=True
    )
    result = resizer(io.BytesIO(_jpeg()))
    assert result[-1] is None and result[0] is not None
    assert os.environ["OPENCV_IO_MAX_IMAGE_PIXELS"] == "12345678"
