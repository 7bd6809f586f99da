"""The ``mcp`` tool-graph source (also registered as ``mcp-stdio``): live MCP servers started
over stdio or reached over HTTP (streamable HTTP or SSE).

For each configured server: start it (or connect to it, retrying a connection that fails with
backoff) with the mcp SDK, initialise, list its tools, stop (disconnect). Tools become OpenAI
schemas (``inputSchema`` -> ``parameters``); output schemas and MCP annotations are kept in the
endpoint, with the command or the URL and header templates, so the ``mcp`` executor can reach
the same server later and call the tools for real. The paper's filters apply (tools that do not
convert, vague descriptions, servers with fewer than ``min_tools`` tools) and every drop is
counted with its reason, as is a server that fails to start or to list its tools.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs

from astra_core.records import JSONDict, ToolGraph, ToolServer
from astra_core.tool_graphs import build_graph_builder
from astra_core.tool_normalisation import ToolRejected
from astra_mcp.endpoint import HttpLaunch, Launch, StdioLaunch, endpoint_of, http_endpoint_of
from astra_mcp.event_loop import shared_loop
from astra_mcp.live_server import ServerStartError, connect, describe_exception
from astra_mcp.options import McpServerConfig, McpSourceOptions
from astra_mcp.tool_schemas import convert_tool

if TYPE_CHECKING:
    from astra_core.context import StageContext
    from astra_core.registry import ComponentBuilder

SERVER_FAILED = "mcp-server-failed"
TOO_FEW_TOOLS = "too-few-tools"  # the same reason the catalog files use
DUPLICATE_TOOL = "duplicate-tool-name"
MAX_DESCRIPTION_CHARS = 500


@attrs.frozen
class ServerListing:
    """What a server said about itself: its ``initialize`` result and its tools."""

    initialize: JSONDict
    tools: tuple[JSONDict, ...]


def drop_id(config: McpServerConfig, tool: str | None = None) -> str:
    kind = "mcp-http" if config.url is not None else "mcp-stdio"
    return f"{kind}/{config.name}" + (f"/{tool}" if tool else "")


class McpSource:
    """Yields one ``ToolGraph`` per configured MCP server that starts and has enough tools."""

    def __init__(self, options: McpSourceOptions, builder: ComponentBuilder) -> None:
        self.options = options
        self.base_dir = Path(builder.file).resolve().parent if builder.file else Path.cwd()
        self.graph_builder = build_graph_builder(
            builder, options.graph_builder, min_edge_score=options.min_edge_score
        )
        self.loop = shared_loop()

    def launch(self, config: McpServerConfig) -> Launch:
        if config.url is not None:
            return HttpLaunch(config.url, config.transport, tuple(sorted(config.headers.items())))
        cwd = None
        if config.cwd is not None:
            cwd = str((self.base_dir / config.cwd).resolve())
        return StdioLaunch(tuple(config.command or ()), tuple(sorted(config.env.items())), cwd)

    async def discover(self, config: McpServerConfig) -> ServerListing:
        """Start the server, list its tools, stop it; ``ServerStartError`` saying why not."""
        launch = self.launch(config)
        timeout = self.options.start_timeout_s
        http = isinstance(launch, HttpLaunch)
        server = await connect(
            launch,
            self.loop,
            name=config.name,
            timeout=timeout,
            attempts=self.options.connect_attempts if http else 1,
            backoff_s=self.options.retry_backoff_s,
        )
        try:
            tools = await server.list_tools(timeout)
        except Exception as exc:
            what = describe_exception(exc) or f"no answer within {timeout:g} s"
            raise ServerStartError(
                f"MCP server {config.name!r} ({launch.where}) started but listing its tools "
                f"failed: {what}"
            ) from None
        finally:
            await server.aclose()
        return ServerListing(server.initialize_result, tuple(tools))

    def discover_all(
        self, configs: Sequence[McpServerConfig]
    ) -> list[ServerListing | ServerStartError]:
        """``discover`` every server, ``max_parallel_starts`` at a time, in config order."""
        limit = asyncio.Semaphore(self.options.max_parallel_starts)

        async def one(config: McpServerConfig) -> ServerListing | ServerStartError:
            async with limit:
                try:
                    return await self.discover(config)
                except ServerStartError as exc:
                    return exc

        async def every() -> list[ServerListing | ServerStartError]:
            return list(await asyncio.gather(*(one(c) for c in configs)))

        return self.loop.run(every())

    def server(
        self, config: McpServerConfig, listing: ServerListing, ctx: StageContext | None = None
    ) -> ToolServer | None:
        """The ``ToolServer`` record, or ``None`` (dropped) when too few tools are usable."""

        def drop(reason: str, record_id: str, detail: str) -> None:
            if ctx is not None:
                ctx.drop(reason, record_id, detail)

        tools: list[JSONDict] = []
        returns: dict[str, JSONDict] = {}
        annotations: dict[str, JSONDict] = {}
        for raw in listing.tools:
            name = str(raw.get("name", "?"))
            try:
                tool = convert_tool(raw, min_description_words=self.options.min_description_words)
            except ToolRejected as exc:
                drop(exc.reason, drop_id(config, name), f"{config.name}: {exc.detail}")
                continue
            if any(t["function"]["name"] == tool.name for t in tools):
                drop(DUPLICATE_TOOL, drop_id(config, name), f"{config.name}: {name} listed twice")
                continue
            tools.append(tool.schema)
            if tool.returns is not None:
                returns[tool.name] = tool.returns
            if tool.annotations:
                annotations[tool.name] = tool.annotations
        if len(tools) < self.options.min_tools:
            drop(
                TOO_FEW_TOOLS,
                drop_id(config),
                f"MCP server {config.name!r} has {len(tools)} usable tool(s), fewer than "
                f"min_tools={self.options.min_tools} (the paper drops servers with fewer than 3)",
            )
            return None
        info = listing.initialize.get("serverInfo") or {}
        launch = self.launch(config)
        extra: dict[str, Any] = {
            "returns": returns,
            "annotations": annotations,
            "scenarios": [dict(s) for s in config.scenarios],
            "server_info": {k: info[k] for k in ("name", "version") if k in info},
        }
        if isinstance(launch, HttpLaunch):
            # the header templates, never their values
            endpoint = http_endpoint_of(launch.url, launch.transport, dict(launch.headers), **extra)
        else:
            endpoint = endpoint_of(launch.command, dict(launch.env), launch.cwd, **extra)
        return ToolServer(
            title=config.name,
            tools=tuple(tools),
            description=self.description(config, listing),
            domain=config.domain,
            endpoint=endpoint,
        )

    @staticmethod
    def description(config: McpServerConfig, listing: ServerListing) -> str:
        if config.description:
            return config.description
        instructions = str(listing.initialize.get("instructions") or "").strip()
        if instructions:
            return " ".join(instructions.split())[:MAX_DESCRIPTION_CHARS]
        info: Any = listing.initialize.get("serverInfo") or {}
        return f"The MCP server {info.get('name') or config.name}."

    def load(self, ctx: StageContext) -> Iterator[ToolGraph]:
        configs = self.options.server_configs()
        for config, listing in zip(configs, self.discover_all(configs), strict=True):
            if isinstance(listing, ServerStartError):
                ctx.log.warning("%s", listing)
                ctx.drop(SERVER_FAILED, drop_id(config), str(listing))
                continue
            server = self.server(config, listing, ctx)
            if server is not None:
                yield self.graph_builder.build(server)
