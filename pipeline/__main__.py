"""`python -m pipeline` is the `curate` command."""

import sys

from pipeline.cli import main

sys.exit(main())
