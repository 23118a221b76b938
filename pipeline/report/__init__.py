"""`curate report`: one self-contained HTML page about a run (funnel, histograms, sample grids,
duplicate clusters, ground-truth precision/recall, training comparison)."""
