"""The `select` config section: which rules a sample must pass, DataComp's text- and image-based
rules, and how a top fraction becomes a threshold (with `select.pool`, preselect's)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from pipeline.errors import ConfigError
from pipeline.preselect.settings import PoolScoresConfig, bounds_as_floats, check_bound_numbers

if TYPE_CHECKING:
    from pipeline.config import Config


@dataclass(frozen=True)
class TextBasedConfig:
    """DataComp's text-based rule: keep captions that name an ImageNet-21k concept."""

    # terms: keep captions naming a term of `terms` as whole words; datacomp: DataComp's own
    # rule (apply_filter.py's does_contain_text_entity): a str.split() word whose first WordNet
    # 3.0 sense (nltk's morphy: "kids" -> kid) is an ImageNet-21k synset, from the table shipped
    # in pipeline/select/data (pipeline/select/wordnet_senses.py); `terms` is not read.
    mode: str = "terms"
    # A text file, one term per line (the words of ImageNet-21k's synsets, say); matched as
    # whole words as entry_match.mode says (case-folded by default; pipeline/entry_match.py).
    terms: str = ""

    def validate(self) -> None:
        if self.mode not in ("terms", "datacomp"):
            raise ConfigError(
                f"config select.text_based.mode: expected terms or datacomp, got {self.mode!r}"
            )


@dataclass(frozen=True)
class ImageBasedConfig:
    """DataComp's image-based rule: k-means over the pool's CLIP image embeddings; keep samples
    whose nearest centroid is the nearest centroid of at least one reference image."""

    # Reference images (DataComp: ImageNet-1k's training set): a folder of images, embedded by
    # the pool's CLIP model, or a parquet with an `image_embedding` column made by that model.
    reference: str = ""
    # Centroids; 0 = ceil(pool / pool_per_cluster). DataComp: 100,000 centroids over
    # CommonPool (128M pairs at medium scale: about 1,300 a centroid).
    clusters: int = 0
    pool_per_cluster: int = 1_300
    # Centroids are trained on a seeded sample of at most sample_per_cluster x k pool
    # embeddings (faiss's default max_points_per_centroid) and at most max_sample in all.
    sample_per_cluster: int = 256
    max_sample: int = 200_000
    iterations: int = 100
    seed: int = 1234

    def validate(self) -> None:
        if self.clusters < 0 or self.pool_per_cluster < 1:
            raise ConfigError(
                "config select.image_based: clusters must be >= 0 and pool_per_cluster >= 1"
            )
        if self.sample_per_cluster < 1 or self.max_sample < 1 or self.iterations < 1:
            raise ConfigError(
                "config select.image_based: sample_per_cluster, max_sample and iterations must "
                "be >= 1"
            )


TOP_FRACTION_RULES = ("reference", "interpolated")
# The rule of select.min and select.max (pipeline/select/rules.py).
SCORE_BOUNDS = "score_bounds"
TOP_FRACTION_DENOMINATORS = ("all", "scored")


@dataclass(frozen=True)
class SelectConfig:
    """The select stage: which rules a sample must pass (all of them), in order."""

    # clip_score: the CLIP rule of the `clip` section (threshold or top fraction);
    # text_based and image_based: DataComp's filters (below). A sample is dropped with the
    # reason of the first rule it fails; [clip_score, image_based] is DataComp's intersection.
    rules: tuple[str, ...] = ("clip_score",)
    text_based: TextBasedConfig = field(default_factory=TextBasedConfig)
    image_based: ImageBasedConfig = field(default_factory=ImageBasedConfig)
    # Rules on the pool's own scores, run before the download (the preselect stage).
    pool: PoolScoresConfig = field(default_factory=PoolScoresConfig)
    # How a top fraction (clip.top_fraction, select.pool.clip_top_fraction) becomes a
    # threshold. reference: DataComp's apply_filter, the value at 0-based descending rank
    # int(N * f), keeping every score >= it (int(N * f) + 1 rows plus ties); interpolated: the
    # exact percentile 1 - f of the finite scores (about f of them). auto: reference under
    # ingest.preset datacomp, interpolated otherwise (docs/recipes.md, "Matches the reference").
    top_fraction_rule: str = "auto"
    # N of the fraction: all (every row, null and NaN scores included, as DataComp counts) or
    # scored (the rows with a score). auto: all under ingest.preset datacomp, else scored.
    top_fraction_denominator: str = "auto"
    # Bounds on any score column of the pool, as NeMo Curator and LAION keep scores as columns
    # and threshold them later: an annotation column (annotate's heads) or one the input carried
    # (LAION's punsafe). A sample is kept when column >= min and column <= max; one without a
    # finite score is select.no_score. Read by the score_bounds rule, which runs at its place in
    # `rules`, or after every listed rule when it is not listed.
    min: Mapping[str, str] = field(default_factory=dict)
    max: Mapping[str, str] = field(default_factory=dict)

    def bounds(self) -> tuple[dict[str, float], dict[str, float]]:
        """(min, max) as floats (validate checks they parse)."""
        return bounds_as_floats(self.min, self.max)

    @property
    def effective_rules(self) -> tuple[str, ...]:
        """`rules`, with score_bounds appended when bounds are set and it is not listed."""
        if (self.min or self.max) and SCORE_BOUNDS not in self.rules:
            return (*self.rules, SCORE_BOUNDS)
        return self.rules

    def validate(self) -> None:
        # The names are checked against the rule list by the select stage's preflight.
        if len(set(self.rules)) != len(self.rules):
            raise ConfigError(f"config select.rules: a rule is listed twice in {list(self.rules)}")
        if self.top_fraction_rule not in ("auto", *TOP_FRACTION_RULES):
            raise ConfigError(
                "config select.top_fraction_rule: expected auto, "
                f"{' or '.join(TOP_FRACTION_RULES)}, got {self.top_fraction_rule!r}"
            )
        if self.top_fraction_denominator not in ("auto", *TOP_FRACTION_DENOMINATORS):
            raise ConfigError(
                "config select.top_fraction_denominator: expected auto, "
                f"{' or '.join(TOP_FRACTION_DENOMINATORS)}, got {self.top_fraction_denominator!r}"
            )
        check_bound_numbers("select", self.min, self.max)
        self.text_based.validate()
        self.image_based.validate()
        self.pool.validate()


def top_fraction_rule(config: Config) -> tuple[str, str]:
    """(rule, denominator) of the top-fraction cuts, with auto resolved: DataComp's reference
    rule over all rows under ingest.preset datacomp, the interpolated percentile of the scored
    rows otherwise."""
    datacomp = config.ingest.preset == "datacomp"
    rule = config.select.top_fraction_rule
    denominator = config.select.top_fraction_denominator
    if rule == "auto":
        rule = "reference" if datacomp else "interpolated"
    if denominator == "auto":
        denominator = "all" if datacomp else "scored"
    return rule, denominator
