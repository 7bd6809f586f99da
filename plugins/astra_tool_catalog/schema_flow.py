"""The ``schema-flow`` tool-graph builder: an edge A -> B when something A returns can fill a
required parameter of B, matched by name, type and description (``astra_core.tool_schemas``).
No LLM. Registered as a ``tool_graph_builder``; the catalog sources and any other source build
it by name."""

from __future__ import annotations

from typing import ClassVar

from astra_core.records import ToolEdge, ToolGraph, ToolServer, tool_name
from astra_core.tool_schemas import (
    described_fields,
    field_matches,
    produced_fields,
    tool_params,
    tool_returns,
)


class SchemaFlowGraphBuilder:
    """Edge A -> B when A's output can fill at least one required parameter of B.

    ``weight`` is the best match score plus a bonus for every further parameter A can fill;
    ``reason`` lists the hand-offs (``search_orders.orders[].order_id -> get_order.order_id``).
    """

    name: ClassVar[str] = "schema-flow"

    def __init__(self, min_score: float = 0.5) -> None:
        self.min_score = min_score

    def build(self, server: ToolServer) -> ToolGraph:
        returns = tool_returns(server)
        names = [tool_name(tool) for tool in server.tools]
        # what ``flow_matches`` would derive for every pair, derived once per tool: the
        # parameters of each target, the output fields of each source with an output schema
        params = [tool_params(tool) for tool in server.tools]
        produced = [
            produced_fields(name, returns[name]) if returns.get(name) else None for name in names
        ]
        edges = []
        for source, source_name, fields in zip(server.tools, names, produced, strict=True):
            for target_name, target_params in zip(names, params, strict=True):
                if target_name == source_name:
                    continue
                matches = []
                for param in target_params:
                    found = field_matches(
                        described_fields(source, [param]) if fields is None else fields,
                        param,
                        self.min_score,
                    )
                    if found:
                        matches.append(found[0])
                if not matches:
                    continue
                best = max(m.score for m in matches)
                weight = round(min(best + 0.25 * (len(matches) - 1), 2.0), 3)
                reason = "; ".join(m.reason(target_name) for m in matches)
                edges.append(ToolEdge(source_name, target_name, weight, reason))
        return ToolGraph(server=server, edges=tuple(edges))
