"""Web-scale image-text curation pipeline: ingest, download, filter, deduplicate, shard, train."""
