"""What the MCP components need before a run starts: the mcp SDK, and for the ``mcp`` source
each stdio server's program (on PATH, or an executable file) and the variables its ``env``
refers to, and each url server's variables (in its url and headers). A url server is not
probed here: one that is down is a failed record at run time, and the run goes on."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from astra_core.preflight import Problem, missing_module
from astra_mcp.endpoint import EndpointError, HttpLaunch, StdioLaunch
from astra_mcp.options import McpSourceOptions

SDK_FIX = "pip install 'astra-agents[mcp]'"
ENV_FIX = "export the variable before the run (its value stays out of the config)"


def sdk_problems(options: Any, base_dir: Path) -> list[Problem]:
    """The mcp SDK (client side) is not installed."""
    return missing_module("mcp", fix=SDK_FIX, why="the MCP client")


def source_problems(options: McpSourceOptions, base_dir: Path) -> list[Problem]:
    """The SDK, and every server whose program or environment is missing."""
    problems = sdk_problems(options, base_dir)
    for index, server in enumerate(options.server_configs()):
        where = f"MCP server {server.name!r} (servers[{index}])"
        if server.url is not None:
            http = HttpLaunch(server.url, server.transport, tuple(sorted(server.headers.items())))
            try:
                http.connection()
            except EndpointError as exc:
                problems.append(Problem(f"cannot reach {where}: {exc}", ENV_FIX))
            continue
        cwd = None if server.cwd is None else str((base_dir / server.cwd).resolve())
        launch = StdioLaunch(tuple(server.command), tuple(sorted(server.env.items())), cwd)
        try:
            launch.expanded_env()
        except EndpointError as exc:
            problems.append(Problem(f"cannot start {where}: {exc}", ENV_FIX))
            continue
        try:
            launch.program()
        except EndpointError as exc:
            fix = (
                f"install {server.command[0]!r}, or give its full path as the first word of "
                f"servers[{index}].command"
            )
            problems.append(Problem(f"cannot start {where}: {exc}", fix))
    return problems
