"""The Spark plan of the ingest stage: read and map columns, hygiene, duplicate pairs, ALIGN's
dataset-wide counts, then the per-row decision and language ID, all over Arrow batches."""

from __future__ import annotations

import functools
import logging
from collections.abc import Mapping

import pyarrow as pa
from py4j.protocol import Py4JJavaError
from pyspark.errors import PySparkException
from pyspark.sql import Column, DataFrame, SparkSession, Window
from pyspark.sql import functions as F
from pyspark.sql.pandas.types import to_arrow_schema
from pyspark.sql.types import StringType, StructType

from pipeline.config import Config
from pipeline.errors import InputError
from pipeline.ingest import decide as row_rules
from pipeline.ingest import hygiene
from pipeline.ingest.blocklists import pin_blocklists
from pipeline.ingest.input_check import (
    carried_columns,
    check_columns,
    check_input,
    check_names,
)
from pipeline.ingest.langid import resolve_model_path
from pipeline.ingest.settings import IngestConfig, ingest_columns
from pipeline.net_policy import NetworkConfig
from pipeline.spark.arrow import map_batches
from pipeline.spark.decisions import Decisions
from pipeline.storage import as_path, is_url, spark_url
from schemas.reasons import COUNTS_ONLY, check
from schemas.tables import DROPPED_INPUT

log = logging.getLogger(__name__)
DUPLICATE_PAIR = check("ingest.duplicate_pair")


