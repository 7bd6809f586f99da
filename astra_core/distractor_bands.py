"""Irrelevant-tool mixing (paper §3.2.2): distractors by banded doc similarity, for any arena
generator.

1. A pool of tools, deduplicated by name, each with a domain and its doc string.
2. Cosine similarity of the embedded docs.
3. For each in-scope tool, its similarities to every other pool tool are min-max normalised.
4. Candidates of an in-scope tool's domain (and in-scope tools themselves) are excluded.
5. Bands: high (> ``high``), medium (``low`` <= s <= ``high``), low (< ``low``).
6. The instance's band pool is the union over its in-scope tools.
7. Up to ``k`` tools are drawn uniformly from each band (high first; a tool is drawn once).
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Sequence

import attrs

from astra_core.tool_similarity import Embedder, cosine_matrix

__all__ = ["BANDS", "DistractorSampler", "PoolTool"]

BANDS: tuple[str, ...] = ("high", "medium", "low")


@attrs.frozen
class PoolTool:
    """A tool of the global pool: its name, its domain and the doc string that is embedded."""

    name: str
    domain: str
    doc: str


class DistractorSampler:
    """Similarity bands over a fixed tool pool; embeddings are computed once."""

    def __init__(
        self,
        pool: Iterable[PoolTool],
        embedder: Embedder,
        *,
        high: float = 0.85,
        low: float = 0.4,
    ) -> None:
        if not 0.0 <= low <= high <= 1.0:
            raise ValueError(f"band thresholds need 0 <= low <= high <= 1, got {low}, {high}")
        unique: dict[str, PoolTool] = {}
        for tool in pool:
            unique.setdefault(tool.name, tool)  # exact-match dedup on the tool name
        self.tools = list(unique.values())
        self.index = {t.name: i for i, t in enumerate(self.tools)}
        self.high = high
        self.low = low
        self.similarity = cosine_matrix(embedder.embed([t.doc for t in self.tools]))

    def normalised(self, name: str) -> dict[str, float]:
        """Min-max normalised similarity of ``name`` to every other pool tool."""
        i = self._position(name)
        raw = {t.name: self.similarity[i][j] for j, t in enumerate(self.tools) if j != i}
        lo, hi = min(raw.values(), default=0.0), max(raw.values(), default=0.0)
        span = hi - lo
        return {n: ((s - lo) / span if span > 1e-12 else 0.0) for n, s in raw.items()}

    def band_of(self, score: float) -> str:
        if score > self.high:
            return "high"
        if score >= self.low:
            return "medium"
        return "low"

    def band_pools(self, in_scope: Sequence[str]) -> dict[str, set[str]]:
        """The union over in-scope tools of their candidates in each band."""
        scope = set(in_scope)
        domains = {self.tools[self._position(n)].domain for n in in_scope}
        pools: dict[str, set[str]] = {b: set() for b in BANDS}
        for name in in_scope:
            for other, score in self.normalised(name).items():
                tool = self.tools[self.index[other]]
                if other in scope or tool.domain in domains:
                    continue
                pools[self.band_of(score)].add(other)
        return pools

    def sample(self, in_scope: Sequence[str], k: int, rng: random.Random) -> dict[str, list[str]]:
        """Up to ``k`` distractors from each band, each tool at most once."""
        pools = self.band_pools(in_scope)
        chosen: dict[str, list[str]] = {}
        taken: set[str] = set()
        for band in BANDS:
            candidates = sorted(pools[band] - taken)
            picked = rng.sample(candidates, min(k, len(candidates))) if k > 0 else []
            chosen[band] = picked
            taken.update(picked)
        return chosen

    def domain(self, name: str) -> str:
        return self.tools[self._position(name)].domain

    def _position(self, name: str) -> int:
        try:
            return self.index[name]
        except KeyError:
            raise KeyError(f"tool {name!r} is not in the distractor pool") from None
