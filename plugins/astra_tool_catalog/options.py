"""Options of the catalog components (TOML tables under a component choice)."""

from __future__ import annotations

from typing import Any

import attrs


def _opt(text: str, default: Any, **kwargs: Any) -> Any:
    return attrs.field(default=default, metadata={"help": text}, **kwargs)


def _at_least(minimum: float) -> Any:
    def check(_: Any, attribute: attrs.Attribute, value: float) -> None:
        if value < minimum:
            raise ValueError(f"{attribute.name} must be >= {minimum}, got {value!r}")

    return check


def _graph_builder_name(_: Any, attribute: attrs.Attribute, value: str) -> None:
    from astra_tool_catalog.schema_flow import GRAPH_BUILDERS

    if value not in GRAPH_BUILDERS:
        raise ValueError(
            f"{attribute.name}: unknown graph builder {value!r}; "
            f"available: {', '.join(sorted(GRAPH_BUILDERS))}"
        )


def _server_names(_: Any, attribute: attrs.Attribute, value: str | tuple[str, ...]) -> None:
    from astra_tool_catalog.servers import SERVERS

    names = (value,) if isinstance(value, str) else tuple(value)
    unknown = [n for n in names if n != "all" and n not in SERVERS]
    if unknown:
        raise ValueError(
            f"{attribute.name}: no bundled server {unknown[0]!r}; "
            f"the bundled servers are: all, {', '.join(SERVERS)}"
        )
    if not names:
        raise ValueError(f"{attribute.name} names no server")


@attrs.frozen
class BundledCatalogOptions:
    """Options of the ``bundled-catalog`` tool-graph source."""

    servers: str | tuple[str, ...] = _opt(
        'bundled servers to load: "all" or a list of names (shop, files, calendar, weather, '
        "library, flights, bank, recipes, helpdesk)",
        "all",
        validator=_server_names,
    )
    graph_builder: str = _opt(
        "how edges are found: schema-flow (an output of A fills a required parameter of B)",
        "schema-flow",
        validator=_graph_builder_name,
    )
    min_edge_score: float = _opt(
        "smallest name/type/description match score that makes an edge (0-1)",
        0.5,
        validator=_at_least(0.0),
    )
    state_seed: int | None = _opt(
        "seed of the servers' worlds (customers, orders, ...); unset: the run seed", None
    )
    scenarios: int = _opt(
        "coherent sets of user-known values kept per server for task writing",
        24,
        validator=_at_least(1),
    )


@attrs.frozen
class ServerFileOptions:
    """Options of the ``server-file`` tool-graph source."""

    path: str | tuple[str, ...] = _opt(
        "file(s) to read: the authors' mcp_servers.jsonl, or JSON/JSONL lists of OpenAI tools "
        "or of servers; relative paths start at the config file's folder",
        attrs.NOTHING,
    )
    min_tools: int = _opt(
        "servers with fewer usable tools are dropped (the paper uses 3)",
        3,
        validator=_at_least(1),
    )
    min_description_words: int = _opt(
        "tool descriptions with fewer words are vague and the tool is dropped",
        3,
        validator=_at_least(0),
    )
    group_key: str = _opt(
        "for plain tool rows: the key naming the server a tool belongs to", "server"
    )
    graph_builder: str = _opt(
        "how edges are found: schema-flow", "schema-flow", validator=_graph_builder_name
    )
    min_edge_score: float = _opt(
        "smallest name/type/description match score that makes an edge (0-1)",
        0.5,
        validator=_at_least(0.0),
    )


@attrs.frozen
class PythonCatalogOptions:
    """Options of the ``python-catalog`` tool executor."""

    state_seed: int | None = _opt(
        "world seed for servers whose endpoint does not name one; unset: the run seed", None
    )
    max_output_chars: int = _opt(
        "tool outputs longer than this are cut (with a note)", 8000, validator=_at_least(100)
    )
