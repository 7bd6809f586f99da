"""Hook implementations of the MCP plugin: live MCP servers over stdio as a tool-graph source
and an executor that calls their tools for real (the ``mcp-probe`` sampler that drives them
lives in the trajectories plugin)."""

from __future__ import annotations

from typing import Any

from astra_core import hookimpl
from astra_core.registry import ComponentBuilder, Registrar
from astra_mcp.options import McpExecutorOptions, McpStdioSourceOptions
from astra_mcp.preflight import sdk_problems, stdio_source_problems


def mcp_stdio(options: McpStdioSourceOptions, builder: ComponentBuilder) -> Any:
    from astra_mcp.stdio_source import McpStdioSource

    return McpStdioSource(options, builder)


def mcp_executor(options: McpExecutorOptions, builder: ComponentBuilder) -> Any:
    from astra_mcp.executor import McpToolExecutor

    return McpToolExecutor(options, builder)


@hookimpl
def astra_register_tool_graph_sources(registry: Registrar) -> None:
    registry.add(
        "mcp-stdio",
        mcp_stdio,
        options=McpStdioSourceOptions,
        description="Live MCP servers started over stdio (mcp SDK): tools listed and converted "
        "to OpenAI schemas, schema-flow graphs, endpoints kept for real calls.",
        preflight=stdio_source_problems,
    )


@hookimpl
def astra_register_tool_executors(registry: Registrar) -> None:
    registry.add(
        "mcp",
        mcp_executor,
        options=McpExecutorOptions,
        description="Calls tools on live MCP servers over stdio: one reused session per server, "
        "per-call timeout, errors become error observations.",
        preflight=sdk_problems,
    )
