"""A synthetic web: image-text pairs drawn with PIL + numpy, with labelled noise of known kinds.

`generate_web` writes the pictures a local `ImageServer` serves and a ground-truth table saying, for
every pair, which noise it carries, so each curation stage can be scored against the truth.
"""

from __future__ import annotations

import dataclasses
import io
import json
import logging
import math
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from PIL import Image, ImageDraw
from tqdm import tqdm

# What the server sends at fault/bomb/: a PNG declaring BOMB_SIDE x BOMB_SIDE pixels.
from pipeline.demo.image_server import BOMB_SIDE

logger = logging.getLogger(__name__)

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

NOISE_KINDS: tuple[str, ...] = (
    "clean",
    "mismatched_caption",
    "boilerplate_caption",
    "non_english",
    "exact_duplicate",
    "near_duplicate_reencode",
    "near_duplicate_resize",
    "near_duplicate_crop",
    "small_image",
    "extreme_aspect",
    "fault_404",
    "fault_500",
    "fault_slow",
    "fault_truncated",
    "fault_html",
    "fault_empty",
    "fault_bomb",
    "fault_noai",
    "fault_redirect",
)
DUPLICATE_KINDS = frozenset(
    {
        "exact_duplicate",
        "near_duplicate_reencode",
        "near_duplicate_resize",
        "near_duplicate_crop",
    }
)
# (width, height) of clean pictures: half of it (a resized near-duplicate) still passes the
# 200 px minimum of ALIGN/DataComp, so the download keeps it for the dedup stage to find.
DEFAULT_IMAGE_SIZE = (416, 480)
# Fault rows whose URL serves no picture at all: their `label` is null.
PICTURELESS_FAULTS = frozenset(
    {"fault_404", "fault_500", "fault_html", "fault_empty", "fault_bomb"}
)
# Fault rows whose route serves (or redirects to) a real file that the generator writes.
FILE_BACKED_FAULTS = frozenset({"fault_slow", "fault_truncated", "fault_noai", "fault_redirect"})

JPEG_QUALITY = 90
NEAR_DUPLICATE_JPEG_QUALITY = 40
# ALIGN drops alt-texts shared by more than 10 images; each boilerplate phrase that is used at all
# appears at least this often, so that rule catches every one of them.
MIN_BOILERPLATE_REPEATS = 15

# Independent random streams: adding a row or a kind never changes another stream's draws.
_STREAM_PLAN = 1
_STREAM_PIXELS = 2
_STREAM_ORDER = 3
_STREAM_EVAL = 4

GROUND_TRUTH_SCHEMA = pa.schema(
    [
        pa.field("gt_id", pa.int64(), nullable=False),
        pa.field("path", pa.string(), nullable=False),
        pa.field("caption", pa.string(), nullable=False),
        pa.field("label", pa.string()),
        pa.field("caption_label", pa.string()),
        pa.field("noise", pa.string(), nullable=False),
        pa.field("duplicate_of", pa.int64()),
        pa.field("width", pa.int64()),
        pa.field("height", pa.int64()),
        # ISO 639-1 code of the caption's language; null for boilerplate (no language to speak of).
        pa.field("language", pa.string()),
    ]
)


