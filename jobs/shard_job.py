"""spark-submit entry point of the shard stage: `spark-submit jobs/shard_job.py --run-dir DIR ...`
takes the same arguments as `curate shard`; spark-submit's cluster `--master` is used."""

import sys

from pipeline.cli import main
from pipeline.spark.cluster import job_argv

if __name__ == "__main__":
    sys.exit(main(job_argv("shard", sys.argv[1:])))
