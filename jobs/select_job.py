"""spark-submit entry point of the select stage: `spark-submit jobs/select_job.py --run-dir DIR ...`
takes the same arguments as `curate select`; the session uses spark-submit's `--master`."""

import sys

from pipeline.cli import main

if __name__ == "__main__":
    sys.exit(main(["select", *sys.argv[1:]]))
