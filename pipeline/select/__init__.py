"""Select stage: combine dedup survivors and CLIP scores into the keep-list of uids."""
