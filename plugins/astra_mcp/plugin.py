"""Hook implementations of the MCP plugin: live MCP servers (over stdio, streamable HTTP or
SSE) as a tool-graph source and an executor that calls their tools for real (the ``mcp-probe``
sampler that drives them lives in the trajectories plugin)."""

from __future__ import annotations

from typing import Any

from astra_core import hookimpl
from astra_core.registry import ComponentBuilder, Registrar
from astra_mcp.options import McpExecutorOptions, McpSourceOptions
from astra_mcp.preflight import sdk_problems, source_problems


def mcp_source(options: McpSourceOptions, builder: ComponentBuilder) -> Any:
    from astra_mcp.source import McpSource

    return McpSource(options, builder)


def mcp_executor(options: McpExecutorOptions, builder: ComponentBuilder) -> Any:
    from astra_mcp.executor import McpToolExecutor

    return McpToolExecutor(options, builder)


@hookimpl
def astra_register_tool_graph_sources(registry: Registrar) -> None:
    description = (
        "Live MCP servers started over stdio or reached over streamable HTTP or SSE (mcp SDK): "
        "tools listed and converted to OpenAI schemas, schema-flow graphs, endpoints kept for "
        "real calls."
    )
    registry.add(
        "mcp",
        mcp_source,
        options=McpSourceOptions,
        description=description,
        preflight=source_problems,
    )
    # its first name, from when it spoke stdio only: configs that use it keep working
    registry.add(
        "mcp-stdio",
        mcp_source,
        options=McpSourceOptions,
        description=description + " (the mcp source under its first name)",
        preflight=source_problems,
    )


@hookimpl
def astra_register_tool_executors(registry: Registrar) -> None:
    registry.add(
        "mcp",
        mcp_executor,
        options=McpExecutorOptions,
        description="Calls tools on live MCP servers (stdio, streamable HTTP, SSE, the "
        "authors' mcp-http and smithery rows): one reused session per server, per-call timeout, "
        "bounded reconnection with backoff, errors become error observations.",
        preflight=sdk_problems,
    )