@dataclass(frozen=True)
class NoiseMix:
    """Fraction of pairs per noise kind; field names are the `noise` values. Must sum to 1."""

    clean: float = 0.45
    mismatched_caption: float = 0.10
    boilerplate_caption: float = 0.08
    non_english: float = 0.08
    exact_duplicate: float = 0.04
    near_duplicate_reencode: float = 0.03
    near_duplicate_resize: float = 0.03
    near_duplicate_crop: float = 0.03
    small_image: float = 0.04
    extreme_aspect: float = 0.03
    fault_404: float = 0.01
    fault_500: float = 0.01
    fault_slow: float = 0.01
    fault_truncated: float = 0.01
    fault_html: float = 0.01
    fault_empty: float = 0.01
    fault_bomb: float = 0.01
    fault_noai: float = 0.01
    fault_redirect: float = 0.01

    def __post_init__(self) -> None:
        fractions = self.fractions()
        bad = {k: v for k, v in fractions.items() if not (math.isfinite(v) and v >= 0)}
        if bad:
            raise ValueError(f"noise fractions must be finite and >= 0, got {bad}")
        total = sum(fractions.values())
        if not math.isclose(total, 1.0, abs_tol=1e-6):
            raise ValueError(f"noise fractions must sum to 1, got {total:.6f}")

    def fractions(self) -> dict[str, float]:
        """Noise kind -> fraction, in NOISE_KINDS order."""
        return {f.name: float(getattr(self, f.name)) for f in dataclasses.fields(self)}

    def counts(self, n_pairs: int) -> dict[str, int]:
        """Exact row count per kind for `n_pairs` rows (largest remainder, so they sum to n)."""
        fractions = self.fractions()
        exact = {k: f * n_pairs for k, f in fractions.items()}
        counts = {k: math.floor(v + 1e-9) for k, v in exact.items()}
        left = n_pairs - sum(counts.values())
        # Ties broken by NOISE_KINDS order, so the counts never depend on dict or float quirks.
        by_remainder = sorted(exact, key=lambda k: (-(exact[k] - counts[k]), NOISE_KINDS.index(k)))
        for k in by_remainder[:left]:
            counts[k] += 1
        return counts


@dataclass(frozen=True)
class SyntheticWeb:
    """Where a generated web lies: `files_dir` is the server root, paths are relative to it."""

    root: Path
    files_dir: Path
    ground_truth: Path
    n_pairs: int

    @classmethod
    def load(cls, root: Path) -> SyntheticWeb:
        """Open a web that `generate_web` wrote earlier into `root`."""
        root = Path(root)
        gt_path = root / "ground_truth.parquet"
        n_pairs = pq.ParquetFile(gt_path).metadata.num_rows
        return cls(root=root, files_dir=root / "files", ground_truth=gt_path, n_pairs=n_pairs)


# ---------------------------------------------------------------------------------------------
# Captions
# ---------------------------------------------------------------------------------------------

# Random descriptive words keep captions mostly unique: ALIGN's shared-alt-text rule must only fire
# on the boilerplate rows, never on clean captions.
_EN_ADJECTIVES = (
    "small",
    "large",
    "bright",
    "slightly tilted",
    "bold",
    "tilted",
    "off-centre",
    "simple",
    "flat",
    "glossy",
    "matte",
    "vivid",
    "hand-drawn",
    "sharp",
    "single",
    "tiny",
    "big",
    "rotated",
    "solid",
    "crisp",
)
_EN_BACKGROUNDS = (
    "grey background",
    "textured background",
    "noisy backdrop",
    "concrete wall",
    "pale canvas",
    "mottled surface",
    "striped wallpaper",
    "dark slate tile",
    "light fabric backdrop",
    "speckled grey board",
    "plain wall",
    "soft grey background",
)
_EN_MASS_BACKGROUNDS = (
    "textured paper",
    "grey cardboard",
    "rough concrete",
    "speckled paper",
    "old canvas",
    "pale fabric",
    "recycled paper",
    "matte card stock",
)
_EN_STYLES = (
    "close-up",
    "studio shot",
    "high resolution",
    "stock photo",
    "digital art",
    "clip art",
    "macro shot",
    "minimalist design",
    "top view",
    "flat lay",
    "sharp focus",
    "soft light",
    "daylight photo",
    "scanned drawing",
)
_EN_TEMPLATES = (
    "{A_adj_cls} on {a_bg}",
    "a photo of {A_cls} on {a_bg}",
    "{cls} drawn on {mass_bg}, {style}",
    "{A_adj_cls} in front of {a_bg}",
    "here is a close-up photo of {A_adj_cls}",
    "an illustration of {A_cls} on {a_bg}, {style}",
    "{A_adj_cls} painted on {mass_bg}",
    "simple picture showing {A_adj_cls}",
    "{style}: {A_cls} against {a_bg}",
    "this image shows {A_adj_cls} on {a_bg}",
    "{A_cls}, {adj} and clearly visible, {style}",
)

