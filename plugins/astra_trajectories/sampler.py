"""The ``offline-chain-walk`` trajectory sampler: the paper's pipeline 1 with no LLM.

Per server graph: seeded weighted random walks (chains of 2-5 tools, never leaving the server),
chain verification by argument-dependency satisfiability, template tasks naming real values from
the server's state, an offline agent that runs the chain through a real tool executor, and a
rule-based judge (not the paper's LLM judge). Trajectories that fail the judge are yielded with
``status="failed"`` and the reason in ``metadata["failure"]``; rejected chains are counted with
``ctx.drop``. The four steps (``chain_verifier``, ``task_generator``, ``agent``, ``judge``) are
``trajectory_step`` components chosen by name in the options, so a plugin replaces one alone;
what each must answer is in docs/hooks.md.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from astra_core.errors import StepRejected
from astra_core.options import options_to_dict
from astra_core.records import ToolChain, ToolGraph, Trajectory, content_id
from astra_trajectories.options import OfflineChainWalkOptions
from astra_trajectories.random_walks import sample_walks

if TYPE_CHECKING:
    from astra_core.context import StageContext
    from astra_core.registry import ComponentBuilder

SAMPLER = "offline-chain-walk"
STEP_KIND = "trajectory_step"
RULE_JUDGE = "offline-rules"
JUDGE_NOTE = "rule-based offline checks, not the paper's LLM judge"


class OfflineChainWalkSampler:
    def __init__(self, options: OfflineChainWalkOptions, builder: ComponentBuilder) -> None:
        self.options = options
        self.verifier = builder.build_step(STEP_KIND, "chain_verifier", options)
        self.task_generator = builder.build_step(STEP_KIND, "task_generator", options)
        self.agent = builder.build_step(STEP_KIND, "agent", options)
        self.judge = builder.build_step(STEP_KIND, "judge", options)
        # a trajectory's id depends on its task and on these options: a resumed run with the
        # same config recognises the work it already did before doing it again
        self.fingerprint = content_id(SAMPLER, options_to_dict(options))

    def chains(self, graph: ToolGraph, ctx: StageContext) -> list[ToolChain]:
        o = self.options
        walks = sample_walks(
            graph,
            ctx.rng(f"{SAMPLER}:walks:{graph.server.id}"),
            attempts=o.walks_per_server,
            min_length=o.min_length,
            max_length=o.max_length,
            acyclic=o.acyclic,
            max_chains=o.max_chains_per_server,
        )
        return [ToolChain(server_id=graph.server.id, tools=w) for w in walks]

    def sample(self, graph: ToolGraph, ctx: StageContext) -> Iterator[Trajectory]:
        server = graph.server
        chains = self.chains(graph, ctx)
        if not chains:
            ctx.drop(
                "no-chains",
                server.id,
                f"{server.title}: no walk of {self.options.min_length}+ tools in its graph",
            )
            return
        for chain in ctx.progress(chains, total=len(chains), desc=server.title, unit="chain"):
            if not ctx.in_shard(chain.id) or ctx.seen(chain.id):
                continue
            try:
                plan = self.verifier.verify(server, chain.tools, graph.edges)
            except StepRejected as exc:
                ctx.drop(f"chain-{exc.reason}", chain.id, exc.detail)
                continue
            tasks = self.task_generator.generate(
                server, plan, chain, ctx.rng(f"{SAMPLER}:tasks:{chain.id}")
            )
            if not tasks:
                ctx.drop(
                    "chain-no-user-values",
                    chain.id,
                    f"no scenario of {server.title} states {', '.join(plan.user_params)}",
                )
                continue
            for generated in tasks:
                trajectory_id = content_id("trajectory", generated.task.id, self.fingerprint)
                if ctx.seen(trajectory_id):
                    continue
                yield self.trajectory(graph, chain, plan, generated, trajectory_id)

    def trajectory(
        self, graph: ToolGraph, chain: ToolChain, plan: Any, generated: Any, trajectory_id: str
    ) -> Trajectory:
        server = graph.server
        rollout = self.agent.run(server, generated, plan, session_key=trajectory_id)
        verdict = self.judge.judge(
            rollout.messages, server.tools, results=rollout.results, target_tools=chain.tools
        )
        metadata: dict[str, Any] = {
            "sampler": SAMPLER,
            "server_id": server.id,
            "server": server.title,
            "domain": server.domain,
            "chain": list(chain.tools),
            "chain_id": chain.id,
            "chain_length": len(chain.tools),
            "bindings": plan.describe(),
            "judge": (
                f"{self.options.judge} ({JUDGE_NOTE})"
                if self.options.judge == RULE_JUDGE
                else self.options.judge
            ),
        }
        endpoint = server.endpoint or {}
        if isinstance(endpoint.get("server"), str):
            metadata["catalog_server"] = endpoint["server"]
        status = "ok"
        if rollout.failure is not None:
            status = "failed"
            metadata["failure"] = f"agent-{rollout.failure}"
            metadata["failure_detail"] = rollout.detail
        elif not verdict.passed:
            status = "failed"
            metadata["failure"] = f"judge-{verdict.failed[0]}"
        return Trajectory(
            messages=rollout.messages,
            tools=server.tools,
            task=generated.task,
            scores=verdict.scores,
            reward=verdict.scores["overall"],
            status=status,  # type: ignore[arg-type]
            metadata=metadata,
            id=trajectory_id,
        )