def read_input(spark: SparkSession, path: str, cfg: IngestConfig) -> tuple[DataFrame, pa.Schema]:
    """Read parquet (file, folder, glob or URL) and map columns by name.

    Spark reads exactly the files the footer check (`input_check.check_input`) passed, those with
    rows, merging their schemas when their columns differ. Returns the mapped DataFrame (raw
    url/caption/uid, carried columns, source position) and the Arrow schema of the carried
    columns. Raises InputError for anything a user must fix.
    """
    checked = check_input(path, cfg)
    try:
        if checked is None:  # a scheme only Hadoop reads: Spark lists it, the name rules after
            df = spark.read.parquet(spark_url(as_path(path)) if is_url(path) else path)
        else:
            reader = spark.read if checked.uniform else spark.read.option("mergeSchema", "true")
            df = reader.parquet(*[spark_url(as_path(f)) if is_url(f) else f for f in checked.files])
        fields = {f.name: f.dataType for f in df.schema.fields}
    except (PySparkException, Py4JJavaError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise InputError(f"input {path}: cannot read as parquet ({first[:300]})") from exc
    if checked is None:
        check_names(path, list(fields))
    cols = ingest_columns(cfg)
    used = check_columns(
        path,
        {n: None if isinstance(t, StringType) else t.simpleString() for n, t in fields.items()},
        cfg,
    )
    names = list(checked.columns) if checked is not None else list(fields)
    mapped = [
        _column(cols["url_col"]).alias(hygiene.RAW_URL),
        _column(cols["caption_col"]).alias(hygiene.RAW_CAPTION),
    ]
    if cols["uid_col"]:
        mapped.append(_column(cols["uid_col"]).alias(hygiene.RAW_UID))
    carried = [_column(name).alias(out) for name, out in carried_columns(path, names, used)]
    df = df.select(
        *mapped,
        *carried,
        F.col("_metadata.file_path").alias(hygiene.SOURCE_FILE),
        F.col("_metadata.row_index").alias(hygiene.SOURCE_ROW),
    )
    # A small file is one input split: spread it so every core runs the Python passes.
    parallelism = spark.sparkContext.defaultParallelism
    if df.rdd.getNumPartitions() < parallelism:
        df = df.repartition(parallelism)
    if checked is None:
        try:
            empty = df.isEmpty()
        except (PySparkException, Py4JJavaError) as exc:
            raise InputError(
                f"input {path}: cannot read rows ({str(exc).splitlines()[0][:300]})"
            ) from exc
        if empty:
            raise InputError(f"input {path}: no rows (expected a table of url and caption pairs)")
    return df, carried_schema(df)


def _column(name: str) -> Column:
    """An input column by its exact name, whatever characters it holds."""
    return F.col("`" + name.replace("`", "``") + "`")


def carried_schema(df: DataFrame) -> pa.Schema:
    """The Arrow schema of the carried input columns, as Spark hands them to the Python passes
    (timestamps in the session's time zone, UTC); candidates/ stores them JSON-safe."""
    kept = StructType([f for f in df.schema.fields if f.name not in _RAW_AND_SOURCE])
    return to_arrow_schema(kept, timezone="UTC", prefers_large_types=False)


def decide(inputs: Mapping[str, DataFrame], config: Config) -> Decisions:
    """The stage's plan: `inputs["input"]` as `read_input` mapped it -> every row decided."""
    df = inputs["input"]
    model_path = resolve_model_path(config.ingest.langid_model)
    frame = ingest_decisions(df, config.ingest, config.network, carried_schema(df), model_path)
    return Decisions(frame)


_RAW_AND_SOURCE = {
    hygiene.RAW_URL,
    hygiene.RAW_CAPTION,
    hygiene.RAW_UID,
    hygiene.SOURCE_FILE,
    hygiene.SOURCE_ROW,
}


def dropped_input_columns(extra: pa.Schema) -> list[Column]:
    """The columns of dropped_inputs/ (schemas.tables.DROPPED_INPUT, then the carried ones):
    a blocklisted pair (a counts-only reason) keeps its uid and reason, its URL and caption
    null."""
    listed = F.col("reason").isin(sorted(COUNTS_ONLY))
    hidden = ("url", "caption")
    return [
        *(
            F.when(listed, F.lit(None)).otherwise(F.col(c)).alias(c) if c in hidden else F.col(c)
            for c in DROPPED_INPUT.names
        ),
        *(F.col(name) for name in extra.names),
    ]


def _mark(df: DataFrame, condition, reason: str, detail) -> DataFrame:
    """Give rows still kept that meet `condition` a reason (first rule wins)."""
    hit = F.col("reason").isNull() & condition
    return df.withColumn("detail", F.when(hit, detail).otherwise(F.col("detail"))).withColumn(
        "reason", F.when(hit, F.lit(reason)).otherwise(F.col("reason"))
    )


def vocabulary_floor(count_histogram: list[tuple[int, int]], vocab_size: int) -> int:
    """Smallest token count c such that at most `vocab_size` tokens have count >= c.

    ALIGN keeps the `vocab_size` most frequent unigrams and bigrams; ties at the cut are not
    split (so the vocabulary may hold fewer), which keeps the rule independent of input order.
    `count_histogram` is (count, number of tokens with that count).
    """
    total = 0
    floor = 1
    for count, n_tokens in sorted(count_histogram, reverse=True):
        if total + n_tokens > vocab_size:
            return floor if total else count + 1
        total += n_tokens
        floor = count
    return floor if total else 1


def _rare_tokens(df: DataFrame, cfg: IngestConfig) -> DataFrame | None:
    """pair_key -> one rare token of that caption, or None when no token can be rare."""
    kept = df.filter(F.col("reason").isNull()).select("pair_key", "tokens")
    exploded = kept.select("pair_key", F.explode("tokens").alias("token"))
    counts = exploded.groupBy("token").agg(F.count(F.lit(1)).alias("n"))
    histogram = [
        (r["n"], r["tokens"])
        for r in counts.groupBy("n").agg(F.count(F.lit(1)).alias("tokens")).collect()
    ]
    floor = max(vocabulary_floor(histogram, cfg.vocab_size), cfg.min_token_count)
    log.info("ingest: rare-token floor is a count of %d", floor)
    if floor <= 1:
        return None
    rare = counts.filter(F.col("n") < floor).select("token")
    return (
        exploded.join(rare, "token")
        .groupBy("pair_key")
        .agg(F.min("token").alias(row_rules.RARE_TOKEN))
    )


def rare_rule_can_apply(n_rows: int, cfg: IngestConfig) -> bool:
    """Whether any token can fall outside the vocabulary.

    Tokens are counted over captions of at most `max_words` unigrams, so a caption has at most
    2 * max_words - 1 unigrams and bigrams: below `vocab_size` distinct tokens in total, ALIGN's
    rank cut keeps everything, and the whole token count (an explode and a shuffle) is skipped.
    """
    return cfg.min_token_count > 1 or n_rows * (2 * cfg.max_words - 1) > cfg.vocab_size


def ingest_decisions(
    df: DataFrame,
    cfg: IngestConfig,
    network: NetworkConfig,
    extra: pa.Schema,
    model_path: str,
) -> DataFrame:
    """Every input row once, with `reason` null for kept candidates, else its reason code."""
    with_tokens = rare_rule_can_apply(df.count(), cfg)
    hyg = map_batches(
        df,
        functools.partial(
            hygiene.hygiene_batches,
            cfg=cfg,
            extra=extra,
            with_tokens=with_tokens,
            allowed_networks=network.allowed_networks,
            pinned_lists=pin_blocklists(cfg.blocklists),
        ),
        hygiene.hygiene_schema(extra),
    )
    # Duplicates: the first occurrence in input order (file, row) is kept, whatever the partitioning.
    order = [F.col("reason").isNotNull(), hygiene.SOURCE_FILE, hygiene.SOURCE_ROW]
    by_pair = Window.partitionBy("pair_key").orderBy(*order)
    hyg = hyg.withColumn("_rank", F.row_number().over(by_pair)).withColumn(
        "_first", F.first(F.concat_ws(":", hygiene.SOURCE_FILE, hygiene.SOURCE_ROW)).over(by_pair)
    )
    hyg = _mark(hyg, F.col("_rank") > 1, DUPLICATE_PAIR, F.concat(F.lit("first at "), "_first"))
    if hygiene.RAW_UID in df.columns:
        by_uid = Window.partitionBy("uid").orderBy(*order)
        hyg = hyg.withColumn("_rank", F.row_number().over(by_uid))
        hyg = _mark(hyg, F.col("_rank") > 1, DUPLICATE_PAIR, F.lit("uid seen earlier"))
    hyg = hyg.drop("_rank", "_first")
    # ALIGN's dataset-wide counts, over the rows that survived hygiene and duplicate removal.
    alive = F.when(F.col("reason").isNull(), F.lit(1))
    hyg = hyg.withColumn(
        row_rules.CAPTION_REPEATS, F.count(alive).over(Window.partitionBy("caption_key"))
    ).withColumn(row_rules.URL_CAPTIONS, F.count(alive).over(Window.partitionBy("url")))
    rare = None
    if with_tokens:
        hyg = hyg.persist()  # read twice: for the token counts and for the decisions
        rare = _rare_tokens(hyg, cfg)
    if rare is None:
        hyg = hyg.withColumn(row_rules.RARE_TOKEN, F.lit(None).cast("string"))
    else:
        hyg = hyg.join(rare, "pair_key", "left")
    hyg = hyg.drop("tokens", "caption_key")
    return map_batches(
        hyg,
        functools.partial(row_rules.decide_batches, cfg=cfg, model_path=model_path),
        hyg.schema,
    )
