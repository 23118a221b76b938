"""Arrow schemas of the tables the pipeline writes; Spark schemas are derived from these, never inferred."""

from __future__ import annotations

import pyarrow as pa

# uid: 128-bit id as 32 lowercase hex characters (DataComp's uid format).
UID = pa.field("uid", pa.string(), nullable=False)

# Core columns of `candidates/`; any other input column is carried along after them.
CANDIDATE_CORE = pa.schema(
    [
        UID,
        pa.field("url", pa.string(), nullable=False),
        pa.field("caption", pa.string(), nullable=False),
        pa.field("lang", pa.string()),
        pa.field("lang_score", pa.float32()),
    ]
)

# `ledger/<stage>/`: one row per dropped pair, whichever stage dropped it.
LEDGER = pa.schema(
    [
        UID,
        pa.field("stage", pa.string(), nullable=False),
        pa.field("reason", pa.string(), nullable=False),
        pa.field("detail", pa.string()),
    ]
)

# `dropped_inputs/`: the input pairs ingest dropped, with the url and caption ingest read (null
# where the row had none) and the reason; the input's extra columns follow, as in candidates/.
# The report shows them (and matches them to a ground truth) without the input or ingest's code.
DROPPED_INPUT = pa.schema(
    [
        UID,
        pa.field("reason", pa.string(), nullable=False),
        pa.field("url", pa.string()),
        pa.field("caption", pa.string()),
    ]
)

# Names an extra input column may not take: ours, and img2dataset's reserved output columns.
# A clashing input column is kept under the name `input_<name>`.
RESERVED_COLUMNS = frozenset(
    [*CANDIDATE_CORE.names, "stage", "reason", "detail"]
    + [
        "key",
        "width",
        "height",
        "original_width",
        "original_height",
        "status",
        "error_message",
        "exif",
        "md5",
        "sha256",
        "sha512",
    ]
)

# Internal working columns of the ingest stage (never written to candidates/).
INGEST_WORK = pa.schema(
    [
        pa.field("pair_key", pa.string()),
        pa.field("reason", pa.string()),
        pa.field("detail", pa.string()),
        pa.field("caption_key", pa.string()),
        pa.field("n_chars", pa.int32()),
        pa.field("n_words", pa.int32()),
        pa.field("tokens", pa.list_(pa.string())),
        pa.field("source_file", pa.string()),
        pa.field("source_row", pa.int64()),
    ]
)


# `annotations/`: one row per downloaded sample, where to find its image and what it looks like.
ANNOTATION = pa.schema(
    [
        UID,
        pa.field("shard", pa.string(), nullable=False),  # e.g. "00000" (downloads/00000.tar)
        pa.field("key", pa.string(), nullable=False),  # img2dataset key, the tar member stem
        pa.field("offset", pa.int64()),  # byte offset of the image data in the tar, for seeking
        pa.field("image_bytes", pa.int64()),
        pa.field("width", pa.int32()),
        pa.field("height", pa.int32()),
        pa.field("original_width", pa.int32()),
        pa.field("original_height", pa.int32()),
        pa.field("sha256", pa.string()),  # of the stored image bytes
        # Of the bytes as served, before any resize or re-encode (img2dataset's compute_hash):
        # what published image hash lists carry (dedup.blocklists). Null when the download
        # recorded none.
        pa.field("served_sha256", pa.string()),
        # 64-bit imagehash pHash, as a signed 64-bit integer (two's complement of the hash).
        pa.field("phash", pa.int64()),
        # pHashes of crop windows and the mirrored frame (pipeline/annotate/window_hash.py), for
        # crop- and flip-robust near duplicates (dedup.crop_windows).
        pa.field("window_phashes", pa.list_(pa.int64())),
    ]
)


# Columns annotate adds when CLIP scoring is on (clip.enabled).
def head_score_field(name: str) -> pa.Field:
    """The column a classifier head of `annotate.heads` writes (pipeline.clip.heads)."""
    return pa.field(f"score_{name}", pa.float32())


CLIP_COLUMNS = pa.schema(
    [
        pa.field("clip_score", pa.float32()),  # cosine similarity of image and caption embeddings
        # Normalised embeddings as raw float16 bytes (Spark has no float16): the image's always
        # (semantic dedup reads it), the caption's with clip.save_embeddings.
        pa.field("image_embedding", pa.binary()),
        pa.field("text_embedding", pa.binary()),
    ]
)

# `selection/`: the keep-list (DataComp's apply_filter output), sorted by uid.
SELECTION = pa.schema([UID, pa.field("clip_score", pa.float32())])

# One row per sample of `shards/NNNNN.parquet` (and the same fields in each KEY.json member).
SHARD_SAMPLE = pa.schema(
    [
        pa.field("key", pa.string(), nullable=False),  # NNNNN (shard) + zero-padded index
        UID,
        pa.field("url", pa.string()),
        pa.field("caption", pa.string()),
        pa.field("width", pa.int32()),
        pa.field("height", pa.int32()),
        pa.field("original_width", pa.int32()),
        pa.field("original_height", pa.int32()),
        pa.field("lang", pa.string()),
        pa.field("lang_score", pa.float32()),
        pa.field("clip_score", pa.float32()),
        pa.field("phash", pa.string()),  # 16 hex digits
        pa.field("sha256", pa.string()),
        pa.field("source_key", pa.string()),  # downloads/<shard>.tar member the bytes came from
    ]
)

# `dedup/`: the samples kept by dedup, with the cluster each belongs to.
DEDUP = pa.schema(
    [
        UID,
        pa.field("cluster", pa.int64()),  # smallest full-frame pHash of the cluster's samples
        pa.field("cluster_size", pa.int64()),
    ]
)

# Reason and detail columns that a stage's decisions carry before the kept/ledger split.
DECISION = pa.schema([pa.field("reason", pa.string()), pa.field("detail", pa.string())])
