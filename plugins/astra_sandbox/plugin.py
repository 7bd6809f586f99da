"""Hook implementations of the bundled sandbox plugin: the ``bubblewrap`` and ``subprocess``
sandboxes and the ``astra sandbox run`` command."""

from __future__ import annotations

import argparse
import json
from typing import Any

from astra_core import hookimpl
from astra_sandbox.options import SandboxOptions
from astra_sandbox.sandbox import make_bubblewrap, make_subprocess


@hookimpl
def astra_register_sandboxes(registry: Any) -> None:
    registry.add(
        "bubblewrap",
        lambda options, builder: make_bubblewrap(options),
        options=SandboxOptions,
        description="No network, read-only system, private /tmp, CPU/memory/process/file/output "
        "limits and a wall clock (needs the bwrap program).",
    )
    registry.add(
        "subprocess",
        lambda options, builder: make_subprocess(options),
        options=SandboxOptions,
        description="The same limits in a plain child process; does NOT isolate files or network.",
    )


def _run_command(args: argparse.Namespace) -> int:
    from astra_core.plugins import load_plugins
    from astra_core.registry import ComponentBuilder

    plugins = load_plugins(files=getattr(args, "plugin", []) or [])
    sandbox = ComponentBuilder(plugins.registry).build("sandbox", args.backend)
    with open(args.file, encoding="utf-8") as fh:
        code = fh.read()
    result = sandbox.run(code, timeout_s=args.timeout)
    print(
        json.dumps(
            {
                "backend": args.backend,
                "stdout": result.stdout,
                "stderr": result.stderr,
                "exit_code": result.exit_code,
                "limit": result.limit,
                "duration_s": result.duration_s,
            },
            indent=2,
        )
    )
    return 0 if result.ok else 1


@hookimpl
def astra_add_commands(subparsers: Any) -> None:
    parser = subparsers.add_parser("sandbox", help="run code in a sandbox (to debug tools)")
    sub = parser.add_subparsers(dest="sandbox_command", metavar="WHAT", required=True)
    run = sub.add_parser("run", help="run FILE.py in a sandbox and print what came back as JSON")
    run.add_argument("file", help="a Python file")
    run.add_argument(
        "--backend",
        default="bubblewrap" if _has_bwrap() else "subprocess",
        help="sandbox component (default: bubblewrap where installed)",
    )
    run.add_argument("--timeout", type=float, default=None, help="wall-clock limit in seconds")
    run.set_defaults(func=_run_command)


def _has_bwrap() -> bool:
    import shutil

    return shutil.which("bwrap") is not None
