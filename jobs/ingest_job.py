"""spark-submit entry point of the ingest stage: `spark-submit jobs/ingest_job.py --input PATH --run-dir DIR ...`
takes the same arguments as `curate ingest`; the session uses spark-submit's `--master`."""

import sys

from pipeline.cli import main

if __name__ == "__main__":
    sys.exit(main(["ingest", *sys.argv[1:]]))
