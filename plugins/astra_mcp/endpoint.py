"""The ``mcp-stdio`` endpoint of a ``ToolServer``: what is stored, and how it becomes a process.

An endpoint is plain data kept in the record::

    {"kind": "mcp-stdio", "command": ["python", "-m", "mcp_server_time"], "env": {...},
     "cwd": "/abs/path" | None, "returns": {...}, "annotations": {...}, "scenarios": [...]}

``env`` values may hold ``${NAME}`` references; they are expanded from ASTRA's environment only
when the process starts, so a secret never lands in a record.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Mapping
from typing import Any

import attrs

from astra_core.records import ToolServer, canonical_json

ENDPOINT_KIND = "mcp-stdio"
REFERENCE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


class EndpointError(Exception):
    """An endpoint that cannot be started as it is (not mcp-stdio, a missing variable...)."""


@attrs.frozen
class StdioLaunch:
    """How to start one server: the program, its arguments, extra environment and folder."""

    command: tuple[str, ...]
    env: tuple[tuple[str, str], ...] = ()
    cwd: str | None = None

    @property
    def key(self) -> str:
        """Identifies a server process: calls with the same key share one live session."""
        return canonical_json([list(self.command), dict(self.env), self.cwd])

    @property
    def display(self) -> str:
        return " ".join(self.command)

    def expanded_env(self) -> dict[str, str]:
        """``env`` with ``${NAME}`` references filled from this process's environment."""
        out = {}
        for name, value in self.env:
            missing = [v for v in REFERENCE.findall(value) if v not in os.environ]
            if missing:
                raise EndpointError(
                    f"env {name}={value!r} refers to ${{{missing[0]}}}, which is not set in "
                    "ASTRA's environment"
                )
            out[name] = REFERENCE.sub(lambda m: os.environ[m.group(1)], value)
        return out

    def program(self) -> str:
        """The program as it will run; an error naming the command when it cannot be found."""
        program = self.command[0]
        if os.sep in program or (os.altsep and os.altsep in program):
            path = (
                program
                if os.path.isabs(program) or self.cwd is None
                else os.path.join(self.cwd, program)
            )
            if not os.access(path, os.X_OK):
                raise EndpointError(f"{program!r} is not an executable file")
            return program
        env = self.expanded_env()
        found = shutil.which(program, path=env.get("PATH", os.environ.get("PATH")))
        if found is None:
            raise EndpointError(f"program {program!r} is not on PATH")
        return found


def endpoint_of(
    command: tuple[str, ...] | list[str],
    env: Mapping[str, str] | None = None,
    cwd: str | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """The endpoint dict stored in a ``ToolServer``."""
    return {
        "kind": ENDPOINT_KIND,
        "command": list(command),
        "env": dict(env or {}),
        "cwd": cwd,
        **extra,
    }


def launch_of(server: ToolServer) -> StdioLaunch:
    """How to start ``server``; ``EndpointError`` when its endpoint is not an MCP stdio one."""
    endpoint = server.endpoint or {}
    if endpoint.get("kind") != ENDPOINT_KIND:
        raise EndpointError(
            f"server {server.title!r} ({server.id}) has endpoint kind "
            f"{endpoint.get('kind')!r}, not {ENDPOINT_KIND!r}: the mcp executor only calls servers "
            "from the mcp-stdio source"
        )
    return launch_from(endpoint, where=f"server {server.title!r}")


def launch_from(endpoint: Mapping[str, Any], *, where: str = "endpoint") -> StdioLaunch:
    command = endpoint.get("command")
    if (
        not isinstance(command, (list, tuple))
        or not command
        or not all(isinstance(c, str) for c in command)
    ):
        raise EndpointError(f"{where}: endpoint command must be a list of strings, got {command!r}")
    env = endpoint.get("env") or {}
    if not isinstance(env, Mapping) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in env.items()
    ):
        raise EndpointError(f"{where}: endpoint env must map names to strings, got {env!r}")
    cwd = endpoint.get("cwd")
    if cwd is not None and not isinstance(cwd, str):
        raise EndpointError(f"{where}: endpoint cwd must be a path, got {cwd!r}")
    return StdioLaunch(tuple(command), tuple(sorted(env.items())), cwd)
