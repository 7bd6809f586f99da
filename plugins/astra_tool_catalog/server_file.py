"""The ``server-file`` tool-graph source: tool servers read from files.

Accepted, row by row (JSONL) or item by item (a JSON list, or ``{"servers": [...]}``):

* the authors' ``mcp_servers.jsonl`` rows: ``{"base_info": {"group_info": {server_title,
  server_name, server_description, domain}, "tool_list": [...]}, "call_info": {...}}`` (also
  without the ``base_info`` wrapper, or wrapped in ``mcp_info`` as their stage-1 output is);
* servers: ``{"name"|"title", "description"?, "domain"?, "tools": [...]}``;
* single tools (OpenAI ``{"type": "function", "function": {...}}``, bare ``{name, description,
  parameters}`` or MCP ``inputSchema``), grouped into servers by the ``group_key`` field (default
  ``"server"``) or, without it, one server named after the file.

The paper's filters apply: tools whose schema does not convert and tools with vague descriptions
are dropped, then servers left with fewer than ``min_tools`` tools; every drop is counted with its
reason. A row that is not JSON, or is none of the shapes above, is an error naming file and line.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs

from astra_core.errors import AstraError
from astra_core.records import JSONDict, ToolGraph, ToolServer
from astra_core.row_files import config_paths
from astra_core.tool_graphs import build_graph_builder
from astra_core.tool_normalisation import ToolRejected, normalise_tool, raw_tool_name
from astra_tool_catalog.options import ServerFileOptions

if TYPE_CHECKING:
    from astra_core.context import StageContext
    from astra_core.registry import ComponentBuilder

TOO_FEW_TOOLS = "too-few-tools"
DUPLICATE_TOOL = "duplicate-tool-name"


class CatalogFileError(AstraError):
    """A server file that cannot be read; the message names the file and line."""


@attrs.frozen
class RawServer:
    """A server as found in a file, before normalisation and filtering."""

    name: str
    title: str
    description: str
    domain: str
    tools: tuple[Any, ...]
    call_info: JSONDict | None
    where: str  # "file:line" of the row it came from


def read_items(path: Path) -> Iterator[tuple[str, Any]]:
    """``(location, item)`` for every row of a JSONL file or item of a JSON file."""
    if not path.is_file():
        raise CatalogFileError(f"{path}: no such server file")
    text = path.read_text(encoding="utf-8")
    if path.suffix.lower() == ".jsonl":
        for lineno, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            try:
                yield f"{path}:{lineno}", json.loads(line)
            except json.JSONDecodeError as exc:
                raise CatalogFileError(
                    f"{path}:{lineno}: not valid JSON ({exc.msg} at column {exc.colno})"
                ) from None
        return
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise CatalogFileError(
            f"{path}:{exc.lineno}: not valid JSON ({exc.msg} at column {exc.colno})"
        ) from None
    if isinstance(data, Mapping) and isinstance(data.get("servers"), list):
        data = data["servers"]
    if isinstance(data, list):
        for index, item in enumerate(data):
            yield f"{path}:{_line_of_item(text, index)} (item {index})", item
    else:
        yield f"{path}:1", data


def _line_of_item(text: str, index: int) -> int:
    """The line where the ``index``-th element of a top-level JSON array starts."""
    decoder = json.JSONDecoder()
    pos = text.index("[") + 1
    for _ in range(index + 1):
        while text[pos] in " \t\r\n,":
            pos += 1
        start = pos
        _, pos = decoder.raw_decode(text, pos)
    return text.count("\n", 0, start) + 1


def _text(value: Any) -> str:
    return value.strip() if isinstance(value, str) else ""


def parse_servers(path: Path, *, group_key: str = "server") -> list[RawServer]:
    """Every server a file describes, in file order (tool rows grouped at the end)."""
    servers: list[RawServer] = []
    grouped: dict[str, list[Any]] = {}
    group_where: dict[str, str] = {}
    for where, item in read_items(path):
        if not isinstance(item, Mapping):
            raise CatalogFileError(f"{where}: expected a JSON object, got {type(item).__name__}")
        row: Mapping[str, Any] = item
        if isinstance(row.get("mcp_info"), Mapping):  # the authors' stage-1 output
            row = row["mcp_info"]
        if "base_info" in row or ("group_info" in row and "tool_list" in row):
            base = row.get("base_info", row)
            if not isinstance(base, Mapping):
                raise CatalogFileError(f"{where}: base_info must be an object")
            group = base.get("group_info") or {}
            tools = base.get("tool_list")
            if not isinstance(group, Mapping) or not isinstance(tools, list):
                raise CatalogFileError(
                    f"{where}: an mcp_servers row needs group_info (an object) and tool_list "
                    "(a list)"
                )
            name = _text(group.get("server_name")) or _text(group.get("server_title"))
            if not name:
                raise CatalogFileError(f"{where}: group_info has no server_name or server_title")
            call_info = row.get("call_info")
            servers.append(
                RawServer(
                    name=name,
                    title=_text(group.get("server_title")) or name,
                    description=_text(group.get("server_description")),
                    domain=_text(group.get("domain")),
                    tools=tuple(tools),
                    call_info=dict(call_info) if isinstance(call_info, Mapping) else None,
                    where=where,
                )
            )
        elif isinstance(row.get("tools"), list):
            name = _text(row.get("name")) or _text(row.get("title"))
            if not name:
                raise CatalogFileError(f"{where}: a server needs a name or title")
            endpoint = row.get("endpoint") or row.get("call_info")
            servers.append(
                RawServer(
                    name=name,
                    title=_text(row.get("title")) or name,
                    description=_text(row.get("description")),
                    domain=_text(row.get("domain")),
                    tools=tuple(row["tools"]),
                    call_info=dict(endpoint) if isinstance(endpoint, Mapping) else None,
                    where=where,
                )
            )
        elif "function" in row or (
            "name" in row
            and any(k in row for k in ("parameters", "inputSchema", "input_schema", "description"))
        ):
            group = _text(row.get(group_key)) or path.stem
            tool = {k: v for k, v in row.items() if k != group_key}
            grouped.setdefault(group, []).append(tool)
            group_where.setdefault(group, where)
        else:
            keys = ", ".join(sorted(map(str, row))[:8]) or "none"
            raise CatalogFileError(
                f"{where}: not a server or a tool (keys: {keys}); expected an mcp_servers row "
                "(group_info + tool_list), a server with 'tools', or an OpenAI tool"
            )
    for group, tools in grouped.items():
        servers.append(RawServer(group, group, "", "", tuple(tools), None, group_where[group]))
    return servers


def endpoint_from_call_info(call_info: Mapping[str, Any] | None) -> JSONDict | None:
    """How to call a server, from the authors' ``call_info`` (or an ``endpoint`` we wrote)."""
    if not call_info or call_info.get("mock_tool"):
        return None  # only an emulator can answer
    if isinstance(call_info.get("kind"), str):
        return dict(call_info)
    if "python_sdk_url" in call_info:
        return {
            "kind": "smithery",
            "url": call_info["python_sdk_url"],
            "config": call_info.get("python_sdk_config"),
        }
    if "url" in call_info:
        return {
            "kind": "mcp-http",
            "url": call_info["url"],
            "headers": dict(call_info.get("headers") or {}),
        }
    if "command" in call_info:
        command = call_info["command"]
        return {
            "kind": "mcp-stdio",
            "command": command if isinstance(command, list) else str(command).split(),
            "env": dict(call_info.get("env") or {}),
        }
    return None


