"""CLIP models for scoring: open_clip architectures (plus the project's small configs) and checkpoints."""