# Web boilerplate that ALIGN's "shared by more than 10 images" rule exists for.
BOILERPLATE_PHRASES: tuple[str, ...] = (
    "click to enlarge this image",
    "image for this product listing page",
    "view larger picture of product here",
    "photo not available for this item",
    "thumbnail image for the article",
    "click here to see the full size image",
    "product image may differ from actual item",
    "picture of the item for sale",
    "image courtesy of the manufacturer website",
    "see more photos of this product below",
)
# One-word alt-texts: what the 3-unigram / 2-word minimums exist for.
_SHORT_BOILERPLATE = ("image", "photo", "picture", "thumbnail", "untitled")

# German: colour stems and noun genders, declined properly so lid.176 sees real sentences.
_DE_COLOURS = {
    "red": "rot",
    "green": "grün",
    "blue": "blau",
    "yellow": "gelb",
    "purple": "violett",
    "orange": "orangefarben",
}
_DE_SHAPES = {
    "circle": ("Kreis", "m"),
    "square": ("Quadrat", "n"),
    "triangle": ("Dreieck", "n"),
    "star": ("Stern", "m"),
    "ring": ("Ring", "m"),
    "cross": ("Kreuz", "n"),
}
_DE_TEMPLATES = (
    "Ein Foto von {dat} auf einem {bg} Hintergrund{extra}",
    "Das Bild zeigt {acc} auf {paper}{extra}",
    "Hier sieht man {acc} in der Nahaufnahme{extra}",
    "Eine einfache Zeichnung mit {dat} auf {paper}{extra}",
    "Auf diesem Bild ist {nom} vor einem {bg} Hintergrund zu sehen",
)
_DE_BACKGROUNDS = ("grauen", "hellen", "dunklen", "strukturierten", "verrauschten", "einfarbigen")
_DE_PAPERS = (
    "strukturiertem Papier",
    "grauem Karton",
    "einer alten Wand",
    "hellem Stoff",
    "rauem Beton",
)
_DE_EXTRAS = ("", ", ganz nah fotografiert", ", von oben gesehen", ", in hoher Auflösung")

_FR_COLOURS = {
    "red": ("rouge", "rouge"),
    "green": ("vert", "verte"),
    "blue": ("bleu", "bleue"),
    "yellow": ("jaune", "jaune"),
    "purple": ("violet", "violette"),
    "orange": ("orange", "orange"),
}
_FR_SHAPES = {
    "circle": ("cercle", "m"),
    "square": ("carré", "m"),
    "triangle": ("triangle", "m"),
    "star": ("étoile", "f"),
    "ring": ("anneau", "m"),
    "cross": ("croix", "f"),
}
_FR_TEMPLATES = (
    "Une photo d'{np} sur un fond {bg}{extra}",
    "On voit {np} {drawn} sur du papier {paper}{extra}",
    "Voici {np} sur un fond {bg}, vu de près",
    "Une image simple qui montre {np} sur une surface {surface}{extra}",
    "Il y a {np} sur cette photo prise de près",
)
_FR_BACKGROUNDS = ("gris", "clair", "sombre", "texturé", "uni", "bruité")
_FR_PAPERS = ("texturé", "gris", "ancien", "épais", "recyclé")
_FR_SURFACES = ("grise", "claire", "rugueuse", "texturée", "sombre")
_FR_EXTRAS = ("", ", en gros plan", ", vue de dessus", ", en haute résolution")

