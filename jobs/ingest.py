"""spark-submit entry point of the ingest stage: `spark-submit jobs/ingest.py --run-dir DIR ...`
takes the same arguments as `curate ingest`."""

import sys

from pipeline.cli import main

if __name__ == "__main__":
    sys.exit(main(["ingest", *sys.argv[1:]]))
