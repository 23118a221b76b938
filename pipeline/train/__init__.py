"""The bundled contrastive trainer: CLIP on webdataset shards, with zero-shot and retrieval eval."""
