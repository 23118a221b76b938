"""Pictures of the synthetic web: a coloured shape on a random textured background, drawn with
PIL + numpy, saved as JPEG bytes; the re-encoded, resized and cropped near-duplicates of one, and
its variants (larger crop, mirror, colour jitter, text overlay) that pHash does not match."""

from __future__ import annotations

import io
import math
from collections.abc import Sequence

import numpy as np
from PIL import Image, ImageDraw, ImageFont, ImageOps

from pipeline.demo.captions import OVERLAY_TEXTS

COLOURS: tuple[str, ...] = ("red", "green", "blue", "yellow", "purple", "orange")
SHAPES: tuple[str, ...] = ("circle", "square", "triangle", "star", "ring", "cross")
# A class is (colour, shape): recognisable by a small CLIP trained on a few thousand pairs.
CLASSES: list[str] = [f"{colour} {shape}" for colour in COLOURS for shape in SHAPES]

_COLOUR_RGB: dict[str, tuple[int, int, int]] = {
    "red": (215, 30, 35),
    "green": (35, 165, 55),
    "blue": (35, 75, 215),
    "yellow": (240, 210, 35),
    "purple": (135, 50, 175),
    "orange": (245, 130, 25),
}

# (width, height) of clean pictures: half of it (a resized near-duplicate) still passes the
# 200 px minimum of ALIGN/DataComp, so the download keeps it for the dedup stage to find.
DEFAULT_IMAGE_SIZE = (416, 480)

JPEG_QUALITY = 90
NEAR_DUPLICATE_JPEG_QUALITY = 40


def _upsample(rng: np.random.Generator, grid: tuple[int, int], size: tuple[int, int]) -> np.ndarray:
    """Gaussian noise on a coarse grid, bicubically upsampled to `size` (width, height)."""
    coarse = rng.standard_normal(grid, dtype=np.float32)
    return np.asarray(Image.fromarray(coarse).resize(size, Image.Resampling.BICUBIC))


def _grain(rng: np.random.Generator, std: float, width: int, height: int) -> np.ndarray:
    # Uniform noise of the same standard deviation: a third of the cost of Gaussian noise.
    noise = rng.random((height, width), dtype=np.float32) - np.float32(0.5)
    return noise * np.float32(std * math.sqrt(12.0))


