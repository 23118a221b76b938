"""Semantic dedup (SemDeDup) over CLIP image embeddings: kernels.py (numpy), plan.py (Spark)."""
