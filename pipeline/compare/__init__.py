"""`curate compare`: train the same model with the same steps on several selections of one run
and print a DataComp-style table (pairs, zero-shot top-1 overall and on the tail classes, top-5)."""