_ES_COLOURS = {
    "red": ("rojo", "roja"),
    "green": ("verde", "verde"),
    "blue": ("azul", "azul"),
    "yellow": ("amarillo", "amarilla"),
    "purple": ("morado", "morada"),
    "orange": ("naranja", "naranja"),
}
_ES_SHAPES = {
    "circle": ("círculo", "m"),
    "square": ("cuadrado", "m"),
    "triangle": ("triángulo", "m"),
    "star": ("estrella", "f"),
    "ring": ("anillo", "m"),
    "cross": ("cruz", "f"),
}
_ES_TEMPLATES = (
    "Una foto de {np} sobre un fondo {bg}{extra}",
    "Se ve {np} {drawn} sobre papel {paper}{extra}",
    "Esta imagen muestra {np} en primer plano{extra}",
    "Aquí hay {np} sobre una superficie {surface}{extra}",
    "Una ilustración sencilla de {np} con un fondo {bg}",
)
_ES_BACKGROUNDS = ("gris", "claro", "oscuro", "texturizado", "liso")
_ES_PAPERS = ("gris", "texturizado", "viejo", "grueso", "reciclado")
_ES_SURFACES = ("gris", "clara", "rugosa", "texturizada", "oscura")
_ES_EXTRAS = ("", ", vista de cerca", ", vista desde arriba", ", en alta resolución")

LANGUAGES: tuple[str, ...] = ("de", "fr", "es")


def _pick(rng: np.random.Generator, options: Sequence[str]) -> str:
    return options[int(rng.integers(len(options)))]


def _with_article(phrase: str) -> str:
    # Every word we put after an article is spelled as it sounds at its first letter.
    return ("an " if phrase[0] in "aeiou" else "a ") + phrase


def english_caption(rng: np.random.Generator, class_name: str) -> str:
    """A varied English caption (4 to 15 words) naming `class_name`."""
    adj = _pick(rng, _EN_ADJECTIVES)
    adj_cls = f"{adj} {class_name}" if rng.random() < 0.75 else class_name
    text = _pick(rng, _EN_TEMPLATES).format(
        cls=class_name,
        A_cls=_with_article(class_name),
        A_adj_cls=_with_article(adj_cls),
        adj=adj,
        a_bg=_with_article(_pick(rng, _EN_BACKGROUNDS)),
        mass_bg=_pick(rng, _EN_MASS_BACKGROUNDS),
        style=_pick(rng, _EN_STYLES),
    )
    return text[0].upper() + text[1:] if rng.random() < 0.3 else text


def _german_caption(rng: np.random.Generator, colour: str, shape: str) -> str:
    stem = _DE_COLOURS[colour]
    noun, gender = _DE_SHAPES[shape]
    if gender == "m":
        nom, acc, dat = f"ein {stem}er {noun}", f"einen {stem}en {noun}", f"einem {stem}en {noun}"
    else:
        nom, acc, dat = f"ein {stem}es {noun}", f"ein {stem}es {noun}", f"einem {stem}en {noun}"
    return _pick(rng, _DE_TEMPLATES).format(
        nom=nom,
        acc=acc,
        dat=dat,
        bg=_pick(rng, _DE_BACKGROUNDS),
        paper=_pick(rng, _DE_PAPERS),
        extra=_pick(rng, _DE_EXTRAS),
    )


def _french_caption(rng: np.random.Generator, colour: str, shape: str) -> str:
    noun, gender = _FR_SHAPES[shape]
    masc, fem = _FR_COLOURS[colour]
    feminine = gender == "f"
    np_ = f"une {noun} {fem}" if feminine else f"un {noun} {masc}"
    return _pick(rng, _FR_TEMPLATES).format(
        np=np_,
        drawn="dessinée" if feminine else "dessiné",
        bg=_pick(rng, _FR_BACKGROUNDS),
        paper=_pick(rng, _FR_PAPERS),
        surface=_pick(rng, _FR_SURFACES),
        extra=_pick(rng, _FR_EXTRAS),
    )


def _spanish_caption(rng: np.random.Generator, colour: str, shape: str) -> str:
    noun, gender = _ES_SHAPES[shape]
    masc, fem = _ES_COLOURS[colour]
    feminine = gender == "f"
    np_ = f"una {noun} {fem}" if feminine else f"un {noun} {masc}"
    return _pick(rng, _ES_TEMPLATES).format(
        np=np_,
        drawn="dibujada" if feminine else "dibujado",
        bg=_pick(rng, _ES_BACKGROUNDS),
        paper=_pick(rng, _ES_PAPERS),
        surface=_pick(rng, _ES_SURFACES),
        extra=_pick(rng, _ES_EXTRAS),
    )


