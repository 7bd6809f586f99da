"""Seeded, weighted, length-bounded random walks on one server's tool graph (the paper's chain
sampling); walks never leave the graph's server."""

from __future__ import annotations

import random
from collections.abc import Sequence

from astra_core.records import ToolGraph


def successors(graph: ToolGraph) -> dict[str, list[tuple[str, float]]]:
    """Outgoing (tool, weight) pairs per tool; edges naming tools the server lacks are ignored,
    so a walk can never reach another server's tool."""
    names = graph.server.tool_names
    out: dict[str, list[tuple[str, float]]] = {n: [] for n in names}
    for edge in graph.edges:
        known = edge.source in out and edge.target in out
        if known and edge.source != edge.target and edge.weight > 0:
            out[edge.source].append((edge.target, float(edge.weight)))
    return out


def _weighted(rng: random.Random, options: Sequence[tuple[str, float]]) -> str:
    total = sum(w for _, w in options)
    point = rng.random() * total
    for name, weight in options:
        point -= weight
        if point < 0:
            return name
    return options[-1][0]


def sample_walks(
    graph: ToolGraph,
    rng: random.Random,
    *,
    attempts: int,
    min_length: int = 2,
    max_length: int = 5,
    acyclic: bool = True,
    max_chains: int | None = None,
) -> list[tuple[str, ...]]:
    """Distinct walks of ``min_length``..``max_length`` tools, in the order first drawn.

    Each attempt draws a target length, starts at a tool with outgoing edges and follows edges
    with probability proportional to their weight; a walk stuck short of ``min_length`` is
    discarded, one stuck later is kept as it is.
    """
    succ = successors(graph)
    starts = [n for n in graph.server.tool_names if succ[n]]
    walks: list[tuple[str, ...]] = []
    if not starts or max_length < 1:
        return walks
    seen: set[tuple[str, ...]] = set()
    for _ in range(attempts):
        length = rng.randint(min_length, max_length)
        walk = [rng.choice(starts)]
        while len(walk) < length:
            options = [(t, w) for t, w in succ[walk[-1]] if not (acyclic and t in walk)]
            if not options:
                break
            walk.append(_weighted(rng, options))
        key = tuple(walk)
        if len(key) >= min_length and key not in seen:
            seen.add(key)
            walks.append(key)
            if max_chains is not None and len(walks) >= max_chains:
                break
    return walks
