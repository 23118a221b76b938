"""Annotate stage: per downloaded image its location in the shard, sizes, sha256 and pHash."""
