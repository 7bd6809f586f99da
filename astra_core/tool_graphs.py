"""Building the ``tool_graph_builder`` a tool-graph source names in its options.

Every source that finds edges with a registered builder has the same two options,
``graph_builder`` (the builder's registered name) and ``min_edge_score``; this is the one place
that turns them into a builder, so each source behaves alike and a third-party source needs no
more than this module.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import attrs

from astra_core.errors import ConfigError, UnknownComponentError
from astra_core.options import ComponentSpec

if TYPE_CHECKING:
    from astra_core.registry import ComponentBuilder

__all__ = ["build_graph_builder"]

KIND = "tool_graph_builder"


def build_graph_builder(
    builder: ComponentBuilder, name: str, *, min_edge_score: float | None = None
) -> Any:
    """The ``tool_graph_builder`` registered as ``name``, built by ``builder`` (which owns it).

    ``min_edge_score`` is passed on to builders whose options have a field of that name (the
    bundled ``schema-flow``); other builders get their defaults. An unknown name is a
    ``ConfigError`` naming the ``graph_builder`` option and the registered builders.
    """
    try:
        info = builder.registry.get(KIND, name)
    except UnknownComponentError:
        available = ", ".join(builder.registry.names(KIND)) or "none"
        raise ConfigError(
            f"graph_builder: unknown graph builder {name!r}; available: {available}"
        ) from None
    options: dict[str, Any] = {}
    takes_score = info.options is not None and "min_edge_score" in attrs.fields_dict(info.options)
    if min_edge_score is not None and takes_score:
        options["min_edge_score"] = min_edge_score
    return builder.build(KIND, ComponentSpec(name, options), key="graph_builder")
