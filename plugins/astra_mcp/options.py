"""Options of the MCP components (TOML tables under a component choice)."""

from __future__ import annotations

import re
from typing import Any, Literal
from urllib.parse import urlsplit

import attrs

from astra_core.errors import ConfigError
from astra_core.options import at_least, option, structure_options
from astra_mcp.endpoint import REFERENCE

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


# headers whose value is a credential: it must come from the environment, never the config
SECRET_HEADER = re.compile(r"authorization|cookie|token|secret|key|password|auth", re.I)


def _headers(_: Any, attribute: attrs.Attribute, value: dict[str, str]) -> None:
    for name, text in value.items():
        if SECRET_HEADER.search(name) and not REFERENCE.search(text):
            raise ValueError(
                f"{attribute.name}.{name} holds a literal value: a credential written here would "
                f"be copied into records and manifests. Take it from the environment, e.g. "
                f'{name} = "Bearer ${{MCP_TOKEN}}" with MCP_TOKEN set when ASTRA runs'
            )


@attrs.frozen
class McpServerConfig:
    """One MCP server (a table in ``servers``): started over stdio (``command``) or reached
    over HTTP (``url``)."""

    name: str = option(
        "the server's name (its title in the data)", attrs.NOTHING, validator=_server_name
    )
    command: tuple[str, ...] | None = option(
        'program and arguments, e.g. ["python", "-m", "mcp_server_time"]; the program is looked '
        "up on PATH (give command or url)",
        None,
    )
    url: str | None = option(
        "URL of a server reached over HTTP, e.g. https://mcp.example.com/mcp; ${NAME} is "
        "filled from ASTRA's environment when connecting (give command or url)",
        None,
    )
    transport: Literal["streamable-http", "sse"] = option(
        "HTTP transport of a url server: streamable-http (the current MCP transport) or sse "
        "(the older HTTP+SSE one)",
        "streamable-http",
    )
    headers: dict[str, str] = attrs.field(
        factory=dict,
        validator=_headers,
        metadata={
            "help": "HTTP headers sent to a url server; ${NAME} takes NAME from ASTRA's "
            "environment when connecting, and a credential header (Authorization, *token*, "
            "*key*...) must use it, so secrets stay out of configs and records"
        },
    )
    env: dict[str, str] = attrs.field(
        factory=dict,
        metadata={
            "help": "extra environment variables for a command server; ${NAME} takes NAME from "
            "ASTRA's own environment when the server starts (so secrets stay out of configs "
            "and records)"
        },
    )
    cwd: str | None = option(
        "working directory of a command server; relative paths start at the config file's folder",
        None,
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

    def __attrs_post_init__(self) -> None:
        if self.url is None:
            if self.command is None:
                raise ValueError(
                    f"server {self.name!r}: give command (a server started over stdio) or url "
                    "(a server reached over HTTP)"
                )
            _command(None, attrs.fields(McpServerConfig).command, self.command)
            if self.headers:
                raise ValueError(f"server {self.name!r}: headers need a url server")
            return
        if self.command is not None:
            raise ValueError(f"server {self.name!r}: give command or url, not both")
        if self.env or self.cwd is not None:
            raise ValueError(
                f"server {self.name!r}: env and cwd are for servers started with command; a url "
                "server gets its values through headers"
            )
        if urlsplit(self.url).scheme not in ("http", "https") or not urlsplit(self.url).netloc:
            raise ValueError(f"server {self.name!r}: url must be an http(s) URL, got {self.url!r}")


@attrs.frozen
class McpSourceOptions:
    """Options of the ``mcp`` tool-graph source (also registered as ``mcp-stdio``)."""

    # plain tables (checked against McpServerConfig): options stay plain data in manifests
    servers: tuple[dict[str, Any], ...] = option(
        "the MCP servers: tables with name, command (stdio) or url (HTTP), and optional env, "
        "cwd, transport, headers, domain, description, scenarios",
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
        "limit on starting (or connecting to) a server and listing its tools; past it the "
        "server is dropped",
        60.0,
        validator=at_least(0.1),
    )
    connect_attempts: int = option(
        "tries to reach a url server that refuses or drops the connection, or answers 5xx",
        3,
        validator=at_least(1),
    )
    retry_backoff_s: float = option(
        "wait before the second try to reach a url server; doubled before each later one",
        0.5,
        validator=at_least(0.0),
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
        "limit on starting a server (process start, or HTTP connection, and MCP initialize)",
        60.0,
        validator=at_least(0.1),
    )
    max_starts: int = option(
        "times a stdio server is (re)started after its connection broke before calls to it "
        "fail fast",
        3,
        validator=at_least(1),
    )
    connect_attempts: int = option(
        "tries to reach a url server each time a session is needed (a refused or dropped "
        "connection, a 5xx answer); then that call fails and the next call tries again",
        3,
        validator=at_least(1),
    )
    retry_backoff_s: float = option(
        "wait before the second try to reach a url server; doubled before each later one",
        0.5,
        validator=at_least(0.0),
    )
    max_output_chars: int = option(
        "tool outputs longer than this are cut (with a note)", 8000, validator=at_least(100)
    )
