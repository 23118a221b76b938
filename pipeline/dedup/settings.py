"""The `dedup` config section: pHash near duplicates, decontamination and its nested
`dedup.semantic` (SemDeDup)."""

from __future__ import annotations

from dataclasses import dataclass, field

from pipeline.errors import ConfigError


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
    # 4 was measured against 6 (docs/crop_robust_hashing.md): it loses one-sided crops, 3-8 %
    # crops, colour shifts and overlays that nothing else recovers on the demo. pHashes have 32
    # set bits, so distances are even: 5 finds what 4 finds, 7 what 6 finds.
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
    # Image hash lists (pipeline/dedup/blocklists.py): files or URLs, one `sha256:<hex>` (of the
    # bytes as served) or `phash:<hex>` entry a line; listed pictures are dropped as
    # dedup.blocked_image before anything reaches the shards. Their digests are in the fingerprint.
    blocklists: tuple[str, ...] = ()
    # A pHash entry matches images within this many bits: re-encodes and resizes land within 4,
    # 1-2 % crops within 6 (as max_distance).
    blocklist_distance: int = 6
    # The most distinct hashes one shuffle bucket of the index may hold (a task holds a bucket
    # whole in memory, ~50 bytes a hash). Larger buckets (a degenerate hash family) are split
    # further in the shuffle, never skipped; stats.json counts them (oversized_buckets).
    max_bucket_size: int = 1_000_000
    max_iterations: int = 50
    semantic: SemanticDedupConfig = field(default_factory=SemanticDedupConfig)

    def validate(self) -> None:
        if not 0 <= self.blocklist_distance <= 31:
            raise ConfigError(
                f"config dedup.blocklist_distance: expected 0 to 31 bits, got {self.blocklist_distance}"
            )
        if not 0 <= self.max_distance <= 31:
            raise ConfigError(
                f"config dedup.max_distance: expected 0 to 31 bits, got {self.max_distance}"
            )
        if self.keep not in ("auto", "largest"):
            raise ConfigError(f"config dedup.keep: expected auto or largest, got {self.keep!r}")
        if self.max_bucket_size < 2 or self.max_iterations < 1:
            raise ConfigError("config dedup: max_bucket_size must be >= 2 and max_iterations >= 1")
        self.semantic.validate()
