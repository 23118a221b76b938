"""`curate preselect`: select rules on the scores the pool ships, before the download."""
