"""Hook implementations of the bundled sandbox plugin: the ``bubblewrap`` and ``subprocess``
sandboxes and the ``astra sandbox run`` command."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from astra_core import hookimpl
from astra_core.errors import AstraError
from astra_core.registry import Registrar
from astra_sandbox.options import SandboxOptions, SubprocessOptions
from astra_sandbox.preflight import bubblewrap_problems, python_problems
from astra_sandbox.sandbox import make_bubblewrap, make_subprocess


@hookimpl
def astra_register_sandboxes(registry: Registrar) -> None:
    registry.add(
        "bubblewrap",
        lambda options, builder: make_bubblewrap(options),
        options=SandboxOptions,
        description="No network, read-only system, private /tmp, CPU/memory/process/file/output "
        "limits and a wall clock (needs the bwrap program).",
        preflight=bubblewrap_problems,
    )
    registry.add(
        "subprocess",
        lambda options, builder: make_subprocess(options),
        options=SubprocessOptions,
        description="The same limits in a plain child process; does NOT isolate files or network, "
        "so it refuses LLM-written tool code unless allow_unisolated = true.",
        preflight=python_problems,
    )


def _option(text: str) -> tuple[str, Any]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    try:
        return key.strip(), json.loads(value)
    except ValueError:
        return key.strip(), value


def _run_command(args: argparse.Namespace) -> int:
    from astra_core.options import ComponentSpec
    from astra_core.plugins import load_plugins
    from astra_core.registry import ComponentBuilder

    plugins = load_plugins(
        disable=getattr(args, "disable_plugin", []) or [],
        files=getattr(args, "plugin", []) or [],
    )
    from astra_sandbox.launch import bubblewrap_problem

    if args.backend is None:
        problem = bubblewrap_problem()
        args.backend = "subprocess" if problem else "bubblewrap"
        if problem:  # a debugging command may fall back, but never silently
            print(
                f"astra sandbox run: {problem}; falling back to the 'subprocess' sandbox, "
                "which does not isolate (--backend picks one)",
                file=sys.stderr,
            )
    spec = ComponentSpec(args.backend, dict(args.option or []))
    sandbox = ComponentBuilder(plugins.registry).build("sandbox", spec, key="--backend")
    try:
        with open(args.file, encoding="utf-8") as fh:
            code = fh.read()
    except OSError as exc:
        raise AstraError(f"cannot read {args.file}: {exc}") from exc
    result = sandbox.run(code, timeout_s=args.timeout)
    report = {
        "backend": args.backend,
        "stdout": result.stdout,
        "stderr": result.stderr,
        "exit_code": result.exit_code,
        "limit": result.limit,
        "duration_s": result.duration_s,
    }
    print(json.dumps(report, indent=2, ensure_ascii=False))
    return 0 if result.ok else 1


@hookimpl
def astra_add_commands(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "sandbox",
        help="run code in a sandbox (to debug tools)",
        description="Run untrusted Python the way ASTRA runs tools, to see what comes back.",
    )
    sub = parser.add_subparsers(dest="sandbox_command", metavar="WHAT", required=True)
    run = sub.add_parser(
        "run",
        help="run FILE.py in a sandbox and print what came back as JSON",
        description="Run FILE.py in a sandbox and print stdout, stderr, exit_code, limit (the "
        "limit it hit, if any) and duration_s as JSON; the exit status is 0 when it ran cleanly.",
    )
    run.add_argument("file", help="a Python file")
    run.add_argument(
        "--backend",
        default=None,
        help="sandbox component name (default: bubblewrap where it works, else subprocess)",
    )
    run.add_argument("--timeout", type=float, default=None, help="wall-clock limit in seconds")
    run.add_argument(
        "--option",
        "-o",
        type=_option,
        action="append",
        metavar="KEY=VALUE",
        help="a sandbox option, e.g. -o memory_mb=256 (repeatable; VALUE is read as JSON)",
    )
    run.set_defaults(func=_run_command)
