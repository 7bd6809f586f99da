"""Hook implementations of the tool-catalog plugin: the bundled offline servers, servers read
from files, the schema-flow graph builder, and the executor that runs the bundled tools for real."""

from __future__ import annotations

from typing import Any

from astra_core import hookimpl
from astra_core.registry import ComponentBuilder, Registrar
from astra_tool_catalog.options import (
    BundledCatalogOptions,
    PythonCatalogOptions,
    SchemaFlowOptions,
    ServerFileOptions,
)


def bundled_catalog(options: BundledCatalogOptions, builder: ComponentBuilder) -> Any:
    from astra_tool_catalog.bundled_source import BundledCatalogSource

    return BundledCatalogSource(options, builder)


def server_file(options: ServerFileOptions, builder: ComponentBuilder) -> Any:
    from astra_tool_catalog.server_file import ServerFileSource

    return ServerFileSource(options, builder)


def schema_flow(options: SchemaFlowOptions, builder: ComponentBuilder) -> Any:
    from astra_tool_catalog.schema_flow import SchemaFlowGraphBuilder

    return SchemaFlowGraphBuilder(min_score=options.min_edge_score)


def python_catalog(options: PythonCatalogOptions, builder: ComponentBuilder) -> Any:
    from astra_tool_catalog.python_executor import PythonCatalogExecutor

    return PythonCatalogExecutor(options, builder)


@hookimpl
def astra_register_tool_graph_sources(registry: Registrar) -> None:
    registry.add(
        "bundled-catalog",
        bundled_catalog,
        options=BundledCatalogOptions,
        description="Offline: 9 bundled servers (72 tools with Python implementations over "
        "seeded state), schema-flow tool graphs.",
    )
    registry.add(
        "server-file",
        server_file,
        options=ServerFileOptions,
        description="Servers from mcp_servers.jsonl or JSON/JSONL OpenAI tool lists, normalised "
        "and filtered as in the paper (drops counted), schema-flow tool graphs.",
    )


@hookimpl
def astra_register_tool_graph_builders(registry: Registrar) -> None:
    registry.add(
        "schema-flow",
        schema_flow,
        options=SchemaFlowOptions,
        description="Edge A -> B when an output field of A can fill a required parameter of B "
        "(by name, type and description); weight: best match plus a bonus per further "
        "parameter.",
    )


@hookimpl
def astra_register_tool_executors(registry: Registrar) -> None:
    registry.add(
        "python-catalog",
        python_catalog,
        options=PythonCatalogOptions,
        description="Runs the bundled catalog's tools for real, on fresh per-session state, "
        "arguments validated against the JSON Schema.",
    )
