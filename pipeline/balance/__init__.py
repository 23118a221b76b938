"""Balance stage: MetaCLIP's balancing of the selected samples over a list of metadata entries."""
