"""Options of the catalog components (TOML tables under a component choice)."""

from __future__ import annotations

from typing import Any

import attrs

from astra_core.options import at_least, option


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

    servers: str | tuple[str, ...] = option(
        'bundled servers to load: "all" or a list of names (shop, files, calendar, weather, '
        "library, flights, bank, recipes, helpdesk)",
        "all",
        validator=_server_names,
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
    state_seed: int | None = option(
        "seed of the servers' worlds (customers, orders, ...); unset: the run seed", None
    )
    scenarios: int = option(
        "coherent sets of user-known values kept per server for task writing",
        24,
        validator=at_least(1),
    )


@attrs.frozen
class ServerFileOptions:
    """Options of the ``server-file`` tool-graph source."""

    path: str | tuple[str, ...] = option(
        "file(s) to read: the authors' mcp_servers.jsonl, or JSON/JSONL lists of OpenAI tools "
        "or of servers; relative paths start at the config file's folder",
        attrs.NOTHING,
    )
    min_tools: int = option(
        "servers with fewer usable tools are dropped (the paper uses 3)",
        3,
        validator=at_least(1),
    )
    min_description_words: int = option(
        "tool descriptions with fewer words are vague and the tool is dropped",
        3,
        validator=at_least(0),
    )
    group_key: str = option(
        "for plain tool rows: the key naming the server a tool belongs to", "server"
    )
    graph_builder: str = option(
        "how edges are found: a registered tool_graph_builder (schema-flow)", "schema-flow"
    )
    min_edge_score: float = option(
        "smallest name/type/description match score that makes an edge (0-1)",
        0.5,
        validator=at_least(0.0),
    )


@attrs.frozen
class PythonCatalogOptions:
    """Options of the ``python-catalog`` tool executor."""

    state_seed: int | None = option(
        "world seed for servers whose endpoint does not name one; unset: the run seed", None
    )
    max_output_chars: int = option(
        "tool outputs longer than this are cut (with a note)", 8000, validator=at_least(100)
    )


@attrs.frozen
class SchemaFlowOptions:
    """Options of the ``schema-flow`` tool-graph builder."""

    min_edge_score: float = option(
        "smallest name/type/description match score that makes an edge (0-1)",
        0.5,
        validator=at_least(0.0),
    )
