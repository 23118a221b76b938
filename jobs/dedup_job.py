"""spark-submit entry point of the dedup stage: `spark-submit jobs/dedup_job.py --run-dir DIR ...`
takes the same arguments as `curate dedup`; spark-submit's cluster `--master` is used."""

import sys

from pipeline.cli import main
from pipeline.spark.cluster import job_argv

if __name__ == "__main__":
    sys.exit(main(job_argv("dedup", sys.argv[1:])))
