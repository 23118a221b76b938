"""spark-submit entry point of the annotate stage: `spark-submit jobs/annotate_job.py --run-dir DIR ...`
takes the same arguments as `curate annotate`; the session uses spark-submit's `--master`."""

import sys

from pipeline.cli import main

if __name__ == "__main__":
    sys.exit(main(["annotate", *sys.argv[1:]]))