def foreign_caption(rng: np.random.Generator, class_name: str, language: str) -> str:
    """A German, French or Spanish sentence (5+ words) describing `class_name`."""
    colour, shape = class_name.split(" ")
    writers = {"de": _german_caption, "fr": _french_caption, "es": _spanish_caption}
    return writers[language](rng, colour, shape)


# ---------------------------------------------------------------------------------------------
# Pictures
# ---------------------------------------------------------------------------------------------


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


def _jpeg_bytes(image: Image.Image, quality: int) -> bytes:
    buf = io.BytesIO()
    image.save(buf, format="JPEG", quality=quality)
    return buf.getvalue()


# ---------------------------------------------------------------------------------------------
# The web
# ---------------------------------------------------------------------------------------------


@dataclass
class _Row:
    gt_id: int
    noise: str
    path: str
    caption: str = ""
    label: str | None = None
    caption_label: str | None = None
    duplicate_of: int | None = None
    width: int | None = None
    height: int | None = None
    language: str | None = None
    # Where the picture's file goes (relative to files_dir); None when the route needs no file.
    file: str | None = None


def _path_for(gt_id: int, noise: str) -> tuple[str, str | None]:
    """(URL path, file path) of a row; fault kinds live under the server's fault/ routes."""
    image = f"images/{gt_id:06d}.jpg"
    if noise == "fault_redirect":
        return f"fault/redirect/{image}", image
    if noise == "fault_bomb":
        return f"fault/bomb/{gt_id:06d}.png", None
    if noise.startswith("fault_"):
        kind = noise.removeprefix("fault_")
        path = f"fault/{kind}/{gt_id:06d}.jpg"
        return path, (path if noise in FILE_BACKED_FAULTS else None)
    return image, image


