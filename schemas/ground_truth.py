"""The ground truth of a labelled web (the demo's synthetic web, or any set a user labels the same
way): one row per pair with its noise kind, which the report scores each filter against."""

from __future__ import annotations

import pyarrow as pa

# Every kind of pair a labelled web can hold: clean, the text and image noise the filters target,
# and every download fault.
NOISE_KINDS: tuple[str, ...] = (
    "clean",
    "mismatched_caption",
    "boilerplate_caption",
    "non_english",
    # A picture of none of the target concepts (a bare texture), captioned truthfully: CLIP
    # scores it well; DataComp's image-based and text-based rules are what drop it.
    "off_target",
    "exact_duplicate",
    "near_duplicate_reencode",
    "near_duplicate_resize",
    "near_duplicate_crop",
    "variant_crop",
    "variant_flip",
    "variant_colour",
    "variant_overlay",
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
    # Rights and safety (re-LAION-5B): a pair whose URL is on a URL blocklist (as its SHA-256 or
    # MD5), one whose picture is on an image hash list (its SHA-256, or its pHash), and one served
    # under a path the host's robots.txt disallows. Each is an ordinary picture, truthfully
    # captioned: only the lists and robots.txt say it must go.
    "blocklisted_url",
    "blocklisted_image",
    "robots_disallowed",
)
# Edits of a clean original that keep the photo (and its class) but move its pHash far: what a
# semantic (embedding) dedup is for. Each is a copy of its original: `duplicate_of`, same label.
VARIANT_KINDS = frozenset({"variant_crop", "variant_flip", "variant_colour", "variant_overlay"})
# Every kind of copy of a clean original (`duplicate_of` set, the original's label).
DUPLICATE_KINDS = (
    frozenset(
        {
            "exact_duplicate",
            "near_duplicate_reencode",
            "near_duplicate_resize",
            "near_duplicate_crop",
        }
    )
    | VARIANT_KINDS
)
# Fault rows whose URL serves no picture at all: their `label` is null.
PICTURELESS_FAULTS = frozenset(
    {"fault_404", "fault_500", "fault_html", "fault_empty", "fault_bomb"}
)
# Fault rows whose route serves (or redirects to) a real file that the generator writes.
FILE_BACKED_FAULTS = frozenset({"fault_slow", "fault_truncated", "fault_noai", "fault_redirect"})
# Where the pictures of `robots_disallowed` rows live on the server: the path its robots.txt
# disallows for every user agent.
ROBOTS_DISALLOWED_PREFIX = "private/"

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
