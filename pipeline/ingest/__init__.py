"""Ingest stage: parquet in, normalised and text-filtered candidates plus ledger rows out."""
