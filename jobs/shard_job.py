"""spark-submit entry point of the shard stage: `spark-submit jobs/shard_job.py --run-dir DIR ...`
takes the same arguments as `curate shard`; the session uses spark-submit's `--master`."""

import sys

from pipeline.cli import main

if __name__ == "__main__":
    sys.exit(main(["shard", *sys.argv[1:]]))
