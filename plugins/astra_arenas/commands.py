"""The ``astra arenas`` command: the authors' released RL rows in and out of a stage directory.

::

    astra arenas import ROWS.jsonl|.json|.parquet [...] --out DIR
    astra arenas export STAGE_DIR --out rows.jsonl
"""

from __future__ import annotations

import argparse
from typing import Any


def _fraction(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number in [0, 1], got {text!r}") from None
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError(f"expected a number in [0, 1], got {value}")
    return value


def cmd_import(args: argparse.Namespace) -> int:
    from astra_arenas.rl_rows import import_rl_rows

    summary = import_rl_rows(
        args.files,
        args.out,
        holdout_fraction=args.holdout_fraction,
        skip_bad=args.skip_bad,
        keep_origin=args.keep_origin,
        limit=args.limit,
    )
    if not args.quiet:
        print(
            f"read {summary.read} rows: {summary.written} new arenas "
            f"({summary.existing} already there), {summary.bad_rows} bad rows skipped "
            f"-> {summary.out_dir}"
        )
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from astra_arenas.rl_rows import export_rl_rows

    summary = export_rl_rows(args.source, args.out, with_astra=not args.bare, split=args.split)
    if not args.quiet:
        print(f"exported {summary.written} arenas as RL rows -> {summary.out_path}")
        if summary.skipped:
            print(
                f"  left out {summary.skipped} the format cannot carry "
                f"(first: {summary.first_skipped})"
            )
    return 0


def add_arenas_command(subparsers: Any) -> None:
    from astra_core.cli import common_options

    parents = [common_options()]
    parser = subparsers.add_parser(
        "arenas",
        parents=parents,
        help="import and export arenas in the authors' released RL format",
        description="Import the authors' released RL rows (ASTRA-RL-1k: prompt, tool_schema, "
        "tool_dict, sub_qa_dict) into a stage directory that train-rl and eval read, and "
        "export a stage's arenas as such rows.",
    )
    sub = parser.add_subparsers(dest="arenas_command", metavar="WHAT", required=True)

    p = sub.add_parser(
        "import",
        parents=parents,
        help="write the arenas of released RL rows into a stage directory",
        description="One arena per row, its tool code marked LLM-written (it runs only in an "
        "isolating sandbox). Point --out at RUN/synth-arenas for train-rl and eval to read it "
        "(or name the directory in their `arenas` option).",
    )
    p.add_argument("files", nargs="+", metavar="ROWS", help="JSONL, JSON or Parquet files")
    p.add_argument("--out", required=True, help="stage directory to write (resumed if it exists)")
    p.add_argument(
        "--holdout-fraction",
        type=_fraction,
        default=0.2,
        help="share of the arenas kept out of training for eval, by a hash of each arena's id "
        "as synth-arenas splits (default 0.2; an exported arena keeps its side)",
    )
    p.add_argument(
        "--skip-bad",
        action="store_true",
        help="log a row that cannot become an arena in dropped.jsonl and go on (default: stop "
        "with an error naming the file and row)",
    )
    p.add_argument(
        "--keep-origin",
        action="store_true",
        help="keep the tool-code origin an `astra` field records (re-importing your own "
        "export exactly) instead of marking every arena's code LLM-written",
    )
    p.add_argument("--limit", type=int, default=None, help="read at most this many rows")
    p.set_defaults(func=cmd_import)

    p = sub.add_parser(
        "export",
        parents=parents,
        help="write a stage's arenas as released RL rows",
        description="One row per arena: prompt, tool_schema, tool_dict, sub_qa_dict (JSON "
        "strings, as released) plus an `astra` field with what the format does not hold "
        "(sub-questions, gold calls, answer, split), which makes the way back exact.",
    )
    p.add_argument("source", metavar="STAGE_DIR", help="stage directory or JSONL of arenas")
    p.add_argument("--out", required=True, help="file to write (.jsonl, .json or .parquet)")
    p.add_argument(
        "--bare",
        action="store_true",
        help="leave out the `astra` field: the released four fields only",
    )
    p.add_argument(
        "--split",
        choices=("all", "train", "holdout"),
        default="all",
        help="which arenas to export (default all)",
    )
    p.set_defaults(func=cmd_export)
