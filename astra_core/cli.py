"""The ``astra`` command."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from astra_core import __version__
from astra_core.errors import AstraError, ConfigError

__all__ = ["build_parser", "common_options", "main"]

log = logging.getLogger("astra")


def _shard(value: str) -> tuple[int, int]:
    try:
        index, count = (int(x) for x in value.split("/"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"--shard takes i/n (e.g. 0/4), got {value!r}") from None
    if count < 1 or not 0 <= index < count:
        raise argparse.ArgumentTypeError(f"--shard {value}: need 0 <= i < n")
    return index, count


def common_options() -> argparse.ArgumentParser:
    """The ``-v``/``-q``/``--plugin``/``--disable-plugin`` options, as a parent parser for
    plugin sub-commands."""
    # Accepted before and after the sub-command; SUPPRESS keeps a later default from
    # overwriting an earlier value.
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "-v",
        "--verbose",
        action="count",
        default=argparse.SUPPRESS,
        help="more log output (-vv for debug)",
    )
    common.add_argument(
        "-q",
        "--quiet",
        action="store_true",
        default=argparse.SUPPRESS,
        help="no progress bars, only warnings and errors",
    )
    common.add_argument(
        "--plugin",
        action="append",
        metavar="FILE",
        default=argparse.SUPPRESS,
        help="load a one-file plugin (repeatable; also ASTRA_PLUGINS)",
    )
    common.add_argument(
        "--disable-plugin",
        action="append",
        metavar="NAME",
        default=argparse.SUPPRESS,
        help="block a plugin by name (repeatable; also ASTRA_DISABLE_PLUGINS)",
    )
    return common


def _run_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("config", help="TOML run config")
    parser.add_argument("--out", required=True, help="output directory (resumed if it exists)")
    parser.add_argument(
        "--shard",
        type=_shard,
        default=(0, 1),
        metavar="I/N",
        help="process only shard I of N of the work (merge with `astra data merge`)",
    )
    parser.add_argument(
        "--no-preflight",
        dest="preflight",
        action="store_false",
        help="skip the checks, before the first stage, that every component finds what it needs "
        "(programs, packages, endpoints)",
    )


def _plugins_from(args: argparse.Namespace, config: Any = None) -> Any:
    from astra_core.plugins import load_plugins

    disable = list(getattr(args, "disable_plugin", []) or [])
    files = list(getattr(args, "plugin", []) or [])
    if config is not None:
        disable += list(config.plugins.disable)
        files = [*config.plugin_files(), *files]
    return load_plugins(disable=disable, files=files)


def cmd_run(args: argparse.Namespace) -> int:
    from astra_core.config import load_config
    from astra_core.pipeline import run

    config = load_config(args.config)
    stages = getattr(args, "stages", None)
    if isinstance(stages, str):
        stages = [s.strip() for s in stages.split(",") if s.strip()]
    plugins = _plugins_from(args, config)
    report = run(
        config,
        args.out,
        stages=stages,
        plugins=plugins,
        quiet=args.quiet,
        shard=args.shard,
        preflight=args.preflight,
    )
    if not args.quiet:
        for s in report.stages:
            print(f"{s.stage}: {s.status}, {report.made(s)} in {s.duration_s:.1f}s -> {s.out_dir}")
        print(f"report: {Path(args.out) / 'report.md'}")
    return 0


def _one_stage(stage: str) -> Any:
    def command(args: argparse.Namespace) -> int:
        args.stages = [stage]
        return cmd_run(args)

    return command


def cmd_plugins(args: argparse.Namespace) -> int:
    plugins = _plugins_from(args)
    infos = plugins.describe()
    if args.json:
        print(json.dumps([i.to_dict() for i in infos], indent=2))
        return 0
    rows = [("name", "distribution", "version", "provides", "hooks")]
    for i in infos:
        provides = "; ".join(f"{k}: {', '.join(v)}" for k, v in sorted(i.provides.items())) or "-"
        hooks = ", ".join(h for h in i.hooks if not h.startswith("astra_register_")) or "-"
        rows.append((i.name, i.distribution or "(local)", i.version or "-", provides, hooks))
    widths = [max(len(r[c]) for r in rows) for c in range(4)]
    for r in rows:
        print("  ".join(r[c].ljust(widths[c]) for c in range(4)) + "  " + r[4])
    if args.verbose_options:
        for info in sorted(plugins.registry.all(), key=lambda x: (x.kind, x.name)):
            from astra_core.options import describe_options

            print(f"\n{info.kind} {info.name!r} ({info.plugin}): {info.description}")
            for opt in describe_options(info.options):
                print(f"  {opt['name']}: {opt['type']} = {opt['default']!r}  {opt['help']}")
    return 0


def cmd_config_check(args: argparse.Namespace) -> int:
    from astra_core.config import load_config
    from astra_core.pipeline import prepare
    from astra_core.preflight import check_preflight, problem_line

    config = load_config(args.file)
    config, plugins = prepare(config, plugins=_plugins_from(args, config))
    for problem in check_preflight(config, plugins.registry):
        print(f"astra: warning: {problem_line(problem)}", file=sys.stderr)
    if not args.quiet:
        print(f"{args.file}: ok ({', '.join(config.stage_order) or 'no stages'})")
    return 0


def cmd_data_merge(args: argparse.Namespace) -> int:
    from astra_core.records import record_type
    from astra_core.store import merge_stores

    written = merge_stores(
        [Path(s) for s in args.sources], Path(args.target), record_type(args.kind)
    )
    if not args.quiet:
        print(f"merged {written} new {args.kind} records into {args.target}")
    return 0


def build_parser(plugins_hook: Any = None) -> argparse.ArgumentParser:
    """The ``astra`` argument parser, with the sub-commands plugins add."""
    common = common_options()
    parser = argparse.ArgumentParser(
        prog="astra",
        parents=[common],
        description="Synthesize verified tool-use trajectories and RL arenas, and train agents.",
    )
    parser.add_argument("--version", action="version", version=f"astra {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser("run", parents=[common], help="run the stages a config names")
    _run_args(p)
    p.add_argument("--stages", help="comma-separated subset, e.g. synth-trajectories,synth-arenas")
    p.set_defaults(func=cmd_run)

    synth = sub.add_parser("synth", parents=[common], help="run one synthesis stage")
    synth_sub = synth.add_subparsers(dest="what", metavar="WHAT", required=True)
    for what, stage in (("trajectories", "synth-trajectories"), ("arenas", "synth-arenas")):
        sp = synth_sub.add_parser(what, parents=[common], help=f"run the {stage} stage")
        _run_args(sp)
        sp.set_defaults(func=_one_stage(stage))
    train = sub.add_parser("train", parents=[common], help="run one training stage")
    train_sub = train.add_subparsers(dest="what", metavar="WHAT", required=True)
    for what, stage in (("sft", "train-sft"), ("rl", "train-rl")):
        sp = train_sub.add_parser(what, parents=[common], help=f"run the {stage} stage")
        _run_args(sp)
        sp.set_defaults(func=_one_stage(stage))
    ev = sub.add_parser("eval", parents=[common], help="run the eval stage")
    _run_args(ev)
    ev.set_defaults(func=_one_stage("eval"))

    p = sub.add_parser("plugins", parents=[common], help="list installed plugins")
    p.add_argument("--json", action="store_true", help="print a JSON list")
    p.add_argument(
        "--options",
        dest="verbose_options",
        action="store_true",
        help="also list every component with its options",
    )
    p.set_defaults(func=cmd_plugins)

    cfg = sub.add_parser("config", parents=[common], help="work with run configs")
    cfg_sub = cfg.add_subparsers(dest="what", metavar="WHAT", required=True)
    p = cfg_sub.add_parser(
        "check",
        parents=[common],
        help="validate a config against the plugins, and check that this machine has what its "
        "components need (programs, packages, endpoints)",
    )
    p.add_argument("file")
    p.set_defaults(func=cmd_config_check)

    data = sub.add_parser("data", parents=[common], help="work with datasets")
    data_sub = data.add_subparsers(dest="what", metavar="WHAT", required=True)
    p = data_sub.add_parser(
        "merge", parents=[common], help="merge shard outputs without duplicates"
    )
    p.add_argument("--kind", default="trajectory", help="record kind (trajectory, arena, ...)")
    p.add_argument("target", help="stage directory to merge into")
    p.add_argument("sources", nargs="+", help="stage directories of the shards")
    p.set_defaults(func=cmd_data_merge)

    if plugins_hook is not None:
        plugins_hook.astra_add_commands(subparsers=sub)
    return parser


def _setup_logging(verbose: int, quiet: bool) -> None:
    level = (
        logging.WARNING
        if quiet
        else (logging.DEBUG if verbose >= 2 else logging.INFO if verbose else logging.WARNING)
    )
    logging.basicConfig(
        level=level, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr
    )
    logging.getLogger("astra").setLevel(level if verbose or quiet else logging.INFO)
    if quiet:
        # transformers and huggingface_hub read this when first imported (weight loading bars)
        os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")


def _pre_scan(argv: Sequence[str]) -> argparse.Namespace:
    ns, _ = common_options().parse_known_args(list(argv))
    return ns


def main(argv: Sequence[str] | None = None) -> int:
    """The ``astra`` command: run it with ``argv`` and return its exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    pre = _pre_scan(argv)
    try:
        # Plugins may add sub-commands, so they load before the full parse.
        plugins = _plugins_from(pre)
    except AstraError as exc:
        print(f"astra: error: {exc}", file=sys.stderr)
        return 2
    parser = build_parser(plugins.hook)
    args = parser.parse_args(argv)
    args.verbose = getattr(args, "verbose", 0)
    args.quiet = getattr(args, "quiet", False)
    _setup_logging(args.verbose, args.quiet)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except ConfigError as exc:
        print(f"astra: error: {exc}", file=sys.stderr)
        return 2
    except AstraError as exc:
        print(f"astra: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("astra: interrupted; run the same command again to resume", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
