"""Ingest throughput: our Spark path vs a row-at-a-time Python UDF doing the same language ID,
and vs plain batched fastText over the same captions in one process (the limit).

Run with `make bench-ingest` (200k generated rows by default, plus 20k for the 1x/10x growth).
"""

from __future__ import annotations

import argparse
import logging
import random
import shutil
import tempfile
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from benchmarks.common import report_rate, report_ratio, timed
from pipeline.config import load_config
from pipeline.ingest import langid
from pipeline.runner import run_stage
from pipeline.spark.session import get_spark

WORDS = {
    "en": [
        "a",
        "the",
        "red",
        "blue",
        "green",
        "small",
        "large",
        "dog",
        "cat",
        "car",
        "house",
        "tree",
        "river",
        "photo",
        "of",
        "on",
        "in",
        "with",
        "near",
        "old",
        "new",
        "beautiful",
        "garden",
        "city",
        "street",
        "beach",
        "mountain",
        "sunset",
        "bird",
        "flower",
        "table",
        "chair",
        "window",
    ],
    "de": [
        "ein",
        "eine",
        "der",
        "die",
        "das",
        "rote",
        "blaue",
        "kleine",
        "große",
        "Hund",
        "Katze",
        "Auto",
        "Haus",
        "Baum",
        "Fluss",
        "Foto",
        "mit",
        "am",
        "im",
        "schöne",
        "Garten",
        "Stadt",
        "Straße",
        "Strand",
        "Berg",
    ],
    "fr": [
        "un",
        "une",
        "le",
        "la",
        "les",
        "rouge",
        "bleu",
        "petit",
        "grand",
        "chien",
        "chat",
        "voiture",
        "maison",
        "arbre",
        "rivière",
        "photo",
        "avec",
        "dans",
        "sur",
        "beau",
        "jardin",
        "ville",
        "rue",
        "plage",
        "montagne",
    ],
}
BOILERPLATE = ["click to enlarge", "image", "IMG_2041.JPG", "view larger image of this product"]


def make_rows(n: int, seed: int = 0) -> pa.Table:
    """Generated crawl rows: mostly English captions, some German/French, some boilerplate."""
    rng = random.Random(seed)
    urls, captions = [], []
    for i in range(n):
        roll = rng.random()
        if roll < 0.08:
            caption = rng.choice(BOILERPLATE)
        else:
            lang = "en" if roll < 0.75 else rng.choice(["de", "fr"])
            caption = " ".join(rng.choices(WORDS[lang], k=rng.randint(2, 16)))
        urls.append(f"http://img{i % 997}.example.com/{i}.jpg")
        captions.append(caption)
    return pa.table({"url": urls, "caption": captions})


def _spread(spark, df):
    """The same partitioning the ingest stage uses, so every core works in both baselines."""
    return df.repartition(spark.sparkContext.defaultParallelism)


def udf_langid_seconds(spark, path: Path) -> float:
    """A classic pickled Python UDF that identifies one caption per call."""
    from pyspark.sql import functions as F

    model_path = langid.default_model_path()

    def one(caption: str) -> str:
        # What a user writes: one predict per row, model cached per worker (list form: the
        # single-string form of fastText 0.9.3 fails under NumPy 2).
        labels, _ = langid.load_model(model_path).predict([caption or ""], k=1)
        return labels[0][0]

    udf = F.udf(one, "string", useArrow=False)
    df = _spread(spark, spark.read.parquet(str(path)))
    seconds, _ = timed(
        lambda: (
            df.select(udf("caption").alias("lang")).write.format("noop").mode("overwrite").save()
        )
    )
    return seconds


def batched_langid_seconds(spark, path: Path) -> float:
    """Our batched language ID alone (mapInArrow), for the same captions."""
    from pyspark.sql import functions as F

    model_path = langid.default_model_path()

    def batches(it):
        for batch in it:
            langs, _ = langid.identify(
                batch.column("caption").to_pylist(), langid.load_model(model_path)
            )
            yield pa.RecordBatch.from_arrays([pa.array(langs)], names=["lang"])

    df = _spread(spark, spark.read.parquet(str(path))).select(
        F.coalesce("caption", F.lit("")).alias("caption")
    )
    seconds, _ = timed(
        lambda: df.mapInArrow(batches, "lang string").write.format("noop").mode("overwrite").save()
    )
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=200_000)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    work = Path(tempfile.mkdtemp(prefix="bench-ingest-"))
    config = load_config()
    spark = get_spark(config.spark)
    try:
        small, large = args.rows // 10, args.rows
        for n in (small, large):
            pq.write_table(make_rows(n), work / f"in_{n}.parquet")
        # Warm up the JVM and the Python workers so the first measurement is not penalised.
        run_stage("ingest", work / "warmup", config, input_path=str(work / f"in_{small}.parquet"))

        seconds = {}
        for n in (small, large):
            seconds[n], _ = timed(
                lambda n=n: run_stage(
                    "ingest", work / f"run_{n}", config, input_path=str(work / f"in_{n}.parquet")
                )
            )
            report_rate(f"ingest_{n}", n, seconds[n])
        ingest_rate = large / seconds[large]

        path = work / f"in_{large}.parquet"
        udf_rate = report_rate("udf_langid_row_at_a_time", large, udf_langid_seconds(spark, path))
        batched_rate = report_rate(
            "spark_batched_langid", large, batched_langid_seconds(spark, path)
        )
        captions = [c.replace("\n", " ") for c in pq.read_table(path).column("caption").to_pylist()]
        model = langid.load_model(langid.default_model_path())
        plain_seconds, _ = timed(lambda: langid.identify(captions, model))
        plain_rate = report_rate("plain_batched_fasttext_one_process", large, plain_seconds)

        report_ratio("ingest_vs_udf_langid", ingest_rate / udf_rate, ">=", 5)
        report_ratio("batched_langid_vs_udf_langid", batched_rate / udf_rate, ">=", 5)
        report_ratio("ingest_vs_plain_fasttext", ingest_rate / plain_rate)
        report_ratio("batched_langid_vs_plain_fasttext", batched_rate / plain_rate)
        report_ratio("ingest_cost_growth_10x", seconds[large] / seconds[small], "<=", 10)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
