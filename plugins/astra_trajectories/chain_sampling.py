"""Step 2: chains by weighted, length-bounded random walks on the (unioned) tool graph.

The walk itself is the trajectories plugin's ``sample_walks`` (seeded, weighted by edge weight,
optional acyclicity, deduplicated, never leaving the graph's server), so the offline and the LLM
samplers draw chains the same way.
"""

from __future__ import annotations

import random

from astra_core.records import ToolChain, ToolGraph
from astra_trajectories.random_walks import sample_walks


class WalkChainSampler:
    def __init__(
        self,
        *,
        attempts: int,
        min_length: int = 2,
        max_length: int = 5,
        acyclic: bool = True,
        max_chains: int | None = None,
    ) -> None:
        self.attempts = attempts
        self.min_length = min_length
        self.max_length = max_length
        self.acyclic = acyclic
        self.max_chains = max_chains

    def sample(self, graph: ToolGraph, rng: random.Random) -> list[ToolChain]:
        walks = sample_walks(
            graph,
            rng,
            attempts=self.attempts,
            min_length=self.min_length,
            max_length=self.max_length,
            acyclic=self.acyclic,
            max_chains=self.max_chains,
        )
        return [ToolChain(server_id=graph.server.id, tools=walk) for walk in walks]
