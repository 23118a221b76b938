"""spark-submit entry point of the annotate stage: `spark-submit jobs/annotate_job.py --run-dir DIR ...`
takes the same arguments as `curate annotate`; spark-submit's cluster `--master` is used."""

import sys

from pipeline.cli import main
from pipeline.spark.cluster import job_argv

if __name__ == "__main__":
    sys.exit(main(job_argv("annotate", sys.argv[1:])))
