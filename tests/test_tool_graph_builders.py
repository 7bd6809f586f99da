"""Tool-graph builders are a registered kind: a source builds the one its ``graph_builder``
option names, bundled (``schema-flow``) or from another plugin."""

from __future__ import annotations

import types
from typing import Any

import pytest

from astra_core import hookimpl
from astra_core.errors import ConfigError
from astra_core.options import ComponentSpec
from astra_core.plugins import load_plugins
from astra_core.protocols import ToolGraphBuilder
from astra_core.records import ToolGraph, ToolServer
from astra_core.registry import ComponentBuilder


class NoEdges:
    def build(self, server: ToolServer) -> ToolGraph:
        return ToolGraph(server=server)


@hookimpl
def astra_register_tool_graph_builders(registry: Any) -> None:
    registry.add("no-edges", lambda options, builder: NoEdges())


def builder_with_plugin() -> ComponentBuilder:
    plugin = types.ModuleType("no_edges")
    plugin.astra_register_tool_graph_builders = astra_register_tool_graph_builders  # type: ignore[attr-defined]
    return ComponentBuilder(load_plugins(objects=[("no-edges", plugin)]).registry, seed=0)


def catalog(builder: ComponentBuilder, **options: Any) -> Any:
    spec = ComponentSpec("bundled-catalog", {"servers": ["shop"], **options})
    return builder.build("tool_graph_source", spec)


def test_schema_flow_is_registered_and_takes_the_sources_min_edge_score():
    builder = builder_with_plugin()
    assert "schema-flow" in builder.registry.names("tool_graph_builder")
    source = catalog(builder, min_edge_score=0.9)
    assert isinstance(source.graph_builder, ToolGraphBuilder)
    assert source.graph_builder.min_score == 0.9
    assert catalog(builder).graph_builder.min_score == 0.5


def test_a_source_builds_a_builder_another_plugin_registered():
    builder = builder_with_plugin()
    (server,) = catalog(builder).servers()
    assert catalog(builder).graph_builder.build(server).edges  # schema-flow finds edges
    assert catalog(builder, graph_builder="no-edges").graph_builder.build(server).edges == ()


def test_an_unknown_builder_names_the_option_and_the_choices():
    with pytest.raises(ConfigError, match=r"graph_builder: unknown graph builder 'oracle'.*"):
        catalog(builder_with_plugin(), graph_builder="oracle")
