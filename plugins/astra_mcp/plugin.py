"""Hook implementations of the MCP plugin: live MCP servers over stdio as a tool-graph source,
an executor that calls their tools for real, and an offline probe sampler."""

from __future__ import annotations

from typing import Any

from astra_core import hookimpl
from astra_core.registry import ComponentBuilder
from astra_mcp.options import McpExecutorOptions, McpProbeOptions, McpStdioSourceOptions


def mcp_stdio(options: McpStdioSourceOptions, builder: ComponentBuilder) -> Any:
    from astra_mcp.stdio_source import McpStdioSource

    return McpStdioSource(options, builder)


def mcp_executor(options: McpExecutorOptions, builder: ComponentBuilder) -> Any:
    from astra_mcp.executor import McpToolExecutor

    return McpToolExecutor(options, builder)


def mcp_probe(options: McpProbeOptions, builder: ComponentBuilder) -> Any:
    from astra_mcp.probe_sampler import McpProbeSampler

    return McpProbeSampler(options, builder)


@hookimpl
def astra_register_tool_graph_sources(registry: Any) -> None:
    registry.add(
        "mcp-stdio",
        mcp_stdio,
        options=McpStdioSourceOptions,
        description="Live MCP servers started over stdio (mcp SDK): tools listed and converted "
        "to OpenAI schemas, schema-flow graphs, endpoints kept for real calls.",
    )


@hookimpl
def astra_register_tool_executors(registry: Any) -> None:
    registry.add(
        "mcp",
        mcp_executor,
        options=McpExecutorOptions,
        description="Calls tools on live MCP servers over stdio: one reused session per server, "
        "per-call timeout, errors become error observations.",
    )


@hookimpl
def astra_register_trajectory_samplers(registry: Any) -> None:
    registry.add(
        "mcp-probe",
        mcp_probe,
        options=McpProbeOptions,
        description="Offline probe of live MCP servers (not the paper's LLM rollout): scripted "
        "calls with arguments from schema values, configured scenarios and earlier outputs; "
        "template requests; every tool output real.",
    )
