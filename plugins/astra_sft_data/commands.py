"""The ``astra sft-data`` command: import and export the authors' SFT data, export ShareGPT,
check.

::

    astra sft-data import --format astra-sft FILE [FILE...] --out DIR
    astra sft-data export --format sharegpt|astra-sft STAGE_DIR OUT.jsonl   (or --out OUT.jsonl)
    astra sft-data check STAGE_DIR
"""

from __future__ import annotations

import argparse
import functools
import json
from typing import Any

from astra_core.errors import AstraError
from astra_sft_data.sharegpt_export import THOUGHT_CHOICES, to_sharegpt

IMPORT_FORMATS = ("astra-sft",)
EXPORT_FORMATS = ("sharegpt", "astra-sft")


def _common_options() -> list[argparse.ArgumentParser]:
    # -v/-q/--plugin/--disable-plugin are accepted after the sub-command as with core commands
    from astra_core.cli import common_options

    return [common_options()]


def cmd_import(args: argparse.Namespace) -> int:
    from astra_sft_data.astra_sft_import import import_astra_sft

    summary = import_astra_sft(
        args.files,
        args.out,
        keep_invalid=args.keep_invalid,
        keep_reasoning=not args.drop_reasoning,
        limit=args.limit,
    )
    if not args.quiet:
        dropped = sum(summary.dropped.values())
        print(
            f"read {summary.read} rows: {summary.written} new trajectories "
            f"({summary.existing} already there), {dropped} dropped -> {summary.out_dir}"
        )
        for reason, count in summary.dropped.items():
            print(f"  dropped {count}: {reason}")
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from astra_sft_data.trajectory_files import export_rows, read_trajectories

    out = args.out_option or args.out
    if not out or (args.out_option and args.out):
        raise AstraError("give the file to write once: OUT.jsonl or --out OUT.jsonl")
    convert: Any
    if args.format == "astra-sft":
        from astra_sft_data.astra_sft_export import trajectory_to_row

        convert = functools.partial(trajectory_to_row, with_astra=not args.bare)
    else:
        convert = functools.partial(to_sharegpt, thoughts=args.thoughts)
    summary = export_rows(read_trajectories(args.source), out, convert)
    if not args.quiet:
        print(f"exported {summary.exported} trajectories as {args.format} -> {summary.out_path}")
        if summary.skipped_failed:
            print(f"  skipped {summary.skipped_failed} with status 'failed'")
        if summary.skipped_invalid:
            print(
                f"  skipped {summary.skipped_invalid} invalid (first: {summary.first_problem}); "
                f"`astra sft-data check {args.source}` lists them"
            )
    return 0


def cmd_check(args: argparse.Namespace) -> int:
    from astra_sft_data.trajectory_files import check_dataset, read_trajectories

    report = check_dataset(read_trajectories(args.source))
    if args.json:
        print(json.dumps(report.to_dict(args.show), indent=2))
    else:
        statuses = ", ".join(f"{n} {s}" for s, n in sorted(report.statuses.items())) or "none"
        print(
            f"{args.source}: {report.trajectories} trajectories ({statuses}), "
            f"{report.messages} messages, {report.tool_calls} tool calls of "
            f"{len(report.tools_called)} distinct tools"
        )
        if not report.invalid:
            print("problems: none")
        else:
            kinds = ", ".join(f"{n} {k}" for k, n in report.kinds().items())
            print(f"problems in {report.invalid} of {report.trajectories} trajectories: {kinds}")
            for record_id, problems in list(report.problems.items())[: args.show]:
                for problem in problems:
                    print(f"  {record_id}: {problem}")
            if report.invalid > args.show:
                print(f"  ... and {report.invalid - args.show} more trajectories (--show N)")
    return 1 if report.invalid or report.trajectories == 0 else 0


def add_sft_data_command(subparsers: Any) -> None:
    parents = _common_options()
    parser = subparsers.add_parser(
        "sft-data",
        parents=parents,
        help="import, export and check SFT trajectory datasets",
        description="Import and export the authors' released SFT data, export trajectories to "
        "ShareGPT, and check that a dataset is fit for training.",
    )
    sub = parser.add_subparsers(dest="sft_data_command", metavar="WHAT", required=True)

    p = sub.add_parser(
        "import",
        parents=parents,
        help="convert the authors' SFT rows (ASTRA-SFT-1k) into a trajectory dataset",
    )
    p.add_argument("--format", choices=IMPORT_FORMATS, default="astra-sft", help="input format")
    p.add_argument("files", nargs="+", metavar="FILE", help="JSONL, JSON or Parquet files")
    p.add_argument("--out", required=True, help="dataset directory to write (resumed if it exists)")
    p.add_argument(
        "--keep-invalid",
        action="store_true",
        help="keep conversations that fail the checks of `astra sft-data check` (dropped and "
        "counted by default)",
    )
    p.add_argument(
        "--drop-reasoning",
        action="store_true",
        help="leave out the assistants' reasoning_content (kept by default)",
    )
    p.add_argument("--limit", type=int, default=None, help="read at most this many rows")
    p.set_defaults(func=cmd_import)

    p = sub.add_parser(
        "export", parents=parents, help="write a trajectory dataset in another format"
    )
    p.add_argument(
        "--format",
        choices=EXPORT_FORMATS,
        default="sharegpt",
        help="output format: sharegpt (LLaMA-Factory) or astra-sft (the authors' released "
        "ASTRA-SFT-1k rows)",
    )
    p.add_argument(
        "--thoughts",
        choices=THOUGHT_CHOICES,
        default="drop",
        help="sharegpt: what becomes of an assistant's text next to its tool calls and of "
        "reasoning_content: drop it, or keep it as a <think>...</think> prefix",
    )
    p.add_argument(
        "--bare",
        action="store_true",
        help="astra-sft: leave out the `astra` field (the record's id, scores, metadata and "
        "call ids) that makes a re-import give back the same trajectories",
    )
    p.add_argument("source", metavar="STAGE_DIR", help="stage directory or trajectory JSONL")
    p.add_argument("out", metavar="OUT.jsonl", nargs="?", help="file to write (replaced)")
    p.add_argument("--out", dest="out_option", metavar="OUT.jsonl", help="the same, as an option")
    p.set_defaults(func=cmd_export)

    p = sub.add_parser(
        "check",
        parents=parents,
        help="count a dataset and list its problems (exit 1 when there are any)",
    )
    p.add_argument("source", metavar="STAGE_DIR", help="stage directory or trajectory JSONL")
    p.add_argument("--show", type=int, default=20, help="trajectories whose problems to print")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=cmd_check)
