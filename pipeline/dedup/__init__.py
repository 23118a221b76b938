"""Dedup stage: exact and near-duplicate clusters over pHash, and eval-set decontamination."""