class ServerFileSource:
    """Yields the tool graphs of the servers in one or more files, after the paper's filters."""

    def __init__(self, options: ServerFileOptions, builder: ComponentBuilder) -> None:
        self.options = options
        self.paths = config_paths(options.path, builder.file)
        self.graph_builder = build_graph_builder(
            builder, options.graph_builder, min_edge_score=options.min_edge_score
        )

    def servers(self, ctx: StageContext | None = None) -> Iterator[ToolServer]:
        for path in self.paths:
            for raw in parse_servers(path, group_key=self.options.group_key):
                server = self.normalise(raw, ctx)
                if server is not None:
                    yield server

    def normalise(self, raw: RawServer, ctx: StageContext | None) -> ToolServer | None:
        def drop(reason: str, record_id: str, detail: str) -> None:
            if ctx is not None:
                ctx.drop(reason, record_id, f"{raw.where}: {detail}")

        tools: list[JSONDict] = []
        returns: dict[str, JSONDict] = {}
        for index, document in enumerate(raw.tools):
            try:
                tool = normalise_tool(
                    document, min_description_words=self.options.min_description_words
                )
            except ToolRejected as exc:
                drop(exc.reason, f"{raw.name}/{raw_tool_name(document)}#{index}", exc.detail)
                continue
            if tool.name in returns or any(t["function"]["name"] == tool.name for t in tools):
                drop(
                    DUPLICATE_TOOL,
                    f"{raw.name}/{tool.name}#{index}",
                    f"{tool.name} is declared twice",
                )
                continue
            tools.append(tool.schema)
            if tool.returns is not None:
                returns[tool.name] = tool.returns
        if len(tools) < self.options.min_tools:
            drop(
                TOO_FEW_TOOLS,
                raw.name,
                f"{len(tools)} usable tool(s), fewer than {self.options.min_tools}",
            )
            return None
        endpoint = endpoint_from_call_info(raw.call_info)
        if returns:
            # an emulator-only server still documents its outputs for the graph builder
            endpoint = {**(endpoint or {"kind": "emulated"}), "returns": returns}
        return ToolServer(
            title=raw.title,
            tools=tuple(tools),
            description=raw.description,
            domain=raw.domain,
            endpoint=endpoint,
        )

    def load(self, ctx: StageContext) -> Iterator[ToolGraph]:
        for server in ctx.progress(self.servers(ctx), desc="servers", unit="server"):
            yield self.graph_builder.build(server)
