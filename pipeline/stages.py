"""The stage registry: every stage declared once, in pipeline order.

The CLI's sub-commands, `curate run`, `curate status`, the demo, the Make targets and the
spark-submit entry `jobs/stage_job.py` all read this list; the runner (pipeline.runner) does what
every stage shares, and pipeline.config builds the configuration from the sections declared
here. Adding a stage is one entry here plus its own package (its settings section included).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Stage:
    """One stage of the pipeline, as the runner sees it.

    `settings` names what the stage's output depends on: a whole config section (`"dedup"`) or
    one key (`"clip.model"`); `ignore` takes out keys of those sections that cannot change the
    output (thread counts, batch sizes, Spark tuning). Both feed the stage's fingerprint.
    """

    name: str
    # The stage whose output this one reads (None: reads the --input of the run).
    needs: str | None
    # Its output folder in the run directory.
    output: str
    # "module:function": called with a pipeline.runner.StageContext, returns a StageResult.
    entry: str
    help: str
    settings: tuple[str, ...] = ()
    ignore: tuple[str, ...] = ()
    # "module:function"(config, input_path): checks, before any stage of a run starts, what this
    # stage will need (models, files), raising InputError; None when there is nothing to check.
    preflight: str | None = None
    # Settings (among `settings`) that name a file whose content the output depends on: the
    # file's sha256 is part of the fingerprint, so an edited file at the same path reruns it.
    files: tuple[str, ...] = ()
    # Raised when the code changes what the stage writes with the same settings (a new column),
    # so that outputs written before are stale, not complete. Part of the fingerprint.
    version: int = 0
    # "module:Class" of the stage's own config section, named after the stage (a frozen
    # dataclass with a validate() method, declared in the stage's package); None: it has none.
    section: str | None = None


# Config sections that no single stage owns ("module:Class"): the run's own, listed first in
# config.yaml, and those several stages and commands read, listed after the stages' sections.
RUN_SECTIONS: tuple[tuple[str, str], ...] = (
    ("spark", "pipeline.spark.settings:SparkConfig"),
    ("network", "pipeline.net_policy:NetworkConfig"),
)
SHARED_SECTIONS: tuple[tuple[str, str], ...] = (
    # Scoring in annotate, the CLIP rule in select, the eval set's embeddings in dedup.
    ("clip", "pipeline.clip.settings:ClipConfig"),
    # Balance's entries, select's terms and compare's classes.
    ("entry_match", "pipeline.entry_match:EntryMatchConfig"),
    # `curate train`, compare and the demo.
    ("train", "pipeline.train.settings:TrainConfig"),
    # `curate compare` (and the demo's comparison): seeds and intervals.
    ("compare", "pipeline.compare.settings:CompareConfig"),
)


STAGES: tuple[Stage, ...] = (
    Stage(
        name="ingest",
        needs=None,
        output="candidates",
        entry="pipeline.ingest.stage:run",
        section="pipeline.ingest.settings:IngestConfig",
        help="validate, normalise and text-filter an input parquet into candidates/",
        settings=("ingest", "network"),
        files=("ingest.blocklists",),
        preflight="pipeline.ingest.stage:preflight",
        # 1: dropped_inputs/ (the dropped pairs as read, for the report).
        version=1,
    ),
    Stage(
        name="preselect",
        needs="ingest",
        output="preselected",
        entry="pipeline.preselect.stage:run",
        help="select.pool rules on the scores the pool ships (CLIP column, bounds), before the"
        " download: preselected/",
        # The top-fraction rule, whose auto value follows ingest.preset.
        settings=(
            "select.pool",
            "select.top_fraction_rule",
            "select.top_fraction_denominator",
            "ingest.preset",
        ),
    ),
    Stage(
        name="download",
        needs="preselect",
        output="downloads",
        entry="pipeline.download.stage:run",
        section="pipeline.download.settings:DownloadConfig",
        help="download candidates/ with img2dataset into downloads/",
        settings=("download", "network"),
        # How the work is spread (processes, threads, which distributor, shard retries) does
        # not change which images arrive.
        ignore=(
            "download.distributor",
            "download.processes",
            "download.threads",
            "download.max_shard_retry",
        ),
    ),
    Stage(
        name="annotate",
        needs="download",
        output="annotations",
        entry="pipeline.annotate.stage:run",
        section="pipeline.annotate.settings:AnnotateConfig",
        help="per-image sizes, sha256, pHash and CLIP score of downloads/ into annotations/",
        # CLIP runs here, so the model that scores is part of annotate; thresholds are select's.
        settings=(
            "annotate",
            "clip.enabled",
            "clip.model",
            "clip.pretrained",
            "clip.save_embeddings",
        ),
        ignore=("annotate.batch_rows",),
        files=("annotate.heads",),
        preflight="pipeline.annotate.stage:preflight",
        # 1: window_phashes always, image_embedding whenever CLIP runs. 2: served_sha256 (the
        # served bytes' SHA-256, which dedup.blocklists' SHA-256 entries match).
        version=2,
    ),
    Stage(
        name="dedup",
        needs="annotate",
        output="dedup",
        entry="pipeline.dedup.stage:run",
        section="pipeline.dedup.settings:DedupConfig",
        help="exact, near (pHash) and semantic (CLIP embedding) duplicates and eval overlap into dedup/",
        settings=("dedup",),
        # A run that converges gives the same components whatever the round limit.
        ignore=("dedup.max_iterations", "dedup.semantic.block_rows"),
        files=("dedup.blocklists",),
        preflight="pipeline.dedup.stage:preflight",
    ),
    Stage(
        name="select",
        needs="dedup",
        output="selection",
        entry="pipeline.select.stage:run",
        section="pipeline.select.settings:SelectConfig",
        help="apply the select rules (CLIP score ...) to the dedup survivors: selection/",
        # select.pool is preselect's (its rules run before the download).
        settings=(
            "select.rules",
            "select.text_based",
            "select.image_based",
            "clip.enabled",
            "clip.threshold",
            "clip.top_fraction",
            "select.top_fraction_rule",
            "select.top_fraction_denominator",
            "select.min",
            "select.max",
            "ingest.preset",
            "entry_match",
        ),
        files=("select.text_based.terms",),
        preflight="pipeline.select.stage:preflight",
    ),
    Stage(
        name="balance",
        needs="select",
        output="balanced",
        entry="pipeline.balance.stage:run",
        section="pipeline.balance.settings:BalanceConfig",
        help="MetaCLIP balancing of selection/ over balance.entries (head entries capped): balanced/",
        settings=("balance", "entry_match"),
        files=("balance.entries",),
        preflight="pipeline.balance.stage:preflight",
    ),
    Stage(
        name="shard",
        needs="balance",
        output="shards",
        entry="pipeline.shard.stage:run",
        section="pipeline.shard.settings:ShardConfig",
        help="write the keep-list as LAION-style webdataset shards into shards/",
        settings=("shard",),
    ),
)

STAGE_NAMES: tuple[str, ...] = tuple(s.name for s in STAGES)


def get_stage(name: str) -> Stage:
    """The stage called `name`; KeyError names the known ones."""
    for stage in STAGES:
        if stage.name == name:
            return stage
    raise KeyError(f"unknown stage {name!r} (stages: {', '.join(s.name for s in STAGES)})")


def later_stages(name: str) -> tuple[Stage, ...]:
    """The stages after `name`, in order (everything a change of `name` invalidates)."""
    names = [s.name for s in STAGES]
    return STAGES[names.index(name) + 1 :]
