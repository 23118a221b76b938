"""Stable reason codes (`<stage>.<reason>`) for every row the pipeline drops.

Codes are part of the public contract: tests assert them exactly, users filter the ledger by them.
Add new codes here only; never rename one.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Reason:
    """One reason code and what it means."""

    code: str
    description: str
    # A list-based drop (blocklists): the report shows its count only, never a sample, and the
    # pair's URL and caption are not kept in dropped_inputs/.
    counts_only: bool = False

    @property
    def stage(self) -> str:
        return self.code.split(".", 1)[0]


# Stages that write another stage's codes: preselect runs select's rules on the pool's own scores
# before the download, and its drops carry the same codes as the same rules after it.
WRITES_CODES_OF: dict[str, str] = {"preselect": "select"}


def may_write(stage: str, code: str) -> bool:
    """Whether `stage` may write reason `code` (its own codes, or those it borrows)."""
    reason = REASONS.get(code)
    return reason is not None and reason.stage == WRITES_CODES_OF.get(stage, stage)


_ALL = [
    # ingest: row hygiene
    Reason("ingest.missing_url", "URL is null or empty"),
    Reason("ingest.missing_caption", "caption is null or empty after normalisation"),
    Reason("ingest.url_too_long", "URL longer than ingest.max_url_length"),
    Reason(
        "ingest.invalid_url", "URL cannot be parsed, has no host or contains control characters"
    ),
    Reason("ingest.url_scheme", "URL scheme is not http or https (file://, ftp://, data: ...)"),
    Reason(
        "ingest.private_host",
        "host is localhost or an IP literal in loopback/private/link-local/CGNAT/unique-local "
        "ranges (allowed only inside network.allowed_networks)",
    ),
    Reason(
        "ingest.blocked_url",
        "the normalised URL, or its MD5 or SHA-256, is in a list of ingest.blocklists (the detail"
        " names the list, never the URL)",
        counts_only=True,
    ),
    Reason(
        "ingest.blocked_domain",
        "the URL's host or a domain above it is in a list of ingest.blocklists (the detail names"
        " the list)",
        counts_only=True,
    ),
    Reason("ingest.caption_too_long", "caption longer than ingest.max_caption_chars"),
    Reason("ingest.invalid_uid", "the input uid column is not a 128-bit hex string"),
    Reason("ingest.duplicate_pair", "the same normalised (url, caption) pair appeared earlier"),
    # ingest: ALIGN / DataComp text rules
    Reason("ingest.caption_too_short", "caption has fewer than ingest.min_chars characters"),
    Reason("ingest.too_few_words", "caption has fewer than ingest.min_words unigrams"),
    Reason("ingest.too_many_words", "caption has more than ingest.max_words unigrams"),
    Reason(
        "ingest.caption_repeated",
        "alt-text shared by more than ingest.max_caption_repeats distinct image URLs (ALIGN)",
    ),
    Reason(
        "ingest.url_too_many_captions",
        "image URL with more than ingest.max_captions_per_url alt-texts (ALIGN)",
    ),
    Reason(
        "ingest.rare_token",
        "caption has a unigram or bigram outside the ingest.vocab_size most frequent ones, "
        "or seen fewer than ingest.min_token_count times (ALIGN)",
    ),
    # ingest: language identification
    Reason("ingest.language", "fastText top-1 language not in ingest.languages"),
    Reason("ingest.language_score", "fastText top-1 probability below ingest.min_lang_score"),
    # download
    Reason("download.http_error", "the server answered with an HTTP error status"),
    Reason("download.timeout", "the request timed out"),
    Reason("download.network_error", "connection refused, reset, DNS failure or similar"),
    Reason(
        "download.bad_response",
        "the answer is not valid HTTP: a malformed status line, over 100 headers, a header line "
        "over 64 kB",
    ),
    Reason("download.decode_error", "the body is not a decodable image (truncated, HTML, empty)"),
    Reason(
        "download.image_too_small", "shorter side of the original below download.min_image_size"
    ),
    Reason("download.aspect_ratio", "original aspect ratio above download.max_aspect_ratio"),
    Reason("download.opted_out", "X-Robots-Tag forbids use (noai, noimageai, ...)"),
    Reason(
        "download.robots_disallowed",
        "the origin's robots.txt disallows the URL for our user agent, or could not be fetched "
        "(5xx, network error, timeout: RFC 9309 2.3.1.4); download.respect_robots_txt",
    ),
    Reason(
        "download.blocked_address",
        "URL scheme or resolved address not allowed (loopback/private/link-local), "
        "at connect time or on a redirect",
    ),
    Reason("download.too_large", "body larger than download.max_bytes"),
    Reason(
        "download.too_many_pixels", "image header declares more than download.max_pixels pixels"
    ),
    Reason("download.too_many_redirects", "more redirects than download.max_redirects"),
    Reason("download.resize_error", "the image decoded but could not be resized or encoded"),
    Reason("download.failed", "img2dataset reported a failure with no more specific code"),
    # annotate
    Reason("annotate.decode_error", "the stored image cannot be decoded for hashing"),
    Reason("annotate.missing_image", "a downloaded sample has no image member in its shard"),
    Reason("annotate.unreadable_shard", "the shard's tar cannot be read"),
    # dedup
    Reason("dedup.exact_duplicate", "same image bytes or same pHash as the cluster's kept sample"),
    Reason(
        "dedup.near_duplicate",
        "pHash (or, with dedup.crop_windows, a crop window's or the mirror's pHash) within "
        "dedup.max_distance bits of another sample's of the cluster",
    ),
    Reason(
        "dedup.eval_overlap",
        "pHash within dedup.max_distance bits of an evaluation image, or CLIP image embedding "
        "within cosine 1 - dedup.semantic.eps of one",
    ),
    Reason(
        "dedup.blocked_image",
        "the image's SHA-256 (of the bytes as served), or a pHash within dedup.blocklist_distance"
        " bits of its own, is in a list of dedup.blocklists (the detail names the list)",
        counts_only=True,
    ),
    Reason(
        "dedup.semantic_duplicate",
        "CLIP image embedding within cosine 1 - dedup.semantic.eps of another sample of its "
        "group (SemDeDup); detail: the kept uid and the cosine to it",
    ),
    # select
    Reason(
        "select.clip_score",
        "CLIP score below clip.threshold, or below the threshold that keeps clip.top_fraction; "
        "before download (preselect), the pool's own CLIP score column (select.pool.clip_column) "
        "below its threshold",
    ),
    Reason(
        "select.no_pool_score",
        "preselect: a score column a pool rule reads is null, NaN or infinite for the sample",
    ),
    Reason("select.pool_score_below", "preselect: a pool score below its select.pool.min bound"),
    Reason(
        "select.pool_score_above",
        "preselect: a pool score above its select.pool.max bound (LAION: punsafe, pwatermark)",
    ),
    Reason(
        "select.no_clip_score",
        "the CLIP rule ran but the sample has no score, or a NaN or infinite one",
    ),
    Reason(
        "select.no_concept_match",
        "text-based rule (DataComp): the caption contains no entry of select.text_based.terms "
        "as whole words",
    ),
    Reason(
        "select.off_target_cluster",
        "image-based rule (DataComp): the image embedding's nearest pool centroid is the nearest "
        "centroid of no reference image",
    ),
    Reason("select.no_embedding", "the image-based rule ran but the sample has no image embedding"),
    Reason(
        "select.score_below",
        "score_bounds rule: a score column below its select.min bound (score_aesthetic >= 5)",
    ),
    Reason(
        "select.score_above",
        "score_bounds rule: a score column above its select.max bound (score_nsfw <= 0.5)",
    ),
    Reason(
        "select.no_score",
        "score_bounds rule: the sample has no finite value in a bounded score column",
    ),
    # balance
    Reason(
        "balance.head_entry",
        "MetaCLIP balancing: every entry the caption matches is a head entry (more than "
        "balance.t matches) and the draw at probability 1 - prod(1 - t / count) said drop",
    ),
    Reason(
        "balance.no_entry_match",
        "MetaCLIP balancing: the caption matches no entry of balance.entries",
    ),
]

REASONS: dict[str, Reason] = {r.code: r for r in _ALL}


COUNTS_ONLY: frozenset[str] = frozenset(r.code for r in _ALL if r.counts_only)


def reasons_for_stage(stage: str) -> list[str]:
    """The codes declared for one stage, in declaration order."""
    return [r.code for r in _ALL if r.stage == stage]


def check(code: str) -> str:
    """Return `code` if it is declared, else raise KeyError (catches typos at the call site)."""
    if code not in REASONS:
        raise KeyError(f"undeclared reason code {code!r}")
    return code
