"""Step 1: LLM-proposed (task, chain) pairs per server, turned into graph edges.

As in the paper, the LLM reads one server's tools and proposes chains with a task each; only
chains it calls dependent ("yes") count. Every consecutive pair of a kept chain is an edge whose
weight is how many times the pair was proposed (the authors' code deduplicates, which leaves the
paper's ``w`` undefined). Names the server does not have break a chain there: no edge jumps over
them. The proposed edges are unioned with the graph's own edges (schema-flow, from the source);
an edge in both gets the sum of the weights and both reasons.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

import attrs

from astra_core.protocols import LLMBackend
from astra_core.records import ToolEdge, ToolGraph, ToolServer
from astra_trajectories import prompts
from astra_trajectories.llm_answers import ask
from astra_trajectories.step_outcomes import StepFailed

STEP = "chain-proposal"


@attrs.frozen
class Proposal:
    tools: tuple[str, ...]
    task: str = ""


@attrs.frozen
class ProposalRound:
    """What the proposals of one server gave: kept chains, and the answers that failed."""

    proposals: tuple[Proposal, ...]
    failures: tuple[StepFailed, ...] = ()
    discarded: int = 0  # chains the LLM itself called "no" or "not sure"


class ChainProposer:
    def __init__(
        self,
        llm: LLMBackend,
        *,
        samples: int = 1,
        max_length: int = 5,
        sampling: Mapping[str, Any] | None = None,
    ) -> None:
        self.llm = llm
        self.samples = samples
        self.max_length = max_length
        self.sampling = dict(sampling or {})

    def propose(self, server: ToolServer) -> ProposalRound:
        messages = prompts.chain_proposal_messages(server, self.max_length)
        kept: list[Proposal] = []
        failures: list[StepFailed] = []
        discarded = 0
        for index in range(self.samples):
            # one sample keeps the plain request; more draw distinct answers with seed=i
            sampling = self.sampling if self.samples == 1 else {**self.sampling, "seed": index}
            try:
                answer = ask(
                    self.llm,
                    messages,
                    schema=prompts.CHAIN_PROPOSAL_SCHEMA,
                    step=STEP,
                    sampling=sampling,
                )
            except StepFailed as exc:
                failures.append(exc)
                continue
            for item in answer:
                if item["dependent"] != "yes":
                    discarded += 1
                    continue
                kept.append(Proposal(tuple(item["chain"]), str(item.get("task", ""))))
        return ProposalRound(tuple(kept), tuple(failures), discarded)


def proposal_edges(server: ToolServer, proposals: Sequence[Proposal]) -> tuple[ToolEdge, ...]:
    """One edge per consecutive pair of known tools, weight = how often it was proposed."""
    names = set(server.tool_names)
    counts: Counter[tuple[str, str]] = Counter()
    for proposal in proposals:
        for source, target in zip(proposal.tools, proposal.tools[1:], strict=False):
            if source in names and target in names and source != target:
                counts[(source, target)] += 1
    return tuple(
        ToolEdge(s, t, float(n), f"proposed by the LLM in {n} chain(s)")
        for (s, t), n in sorted(counts.items())
    )


def union_edges(graph: ToolGraph, proposed: Sequence[ToolEdge]) -> ToolGraph:
    """``graph`` with ``proposed`` added; an edge in both sums its weights and reasons."""
    merged: dict[tuple[str, str], ToolEdge] = {(e.source, e.target): e for e in graph.edges}
    for edge in proposed:
        key = (edge.source, edge.target)
        old = merged.get(key)
        if old is None:
            merged[key] = edge
        else:
            reason = "; ".join(r for r in (old.reason, edge.reason) if r)
            merged[key] = ToolEdge(old.source, old.target, old.weight + edge.weight, reason)
    return ToolGraph(server=graph.server, edges=tuple(merged.values()), id=graph.id)
