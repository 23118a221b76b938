"""spark-submit entry point of the download stage: `spark-submit jobs/download_job.py --run-dir DIR ...`
takes the same arguments as `curate download`; on a cluster `--master`, img2dataset's pyspark
distributor runs the download on the executors."""

import sys

from pipeline.cli import main
from pipeline.spark.cluster import job_argv

if __name__ == "__main__":
    sys.exit(main(job_argv("download", sys.argv[1:])))