def _plan(n_pairs: int, seed: int, mix: NoiseMix) -> list[_Row]:
    """Decide every row's noise kind, classes, captions and duplicate links (no pixels yet)."""
    rng = np.random.default_rng([seed, _STREAM_PLAN])
    counts = mix.counts(n_pairs)
    kinds = [k for k in NOISE_KINDS for _ in range(counts[k])]
    clean = [i for i, k in enumerate(kinds) if k == "clean"]
    dups = [i for i, k in enumerate(kinds) if k in DUPLICATE_KINDS]
    if dups and not clean:
        raise ValueError("duplicate noise kinds need at least one clean row to copy")
    # Originals drawn uniformly from all clean rows, so duplicates are spread over the whole web.
    source = {d: clean[int(rng.integers(len(clean)))] for d in dups}
    # A random order in which every duplicate follows its original: a duplicate whose key falls
    # before its original's gets a new key after it (ties keep kinds order: clean rows first).
    keys = rng.random(len(kinds))
    for dup, original in source.items():
        if keys[dup] < keys[original]:
            keys[dup] = rng.uniform(keys[original], 1.0)
    order = np.argsort(keys, kind="stable")
    gt_of = np.empty(len(kinds), dtype=np.int64)
    gt_of[order] = np.arange(len(kinds))

    n_boiler = counts["boilerplate_caption"]
    n_short = n_boiler // 3
    n_multi = n_boiler - n_short
    # Few enough distinct phrases that each used one repeats >= MIN_BOILERPLATE_REPEATS times.
    n_phrases = max(1, min(len(BOILERPLATE_PHRASES), n_multi // MIN_BOILERPLATE_REPEATS))
    boiler_seen = 0

    rows: list[_Row] = []
    for gt_id, spec in enumerate(order.tolist()):
        noise = kinds[spec]
        path, file = _path_for(gt_id, noise)
        row = _Row(gt_id=gt_id, noise=noise, path=path, file=file, language="en")
        label = CLASSES[int(rng.integers(len(CLASSES)))]
        row.label = label
        row.caption_label = label
        if noise in DUPLICATE_KINDS:
            original = rows[int(gt_of[source[spec]])]
            row.duplicate_of = original.gt_id
            row.label = row.caption_label = original.label
        elif noise == "mismatched_caption":
            others = [c for c in CLASSES if c != label]
            row.caption_label = others[int(rng.integers(len(others)))]
        elif noise == "non_english":
            row.language = _pick(rng, LANGUAGES)
        elif noise == "boilerplate_caption":
            row.caption_label = None
            row.language = None
            if boiler_seen < n_multi:
                row.caption = BOILERPLATE_PHRASES[boiler_seen % n_phrases]
            else:
                short = int(rng.integers(len(_SHORT_BOILERPLATE) + 2))
                if short < len(_SHORT_BOILERPLATE):
                    row.caption = _SHORT_BOILERPLATE[short]
                elif short == len(_SHORT_BOILERPLATE):
                    row.caption = f"IMG_{int(rng.integers(1000, 10000))}.JPG"
                else:
                    row.caption = f"DSC{int(rng.integers(10000, 100000))}.jpg"
            boiler_seen += 1
        if noise in PICTURELESS_FAULTS:
            row.label = None
        if noise != "boilerplate_caption":
            assert row.caption_label is not None
            taken = rows[row.duplicate_of].caption if row.duplicate_of is not None else None
            # A duplicate's caption differs from its original's: the same picture re-posted.
            while row.caption in ("", taken):
                if row.language == "en":
                    row.caption = english_caption(rng, row.caption_label)
                else:
                    row.caption = foreign_caption(rng, row.caption_label, row.language or "")
        rows.append(row)
    return rows


def _picture_size(rng: np.random.Generator, noise: str, size: tuple[int, int]) -> tuple[int, int]:
    if noise == "small_image":
        # Shorter side under DataComp's / ALIGN's 200 px minimum; aspect kept ordinary.
        short = int(rng.integers(64, 151))
        long = int(short * rng.uniform(1.0, 1.5))
    elif noise == "extreme_aspect":
        # Aspect ratio over 3 (ALIGN, DataComp) with a shorter side that passes the size rule.
        short = int(rng.integers(210, 257))
        long = int(short * rng.uniform(3.3, 4.5))
    else:
        return size
    return (long, short) if rng.random() < 0.5 else (short, long)


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


def _prepare_out_dir(out_dir: Path) -> Path:
    files_dir = out_dir / "files"
    if files_dir.exists() and any(files_dir.iterdir()):
        # Only ever wipe a folder this generator wrote (it leaves ground_truth.parquet beside it).
        if not (out_dir / "ground_truth.parquet").exists():
            raise FileExistsError(f"{files_dir} is not empty and is not a generated synthetic web")
        logger.info("replacing the synthetic web in %s", out_dir)
        shutil.rmtree(files_dir)
        (out_dir / "ground_truth.parquet").unlink()
    files_dir.mkdir(parents=True, exist_ok=True)
    return files_dir


def generate_web(
    out_dir: Path,
    n_pairs: int = 2000,
    seed: int = 0,
    mix: NoiseMix = NoiseMix(),  # frozen, so one shared default instance is safe
    image_size: tuple[int, int] = DEFAULT_IMAGE_SIZE,
) -> SyntheticWeb:
    """Write `n_pairs` labelled pairs under `out_dir`: pictures in files/, ground_truth.parquet.

    Deterministic: the same arguments give byte-identical files. `image_size` is (width, height)
    of ordinary pictures.
    """
    if n_pairs < 1:
        raise ValueError(f"n_pairs must be >= 1, got {n_pairs}")
    if min(image_size) < 1:
        raise ValueError(f"image_size must be positive, got {image_size}")
    out_dir = Path(out_dir)
    files_dir = _prepare_out_dir(out_dir)
    rows = _plan(n_pairs, seed, mix)

    for row in tqdm(rows, desc="synthetic web", unit="pair", disable=None):
        if row.file is None:
            if row.noise == "fault_bomb":
                row.width = row.height = BOMB_SIDE
            continue
        rng = np.random.default_rng([seed, _STREAM_PIXELS, row.gt_id])
        if row.duplicate_of is not None:
            original = (files_dir / rows[row.duplicate_of].path).read_bytes()
            if row.noise == "exact_duplicate":
                data = original
            else:
                data = _near_duplicate(rng, row.noise, original)
        else:
            assert row.label is not None
            width, height = _picture_size(rng, row.noise, image_size)
            data = _jpeg_bytes(render_picture(rng, row.label, width, height), JPEG_QUALITY)
        with Image.open(io.BytesIO(data)) as img:
            row.width, row.height = img.size
        target = files_dir / row.file
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)

    columns = {name: [getattr(r, name) for r in rows] for name in GROUND_TRUTH_SCHEMA.names}
    table = pa.Table.from_pydict(columns, schema=GROUND_TRUTH_SCHEMA)
    table = table.replace_schema_metadata(
        {"seed": str(seed), "mix": json.dumps(mix.fractions()), "image_size": str(image_size)}
    )
    gt_path = out_dir / "ground_truth.parquet"
    # Written last, via a rename: its presence means the web is complete.
    tmp = gt_path.with_suffix(".parquet.tmp")
    pq.write_table(table, tmp)
    tmp.replace(gt_path)
    logger.info("synthetic web: %d pairs in %s", n_pairs, out_dir)
    return SyntheticWeb(root=out_dir, files_dir=files_dir, ground_truth=gt_path, n_pairs=n_pairs)


def load_ground_truth(web: SyntheticWeb) -> pa.Table:
    """The ground-truth table of `web` (one row per pair, GROUND_TRUTH_SCHEMA)."""
    return pq.read_table(web.ground_truth)


def write_input_parquet(
    web: SyntheticWeb,
    base_url: str,
    path: Path,
    url_col: str = "url",
    caption_col: str = "caption",
    seed: int = 0,
) -> Path:
    """Write the pipeline's input table (url, caption, gt_id), rows in a deterministic shuffle."""
    if len({url_col, caption_col, "gt_id"}) != 3:
        raise ValueError(
            f"url_col={url_col!r} and caption_col={caption_col!r} must differ from each other"
            " and from 'gt_id'"
        )
    gt = load_ground_truth(web)
    prefix = base_url.rstrip("/") + "/"
    urls = [prefix + quote(p) for p in gt.column("path").to_pylist()]
    table = pa.table(
        {
            url_col: pa.array(urls, pa.string()),
            caption_col: gt.column("caption"),
            "gt_id": gt.column("gt_id"),
        }
    )
    # Shuffled so that row order tells the pipeline nothing about noise kinds or duplicates.
    order = np.random.default_rng([seed, _STREAM_ORDER]).permutation(table.num_rows)
    table = table.take(pa.array(order))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, path)
    return path


