"""`python -m pipeline.spark.cluster up|down|package`, what the Makefile calls: start or stop the
standalone cluster on 127.0.0.1 (pipeline.spark.local_cluster), or build the `--py-files` zip
(pipeline.spark.packaging). Under spark-submit the session takes the submitted master itself."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from pipeline.spark.local_cluster import DEFAULT_DIR, load_cluster, start_standalone
from pipeline.spark.packaging import DEFAULT_ZIP, build_pyfiles_zip

log = logging.getLogger("pipeline.spark.cluster")  # also under `python -m`


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m pipeline.spark.cluster up|down|package`."""
    parser = argparse.ArgumentParser(prog="python -m pipeline.spark.cluster", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    up = sub.add_parser(
        "up",
        help="start a master and a worker on 127.0.0.1; log the master URL (also in --dir/master_url)",
    )
    up.add_argument("--dir", type=Path, default=DEFAULT_DIR, help="logs, pid files, master_url")
    up.add_argument("--cores", type=int, default=2, help="worker cores")
    up.add_argument("--memory", default="2g", help="worker memory, e.g. 2g")
    up.add_argument("--timeout", type=float, default=300.0, help="seconds to wait for start-up")
    down = sub.add_parser("down", help="stop the cluster recorded in --dir")
    down.add_argument("--dir", type=Path, default=DEFAULT_DIR)
    package = sub.add_parser("package", help="zip pipeline/ and schemas/ for --py-files")
    package.add_argument("--out", type=Path, default=DEFAULT_ZIP)
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )

    if args.command == "package":
        build_pyfiles_zip(args.out)
        return 0
    existing = load_cluster(args.dir)
    if args.command == "down":
        if existing is None:
            log.info("no cluster recorded in %s", args.dir)
            return 0
        existing.stop()
        log.info("cluster %s stopped", existing.master_url)
        return 0
    if existing is not None and existing.processes():
        log.info("a cluster is already running from %s", args.dir)
        cluster = existing
    else:
        if existing is not None:
            existing.stop()  # a stale record: clear what is left of it
        cluster = start_standalone(args.dir, args.cores, args.memory, args.timeout)
    # Scripts read the URL from the cluster folder's master_url file (the Makefile does).
    log.info("cluster up: %s", cluster.master_url)
    return 0


if __name__ == "__main__":
    sys.exit(main())
