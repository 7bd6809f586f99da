"""Options of the MCP components (TOML tables under a component choice)."""

from __future__ import annotations

import re
from typing import Any

import attrs

from astra_core.errors import ConfigError
from astra_core.options import at_least, option, structure_options

SERVER_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


def _command(_: Any, attribute: attrs.Attribute, value: tuple[str, ...]) -> None:
    if not value or not value[0].strip():
        raise ValueError(
            f'{attribute.name} must name a program and its arguments, e.g. ["python", "-m", '
            f'"mcp_server_time"], got {list(value)!r}'
        )


def _server_name(_: Any, attribute: attrs.Attribute, value: str) -> None:
    if not SERVER_NAME.match(value):
        raise ValueError(
            f"{attribute.name} {value!r} must start with a letter or digit and hold only letters, "
            "digits, '_', '.' or '-' (at most 64)"
        )


@attrs.frozen
class McpServerConfig:
    """One MCP server to start over stdio (a table in ``servers``)."""

    name: str = option(
        "the server's name (its title in the data)", attrs.NOTHING, validator=_server_name
    )
    command: tuple[str, ...] = option(
        'program and arguments, e.g. ["python", "-m", "mcp_server_time"]; the program is looked '
        "up on PATH",
        attrs.NOTHING,
        validator=_command,
    )
    env: dict[str, str] = attrs.field(
        factory=dict,
        metadata={
            "help": "extra environment variables for the server; ${NAME} takes NAME from "
            "ASTRA's own environment when the server starts (so secrets stay out of configs "
            "and records)"
        },
    )
    cwd: str | None = option(
        "working directory of the server; relative paths start at the config file's folder", None
    )
    domain: str = option("domain of the server's tools (e.g. time, git, databases)", "")
    description: str = option(
        "what the server is for; unset: the instructions the server sends, else its name", ""
    )
    scenarios: tuple[dict[str, Any], ...] = option(
        "sets of values a user of the server would state (a repository path, a timezone, an SQL "
        'query); keys are parameter names, or "tool.parameter" for one tool only',
        (),
    )


@attrs.frozen
class McpStdioSourceOptions:
    """Options of the ``mcp-stdio`` tool-graph source."""

    # plain tables (checked against McpServerConfig): options stay plain data in manifests
    servers: tuple[dict[str, Any], ...] = option(
        "the MCP servers to start: tables with name, command, and optional env, cwd, domain, "
        "description, scenarios",
        attrs.NOTHING,
    )
    min_tools: int = option(
        "servers with fewer usable tools are dropped (the paper uses 3; mcp-server-time has 2)",
        3,
        validator=at_least(1),
    )
    min_description_words: int = option(
        "tools whose description has fewer words are dropped as vague (the catalog files use "
        "3; live servers often say 'Switches branches', so 0 keeps every described tool)",
        0,
        validator=at_least(0),
    )
    graph_builder: str = option(
        "how edges are found: a registered tool_graph_builder (schema-flow: an output of A fills "
        "a required parameter of B)",
        "schema-flow",
    )
    min_edge_score: float = option(
        "smallest name/type/description match score that makes an edge (0-1)",
        0.5,
        validator=at_least(0.0),
    )
    start_timeout_s: float = option(
        "limit on starting a server and listing its tools; past it the server is dropped",
        60.0,
        validator=at_least(0.1),
    )
    max_parallel_starts: int = option(
        "servers started at once to list their tools", 4, validator=at_least(1)
    )

    def server_configs(self) -> tuple[McpServerConfig, ...]:
        """The ``servers`` tables as checked ``McpServerConfig`` objects."""
        configs = []
        for index, table in enumerate(self.servers):
            try:
                configs.append(structure_options(McpServerConfig, table, key=f"servers[{index}]"))
            except ConfigError as exc:
                raise ValueError(str(exc)) from None
        return tuple(configs)

    def __attrs_post_init__(self) -> None:
        names = [s.name for s in self.server_configs()]
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise ValueError(f"servers: the name {twice[0]!r} is used by more than one server")
        if not self.servers:
            raise ValueError("servers: list at least one MCP server")


@attrs.frozen
class McpExecutorOptions:
    """Options of the ``mcp`` tool executor."""

    call_timeout_s: float = option(
        "limit on one tool call; past it the call is an error observation",
        30.0,
        validator=at_least(0.1),
    )
    start_timeout_s: float = option(
        "limit on starting a server (process start and MCP initialize)",
        60.0,
        validator=at_least(0.1),
    )
    max_starts: int = option(
        "times a server is (re)started after its connection broke before calls to it fail fast",
        3,
        validator=at_least(1),
    )
    max_output_chars: int = option(
        "tool outputs longer than this are cut (with a note)", 8000, validator=at_least(100)
    )