def _background(rng: np.random.Generator, width: int, height: int) -> Image.Image:
    """A low-saturation textured RGB background."""
    # pHash keeps only the lowest 8x8 DCT frequencies of a 32x32 thumbnail, so a random
    # low-frequency field per image is what puts different pictures far apart in pHash space.
    grid = (int(rng.integers(3, 7)), int(rng.integers(3, 7)))
    lum = np.float32(38) * _upsample(rng, grid, (width, height))
    # Plus a weaker mid-frequency field: without it, smooth backgrounds with a similar layout
    # land within 12 bits of each other far more often than random 64-bit hashes would.
    grid = (int(rng.integers(8, 13)), int(rng.integers(8, 13)))
    lum += np.float32(15) * _upsample(rng, grid, (width, height))
    theta = rng.uniform(0, 2 * np.pi)
    ramp = rng.uniform(10, 35)
    lum += (ramp * np.cos(theta) * np.linspace(-1, 1, width, dtype=np.float32))[None, :]
    lum += (ramp * np.sin(theta) * np.linspace(-1, 1, height, dtype=np.float32))[:, None]
    texture = int(rng.integers(4))
    if texture == 0:  # film grain
        lum += _grain(rng, rng.uniform(5, 14), width, height)
    elif texture == 1:  # stripes or wallpaper
        phi = rng.uniform(0, np.pi)
        freq = rng.uniform(0.08, 0.3)
        amp = rng.uniform(6, 14)
        xs = freq * np.cos(phi) * np.arange(width, dtype=np.float32)
        ys = freq * np.sin(phi) * np.arange(height, dtype=np.float32)
        # sin(x + y) = sin x cos y + cos x sin y: two outer products instead of a full-size sin.
        lum += amp * (np.outer(np.cos(ys), np.sin(xs)) + np.outer(np.sin(ys), np.cos(xs)))
        lum += _grain(rng, 4, width, height)
    elif texture == 2:  # mottled paper
        grid = (max(2, height // 8), max(2, width // 8))
        lum += np.float32(rng.uniform(6, 12)) * _upsample(rng, grid, (width, height))
        lum += _grain(rng, 3, width, height)
    else:  # coarse speckle
        grid = (max(2, height // 3), max(2, width // 3))
        lum += np.float32(rng.uniform(5, 10)) * _upsample(rng, grid, (width, height))
    lum += np.float32(rng.uniform(85, 195))
    gray = Image.fromarray(np.clip(lum, 0, 255).astype(np.uint8))
    # A faint tint only: the shape's colour must stay the one saturated thing in the picture.
    tint = rng.uniform(-14, 14, size=3)
    ramp256 = np.arange(256, dtype=np.float64)
    channels = [
        gray.point(np.clip(np.rint(ramp256 + t), 0, 255).astype(int).tolist()) for t in tint
    ]
    return Image.merge("RGB", channels)


def _polygon(n_points: int, radii: Sequence[float], cx: float, cy: float, angle: float):
    return [
        (
            cx + radii[i % len(radii)] * math.cos(angle + 2 * math.pi * i / n_points),
            cy + radii[i % len(radii)] * math.sin(angle + 2 * math.pi * i / n_points),
        )
        for i in range(n_points)
    ]


def _shape_mask(rng: np.random.Generator, shape: str, width: int, height: int) -> Image.Image:
    """Coverage mask ("L") of one shape at a random position, size and rotation."""
    ss = 2  # drawn at twice the size and box-reduced: cheap anti-aliasing
    short = min(width, height)
    r = rng.uniform(0.17, 0.36) * short
    cx = rng.uniform(r, width - r) * ss
    cy = rng.uniform(r, height - r) * ss
    angle = rng.uniform(0, 2 * math.pi)
    r *= ss
    mask = Image.new("L", (width * ss, height * ss), 0)
    draw = ImageDraw.Draw(mask)
    if shape == "circle":
        draw.ellipse((cx - r, cy - r, cx + r, cy + r), fill=255)
    elif shape == "ring":
        draw.ellipse((cx - r, cy - r, cx + r, cy + r), fill=255)
        inner = r * rng.uniform(0.5, 0.65)
        draw.ellipse((cx - inner, cy - inner, cx + inner, cy + inner), fill=0)
    elif shape == "square":
        draw.polygon(_polygon(4, [r], cx, cy, angle), fill=255)
    elif shape == "triangle":
        draw.polygon(_polygon(3, [r], cx, cy, angle), fill=255)
    elif shape == "star":
        draw.polygon(_polygon(10, [r, 0.42 * r], cx, cy, angle), fill=255)
    elif shape == "cross":
        w = 0.3 * r
        arm = [(w, r), (w, w), (r, w), (r, -w), (w, -w), (w, -r)]
        arm += [(-x, -y) for x, y in arm]
        cos, sin = math.cos(angle), math.sin(angle)
        draw.polygon([(cx + x * cos - y * sin, cy + x * sin + y * cos) for x, y in arm], fill=255)
    else:
        raise ValueError(f"unknown shape {shape!r}")
    return mask.reduce(ss)


def render_picture(
    rng: np.random.Generator, class_name: str, width: int, height: int
) -> Image.Image:
    """One RGB picture of `class_name` (e.g. "red circle") on a random textured background."""
    colour, shape = class_name.split(" ")
    background = _background(rng, width, height)
    mask = _shape_mask(rng, shape, width, height)
    rgb = np.asarray(_COLOUR_RGB[colour]) + rng.integers(-15, 16, size=3)
    fill = Image.new("RGB", (width, height), tuple(int(v) for v in np.clip(rgb, 0, 255)))
    return Image.composite(fill, background, mask)


def render_off_target(rng: np.random.Generator, width: int, height: int) -> Image.Image:
    """A picture of none of the classes: the textured background alone, no shape."""
    return _background(rng, width, height)


def _jpeg_bytes(image: Image.Image, quality: int) -> bytes:
    buf = io.BytesIO()
    image.save(buf, format="JPEG", quality=quality)
    return buf.getvalue()


def _near_duplicate(rng: np.random.Generator, noise: str, original: bytes) -> bytes:
    with Image.open(io.BytesIO(original)) as img:
        img = img.convert("RGB")
    if noise == "near_duplicate_reencode":
        return _jpeg_bytes(img, NEAR_DUPLICATE_JPEG_QUALITY)
    if noise == "near_duplicate_resize":
        half = (max(1, img.width // 2), max(1, img.height // 2))
        return _jpeg_bytes(img.resize(half, Image.Resampling.LANCZOS), JPEG_QUALITY)
    # near_duplicate_crop: 1-2 % off one or two sides, scaled back to the original size. pHash is
    # shift-sensitive: at 2-4 % crops drift up to 12 bits after the download resize, as close as
    # two different synthetic pictures get; at 1-2 % they stay within 8.
    left = top = 0
    right, bottom = img.width, img.height
    for side in rng.choice(4, size=int(rng.integers(1, 3)), replace=False):
        frac = rng.uniform(0.01, 0.02)
        if side == 0:
            left = round(img.width * frac)
        elif side == 1:
            right = img.width - round(img.width * frac)
        elif side == 2:
            top = round(img.height * frac)
        else:
            bottom = img.height - round(img.height * frac)
    cropped = img.crop((left, top, right, bottom)).resize(img.size, Image.Resampling.BICUBIC)
    return _jpeg_bytes(cropped, JPEG_QUALITY)


# A pixel whose chroma (max - min channel) is over this belongs to the shape: the background's
# tint stays under 30 and the shape colours are over 90 even after their jitter.
_SUBJECT_CHROMA = 64
# Pixels kept between the shape and a variant's cropped edge.
_SUBJECT_MARGIN = 2


def _subject_box(img: Image.Image) -> tuple[int, int, int, int] | None:
    """(left, top, right, bottom) of the shape's saturated pixels, or None if there are none."""
    rgb = np.asarray(img, dtype=np.int16)
    chroma = rgb.max(axis=2) - rgb.min(axis=2)
    ys, xs = np.nonzero(chroma > _SUBJECT_CHROMA)
    if len(xs) == 0:
        return None
    return int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1


def _variant_crop(rng: np.random.Generator, img: Image.Image) -> Image.Image:
    """3-8 % off each side (drawn per side), scaled back to the original size. A side is cut no
    closer than _SUBJECT_MARGIN to the shape, so the class stays in view: a shape that (nearly)
    touches an edge leaves that side cut less, or not at all."""
    fracs = rng.uniform(0.03, 0.08, size=4)  # left, top, right, bottom
    width, height = img.size
    box = _subject_box(img) or (width // 2, height // 2, width // 2, height // 2)
    room = (
        box[0] - _SUBJECT_MARGIN,
        box[1] - _SUBJECT_MARGIN,
        width - box[2] - _SUBJECT_MARGIN,
        height - box[3] - _SUBJECT_MARGIN,
    )
    cut = [
        max(0, min(round(frac * side), limit))
        for frac, side, limit in zip(fracs, (width, height, width, height), room, strict=True)
    ]
    crop = (cut[0], cut[1], width - cut[2], height - cut[3])
    return img.crop(crop).resize(img.size, Image.Resampling.BICUBIC)


def _variant_colour(rng: np.random.Generator, img: Image.Image) -> Image.Image:
    """A photo filter: hue turned by 4-8 degrees (not far enough to change the colour's name),
    saturation and brightness scaled, and a vignette. pHash sees grey levels and is blind to an
    overall scaling of them; the vignette is the low-frequency change that moves it."""
    hsv = np.asarray(img.convert("HSV"), dtype=np.float32)
    turn = rng.uniform(4.0, 8.0) * (1 if rng.random() < 0.5 else -1)
    hsv[..., 0] = np.mod(hsv[..., 0] + turn * 256.0 / 360.0, 256.0)
    hsv[..., 1] *= rng.uniform(0.8, 1.25)
    brightness = rng.uniform(0.82, 0.92) if rng.random() < 0.5 else rng.uniform(1.08, 1.18)
    height, width = hsv.shape[:2]
    # Darker towards the corners: by `strength` at the farthest point from a shifted centre.
    cx, cy = rng.uniform(0.35, 0.65) * width, rng.uniform(0.35, 0.65) * height
    xs = (np.arange(width, dtype=np.float32) - cx) / width
    ys = (np.arange(height, dtype=np.float32) - cy) / height
    dist = np.sqrt(xs[None, :] ** 2 + ys[:, None] ** 2)
    strength = rng.uniform(0.3, 0.45)
    hsv[..., 2] *= brightness * (1.0 - strength * (dist / dist.max()) ** 2)
    out = np.clip(np.rint(hsv), 0, 255).astype(np.uint8)
    return Image.fromarray(out, "HSV").convert("RGB")


def _variant_overlay(rng: np.random.Generator, img: Image.Image) -> Image.Image:
    """A caption-like line of text on a dark translucent band across the top or the bottom, the
    edge where it covers less of the shape (which still shows through it)."""
    width, height = img.size
    band = round(height * rng.uniform(0.15, 0.22))
    box = _subject_box(img)
    if box is None:
        at_top = bool(rng.random() < 0.5)
    else:
        cover_top = max(0, band - box[1])
        cover_bottom = max(0, box[3] - (height - band))
        at_top = cover_top < cover_bottom or (cover_top == cover_bottom and rng.random() < 0.5)
    y0 = 0 if at_top else height - band
    text = OVERLAY_TEXTS[int(rng.integers(len(OVERLAY_TEXTS)))]
    layer = Image.new("RGBA", img.size, (0, 0, 0, 0))
    draw = ImageDraw.Draw(layer)
    draw.rectangle((0, y0, width, y0 + band), fill=(0, 0, 0, int(rng.integers(170, 220))))
    size = max(8, round(band * 0.45))
    while True:  # the whole line on the picture: smaller type for a long line on a narrow one
        font = ImageFont.load_default(size=size)
        left, top, right, bottom = draw.textbbox((0, 0), text, font=font)
        if right - left <= 0.9 * width or size <= 6:
            break
        size -= 1
    slack = max(0, width - (right - left))
    x = int(rng.integers(slack // 4, slack - slack // 4 + 1)) - left
    y = y0 + (band - (bottom - top)) // 2 - top
    draw.text((x, y), text, font=font, fill=(255, 255, 255, 235))
    return Image.alpha_composite(img.convert("RGBA"), layer).convert("RGB")


_VARIANTS = {
    "variant_crop": _variant_crop,
    "variant_flip": lambda rng, img: ImageOps.mirror(img),
    "variant_colour": _variant_colour,
    "variant_overlay": _variant_overlay,
}


def _variant(rng: np.random.Generator, noise: str, original: bytes) -> bytes:
    """A variant (VARIANT_KINDS) of `original`: the same photo and class, edited beyond pHash's
    reach, at the original's size and JPEG quality."""
    with Image.open(io.BytesIO(original)) as img:
        img = img.convert("RGB")
    return _jpeg_bytes(_VARIANTS[noise](rng, img), JPEG_QUALITY)
