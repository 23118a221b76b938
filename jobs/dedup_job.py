"""spark-submit entry point of the dedup stage: `spark-submit jobs/dedup_job.py --run-dir DIR ...`
takes the same arguments as `curate dedup`; the session uses spark-submit's `--master`."""

import sys

from pipeline.cli import main

if __name__ == "__main__":
    sys.exit(main(["dedup", *sys.argv[1:]]))
