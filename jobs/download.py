"""spark-submit entry point of the download stage: `spark-submit jobs/download.py --run-dir DIR ...`
takes the same arguments as `curate download`."""

import sys

from pipeline.cli import main

if __name__ == "__main__":
    sys.exit(main(["download", *sys.argv[1:]]))
