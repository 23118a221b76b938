"""`python -m pipeline` is the `curate` command."""

import sys

from pipeline.cli import main

# Guarded: img2dataset spawns worker processes, which re-import the main module.
if __name__ == "__main__":
    sys.exit(main())
