"""spark-submit entry point of the ingest stage: `spark-submit jobs/ingest_job.py --input PATH --run-dir
DIR ...` takes the same arguments as `curate ingest`; spark-submit's cluster `--master` is used."""

import sys

from pipeline.cli import main
from pipeline.spark.cluster import job_argv

if __name__ == "__main__":
    sys.exit(main(job_argv("ingest", sys.argv[1:])))
