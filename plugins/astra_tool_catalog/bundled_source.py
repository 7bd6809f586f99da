"""The ``bundled-catalog`` tool-graph source: the offline servers shipped in this package."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from astra_core.records import ToolGraph, ToolServer
from astra_core.tool_graphs import build_graph_builder
from astra_tool_catalog.catalog_model import ServerSpec
from astra_tool_catalog.options import BundledCatalogOptions
from astra_tool_catalog.servers import SERVERS

if TYPE_CHECKING:
    from astra_core.context import StageContext
    from astra_core.registry import ComponentBuilder

ENDPOINT_KIND = "python"
CATALOG_NAME = "bundled"


def catalog_server(spec: ServerSpec, *, state_seed: int, scenarios: int = 24) -> ToolServer:
    """The ``ToolServer`` record of a bundled server.

    Models are offered only the plain OpenAI schemas in ``tools``; the ``endpoint`` says how to
    run them (``python-catalog`` executor, world seed) and keeps what the synthesis steps may
    read: each tool's output schema (``returns``), a phrase for task text (``phrases``) and
    coherent sets of values a user of the server could know (``scenarios``).
    """
    endpoint: dict[str, Any] = {
        "kind": ENDPOINT_KIND,
        "catalog": CATALOG_NAME,
        "server": spec.name,
        "state_seed": state_seed,
        "returns": {t.name: t.returns for t in spec.tools},
        "phrases": {t.name: t.phrase for t in spec.tools},
        "scenarios": spec.scenarios(state_seed, scenarios),
    }
    return ToolServer(
        title=spec.title,
        tools=tuple(t.openai_schema() for t in spec.tools),
        description=spec.description,
        domain=spec.domain,
        endpoint=endpoint,
    )


class BundledCatalogSource:
    """Yields one ``ToolGraph`` per bundled server, edges from the configured graph builder."""

    def __init__(self, options: BundledCatalogOptions, builder: ComponentBuilder) -> None:
        self.options = options
        self.state_seed = builder.seed if options.state_seed is None else options.state_seed
        self.graph_builder = build_graph_builder(
            builder, options.graph_builder, min_edge_score=options.min_edge_score
        )

    def server_names(self) -> list[str]:
        chosen = self.options.servers
        names = (chosen,) if isinstance(chosen, str) else tuple(chosen)
        if "all" in names:
            return list(SERVERS)
        return [n for n in SERVERS if n in names]

    def servers(self) -> list[ToolServer]:
        return [
            catalog_server(SERVERS[n], state_seed=self.state_seed, scenarios=self.options.scenarios)
            for n in self.server_names()
        ]

    def load(self, ctx: StageContext) -> Iterator[ToolGraph]:
        servers = self.servers()
        for server in ctx.progress(servers, total=len(servers), desc="servers", unit="server"):
            yield self.graph_builder.build(server)
