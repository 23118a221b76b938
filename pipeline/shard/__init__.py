"""Shard stage: rewrite the keep-list as LAION-style webdataset shards (tar + parquet + stats)."""
