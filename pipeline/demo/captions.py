"""Captions of the synthetic web: varied English ones naming a class, sentences in German, French
and Spanish describing it, the web boilerplate that caption filters exist for, and the text that
sites burn into re-posted pictures."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

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


# Caption-like text that sites burn into a re-posted picture (the variant_overlay copies): never a
# colour or a shape name, so the overlay does not describe another class.
OVERLAY_TEXTS: tuple[str, ...] = (
    "www.picturegallery.example",
    "© stockpix 2024",
    "SALE 30% OFF today only",
    "follow @daily_pictures",
    "photo of the day",
    "free HD wallpapers",
    "click to see more",
    "you won't believe this",
    "shared from my feed",
    "best of the week",
)


# What an off-target picture (a bare texture, no shape) is called: no colour or shape word of a
# class, so only the picture and these words tell the model what it is.
_OFF_TARGET_SURFACES = (
    "paper",
    "grainy paper",
    "mottled paper",
    "striped wallpaper",
    "speckled concrete",
    "linen fabric",
    "felt",
    "cardboard",
    "plaster wall",
    "film grain",
)
_OFF_TARGET_TEMPLATES = (
    "{A_surface} texture",
    "close-up of {a_surface} surface",
    "{surface} background with nothing on it",
    "an empty {surface} backdrop",
    "abstract {surface} pattern, high resolution",
    "plain {surface} for scrapbooking",
)


def off_target_caption(rng: np.random.Generator) -> str:
    """A truthful English caption of an off-target picture (a bare textured surface)."""
    surface = _pick(rng, _OFF_TARGET_SURFACES)
    text = _pick(rng, _OFF_TARGET_TEMPLATES).format(
        surface=surface, a_surface=_with_article(surface), A_surface=_with_article(surface)
    )
    return text[0].upper() + text[1:] if rng.random() < 0.3 else text
