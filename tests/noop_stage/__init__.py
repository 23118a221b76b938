"""A stage that keeps every sample: what adding a stage takes (tests/test_runner.py)."""
