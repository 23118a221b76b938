"""The `curate` command: one sub-command per stage of the registry (pipeline.stages), plus run,
status, report, train, compare and demo, each a thin layer over pipeline.api that parses the
arguments and prints. Exit 0 done, 2 bad input or config, 1 failure."""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from pipeline import api
from pipeline.config import Config, load_config
from pipeline.errors import InputError
from pipeline.stages import STAGES

log = logging.getLogger("pipeline")


def _stage_handler(name: str) -> Callable[[argparse.Namespace, Config], None]:
    def handler(args: argparse.Namespace, config: Config) -> None:
        api.run_stage(
            name, args.run_dir, config, input=getattr(args, "input", None), force=args.force
        )

    return handler


def _run(args: argparse.Namespace, config: Config) -> None:
    from pipeline.stats import summary_lines

    outcome = api.run(args.input, args.run_dir, config)
    print("\n".join(summary_lines(outcome.stats)))
    print(f"\nreport: {outcome.report}")


def _status(args: argparse.Namespace, config: Config) -> None:
    from pipeline.runner import status_lines

    print("\n".join(status_lines(args.run_dir, config)))


def _report(args: argparse.Namespace, config: Config) -> None:
    print(api.report(args.run_dir, config))


def _train(args: argparse.Namespace, config: Config) -> None:
    api.train(args.shards, args.output, config)


def _compare(args: argparse.Namespace, config: Config) -> None:
    from pipeline.compare.run_compare import table_lines

    outcome = api.compare(args.run_dir, args.selections, config)
    print("\n".join(table_lines(outcome.raw)))


def _demo(args: argparse.Namespace, config: Config) -> None:
    from pipeline.compare.run_compare import table_lines
    from pipeline.stats import summary_lines

    outcome = api.demo(
        args.run_dir,
        config,
        pairs=args.pairs,
        seed=args.seed,
        eval_per_class=args.eval_per_class,
        port=args.port,
    )
    lines = summary_lines(outcome.stats)
    if outcome.stats.get("comparison"):
        lines += ["", *table_lines(outcome.stats["comparison"])]
    print("\n".join(lines))
    print(f"\nrun directory: {outcome.run_dir}")
    print(f"report: {outcome.report}")


# name: (help, handler); every stage of the registry comes first.
COMMANDS: dict[str, tuple[str, Callable[[argparse.Namespace, Config], None]]] = {
    **{s.name: (s.help, _stage_handler(s.name)) for s in STAGES},
    "run": ("every stage in order, ingest to shard, then the report", _run),
    "status": (
        "one line per stage: complete, stale (which setting changed), missing or not run",
        _status,
    ),
    "report": ("write report/index.html: funnel, plots, samples, ground truth", _report),
    "train": ("train a CLIP model on webdataset shards (the bundled contrastive trainer)", _train),
    "compare": (
        "train the same model on several selections of a run (raw, run, select rules, balance)"
        " and print a DataComp-style zero-shot table",
        _compare,
    ),
    "demo": (
        "the whole pipeline, a bootstrapped CLIP and a raw-vs-curated training comparison"
        " on a synthetic web served on 127.0.0.1",
        _demo,
    ),
}
_TAKES_INPUT = {s.name for s in STAGES if s.needs is None} | {"run"}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="curate", description=__doc__)
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True)
    stage_names = {s.name for s in STAGES}
    for name, (help_text, _) in COMMANDS.items():
        p = sub.add_parser(name, help=help_text)
        if name in _TAKES_INPUT:
            p.add_argument("--input", required=True, help="parquet file, folder, glob or URL")
        if name in stage_names:
            p.add_argument(
                "--force",
                action="store_true",
                help="redo this stage even if complete (and so every later stage)",
            )
        if name == "train":
            p.add_argument("--shards", required=True, help="shard folder or brace pattern")
            p.add_argument("--output", required=True, type=Path, help="checkpoints and metrics")
        elif name == "compare":
            p.add_argument("--run-dir", required=True, type=Path, help="the run directory")
            p.add_argument(
                "--selections",
                nargs="+",
                required=True,
                metavar="NAME=SPEC",
                help="SPEC: raw, run, or select rules and balance joined by +"
                " (e.g. clip=clip_score clip_img=clip_score+image_based)",
            )
        elif name == "demo":
            p.add_argument(
                "--run-dir", type=Path, default=Path("runs/demo"), help="the run directory"
            )
            p.add_argument("--pairs", type=int, help="size of the synthetic web (default 8000)")
            p.add_argument("--seed", type=int, default=0, help="seed of the synthetic web")
            p.add_argument(
                "--eval-per-class",
                type=int,
                help="clean held-out images per class for the zero-shot comparison and caption"
                " retrieval (default 104)",
            )
            p.add_argument(
                "--port",
                type=int,
                help="loopback port of the demo's image server (default 28761; 0: any free"
                " port). The uids hash the URL, so runs on one port reproduce each other",
            )
        else:
            p.add_argument(
                "--run-dir", required=True, help="the run directory: a path or a URL (s3://...)"
            )
        p.add_argument("--config", type=Path, help="YAML config file")
        p.add_argument(
            "--set",
            dest="overrides",
            action="append",
            default=[],
            metavar="SECTION.KEY=VALUE",
            help="override one setting (repeatable), e.g. --set ingest.min_words=3",
        )
    return parser


# Commands that only read: they take no lock, so `status` works while a run is going on.
_READ_ONLY = frozenset({"status"})


def _writer_lock(
    args: argparse.Namespace, argv: Sequence[str] | None
) -> contextlib.AbstractContextManager[None]:
    """The lock of the folder this command writes: the run directory, or train's --output."""
    if args.command in _READ_ONLY:
        return contextlib.nullcontext()
    # Under torchrun every rank runs this command: the job holds the lock through rank 0.
    if args.command == "train" and os.environ.get("RANK", "0") != "0":
        return contextlib.nullcontext()
    from pipeline.run_lock import run_dir_lock

    target = args.output if args.command == "train" else args.run_dir
    words = sys.argv[1:] if argv is None else list(argv)
    return run_dir_lock(target, " ".join(["curate", *words])[:300])


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of `curate` and `python -m pipeline`."""
    parser = build_parser()
    args = parser.parse_args(argv)
    from pipeline.logs import setup_logging

    setup_logging(args.verbose)
    try:
        config = load_config(args.config, args.overrides)
        with _writer_lock(args, argv):
            COMMANDS[args.command][1](args, config)
    except InputError as exc:
        print(f"curate {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except Exception:  # the process boundary: any other failure is logged with its traceback
        log.exception("curate %s failed", args.command)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