def generate_eval_set(
    out_dir: Path,
    n_per_class: int = 10,
    seed: int = 1,
    image_size: tuple[int, int] = DEFAULT_IMAGE_SIZE,
) -> pa.Table:
    """Write clean held-out pictures, `n_per_class` per class, for zero-shot evaluation.

    Images go to `out_dir/images/`; the returned table (also `out_dir/eval.parquet`) has `path`
    (relative to `out_dir`) and `label`. Pixels come from their own random stream, so they never
    coincide with a training picture, whatever the seeds.
    """
    out_dir = Path(out_dir)
    (out_dir / "images").mkdir(parents=True, exist_ok=True)
    paths: list[str] = []
    labels: list[str] = []
    jobs = [(c, i) for c in range(len(CLASSES)) for i in range(n_per_class)]
    for class_idx, i in tqdm(jobs, desc="eval set", unit="img", disable=None):
        label = CLASSES[class_idx]
        rng = np.random.default_rng([seed, _STREAM_EVAL, class_idx, i])
        rel = f"images/{label.replace(' ', '_')}_{i:04d}.jpg"
        picture = render_picture(rng, label, *image_size)
        (out_dir / rel).write_bytes(_jpeg_bytes(picture, JPEG_QUALITY))
        paths.append(rel)
        labels.append(label)
    table = pa.table({"path": pa.array(paths, pa.string()), "label": pa.array(labels, pa.string())})
    pq.write_table(table, out_dir / "eval.parquet")
    return table
