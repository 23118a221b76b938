"""spark-submit entry of every stage: `spark-submit jobs/stage_job.py STAGE --run-dir DIR ...`
takes the same arguments as `curate STAGE` (any stage of pipeline.stages, or `run`); the session
uses spark-submit's `--master`. Named so that it cannot shadow a standard-library module."""

import sys

from pipeline.cli import main

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
