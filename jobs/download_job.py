"""spark-submit entry point of the download stage: `spark-submit jobs/download_job.py --run-dir DIR ...`
takes the same arguments as `curate download`; the session uses spark-submit's `--master`.
On a cluster master img2dataset's pyspark distributor runs the download on the executors."""

import sys

from pipeline.cli import main

if __name__ == "__main__":
    sys.exit(main(["download", *sys.argv[1:]]))
