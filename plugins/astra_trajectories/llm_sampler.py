"""The ``llm-pipeline`` trajectory sampler: the paper's pipeline 1 with an LLM.

Per server graph:

1. LLM-proposed (task, chain) pairs -> edges (weight = count), unioned with the graph's edges;
2. chains by seeded, weighted, length-bounded random walks (deduplicated, inside the server);
3. chain verification: argument-dependency satisfiability, LLM vote, back-translation;
4. tasks: chain-conditioned and server-only; each scored (five 1-5 dimensions, thresholds from
   the options); the ones that pass are augmented (paraphrase, complexity, persona; same
   language) and the rewrites scored in turn (scoring first saves rewriting tasks that would be
   dropped; every candidate still faces the same filter, as in paper Eq. 1);
5. rollout: the agent loop with the server's tools, calls run by the tool executor;
6. judge: the seven trajectory scores, their mean, the threshold.

What a step turns down is counted with ``ctx.drop(reason, id, detail)``; a trajectory whose
rollout or judge failed is yielded with ``status="failed"`` and ``metadata["failure"]`` (the
stage drops it with that reason). LLM calls that fail after the backend's retries fail the item
that needed them; the run goes on. Chains, tasks and rollouts of a server are worked on
``workers`` at a time, and yielded in a deterministic order.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from functools import partial
from typing import TYPE_CHECKING, Any, TypeVar

from astra_core.options import options_fingerprint
from astra_core.ordered_map import ordered_map
from astra_core.records import Task, ToolChain, ToolGraph, ToolServer, Trajectory, content_id
from astra_trajectories.chain_proposals import ChainProposer, proposal_edges, union_edges
from astra_trajectories.chain_sampling import WalkChainSampler
from astra_trajectories.llm_chain_verification import ChainVerdict, ChainVerifier
from astra_trajectories.llm_options import LLMPipelineOptions
from astra_trajectories.rollout import AgentRollout, Rollout
from astra_trajectories.step_outcomes import Rejected, StepFailed
from astra_trajectories.task_augmentation import TaskAugmenter
from astra_trajectories.task_generation import TaskWriter
from astra_trajectories.task_scoring import TaskScorer
from astra_trajectories.tool_emulator import LLMToolEmulator
from astra_trajectories.trajectory_judge import TrajectoryJudge

if TYPE_CHECKING:
    from astra_core.context import StageContext
    from astra_core.registry import ComponentBuilder

SAMPLER = "llm-pipeline"
# Options that change how the work is done, not what it produces: left out of the fingerprint
# so that moving the LLM server or resizing the pool does not redo a finished run.
OPERATIONAL_OPTIONS = frozenset(
    {
        "workers",
        "base_url",
        "api_key_env",
        "timeout_s",
        "max_retries",
        "max_wait_s",
        "backoff",
        "max_concurrency",
        "headers",
        "cache_dir",
        "cache_mode",
        "call_timeout_s",
        "start_timeout_s",
        "max_starts",
    }
)
T = TypeVar("T")
R = TypeVar("R")


def _ordered(fn: Callable[[T], R], items: Iterable[T], workers: int) -> Iterator[tuple[T, R]]:
    return ordered_map(fn, items, workers, name=SAMPLER)


def _guard(record_id: str, step: Callable[[], R]) -> R | Rejected:
    """A step's result, or its ``StepFailed`` as a rejection of ``record_id``."""
    try:
        return step()
    except StepFailed as exc:
        return Rejected(exc.reason, record_id, exc.detail)


class LLMPipelineSampler:
    def __init__(self, options: LLMPipelineOptions, builder: ComponentBuilder) -> None:
        o = self.options = options
        self.llm = builder.build("llm_backend", o.llm, key="llm")
        self.judge_llm = (
            builder.build("llm_backend", o.judge_llm, key="judge_llm") if o.judge_llm else self.llm
        )
        emulator_llm = (
            builder.build("llm_backend", o.emulator_llm, key="emulator_llm")
            if o.emulator_llm
            else self.llm
        )
        self.executor = builder.build("tool_executor", o.executor, key="executor")
        if isinstance(self.executor, LLMToolEmulator):
            self.executor.bind(emulator_llm)
        s = o.synthesis_sampling
        self.proposer = ChainProposer(
            self.llm, samples=o.proposal_samples, max_length=o.max_length, sampling=s
        )
        self.walker = WalkChainSampler(
            attempts=o.walks_per_server,
            min_length=o.min_length,
            max_length=o.max_length,
            acyclic=o.acyclic,
            max_chains=o.max_chains_per_server,
        )
        self.verifier = ChainVerifier(
            self.llm,
            check_arguments=o.check_arguments,
            vote_samples=o.vote_samples,
            back_translation=o.back_translation,
            sampling=s,
        )
        self.writer = TaskWriter(
            self.llm, tasks_per_chain=o.tasks_per_chain, server_tasks=o.server_tasks, sampling=s
        )
        self.augmenter = TaskAugmenter(
            self.llm,
            modes=o.augmentations,
            variations=o.variations,
            personas=o.personas,
            sampling=s,
        )
        self.scorer = TaskScorer(self.llm, thresholds=o.task_thresholds, sampling=s)
        self.agent = AgentRollout(
            self.llm,
            self.executor,
            max_turns=o.max_turns,
            system_prompt=o.system_prompt,
            sampling=o.agent_sampling,
        )
        self.judge = TrajectoryJudge(
            self.judge_llm,
            threshold=o.judge_threshold,
            max_output_chars=o.judge_max_output_chars,
            sampling=o.judge_sampling,
        )
        # a trajectory's id depends on its task and on these options (models included): a
        # resumed run with the same config recognises the work it already did
        self.fingerprint = options_fingerprint(SAMPLER, options, OPERATIONAL_OPTIONS)

    # -- steps 1-2 -------------------------------------------------------------------------------

    def graph(self, graph: ToolGraph, ctx: StageContext) -> ToolGraph:
        """Step 1: the graph with the LLM-proposed edges added."""
        if not self.options.propose_chains:
            return graph
        found = self.proposer.propose(graph.server)
        for failure in found.failures:
            ctx.drop(failure.reason, graph.server.id, failure.detail)
        return union_edges(graph, proposal_edges(graph.server, found.proposals))

    def chains(self, graph: ToolGraph, ctx: StageContext) -> list[ToolChain]:
        """Step 2: walks on the unioned graph."""
        return self.walker.sample(graph, ctx.rng(f"{SAMPLER}:walks:{graph.server.id}"))

    # -- steps 3-4 -------------------------------------------------------------------------------

    def _drop_rejected(self, ctx: StageContext, items: Iterable[Any]) -> list[Any]:
        kept = []
        for item in items:
            if isinstance(item, Rejected):
                ctx.drop(item.reason, item.id, item.detail)
            else:
                kept.append(item)
        return kept

    def verified(
        self, server: ToolServer, chains: list[ToolChain], ctx: StageContext
    ) -> list[ChainVerdict]:
        todo = [c for c in chains if ctx.in_shard(c.id) and not ctx.seen(c.id)]
        outcomes = _ordered(
            lambda c: _guard(c.id, lambda: self.verifier.verify(server, c)),
            todo,
            self.options.workers,
        )
        return self._drop_rejected(ctx, (outcome for _, outcome in outcomes))

    def base_tasks(
        self, server: ToolServer, verdicts: list[ChainVerdict], ctx: StageContext
    ) -> list[Task]:
        """Chain-conditioned tasks for each verified chain, then server-only tasks."""
        o = self.options
        jobs: list[tuple[str, Callable[[], list[Task | Rejected]]]] = []
        if o.tasks_per_chain:
            for verdict in verdicts:
                chain = verdict.chain
                jobs.append((chain.id, partial(self.writer.for_chain, server, chain)))
        if o.server_tasks:
            for n in o.server_task_tools:
                key = content_id(server.id, "server-tasks", n)
                if ctx.in_shard(key):
                    jobs.append((key, partial(self.writer.for_server, server, n)))
        tasks: list[Any] = []
        for _, outcome in _ordered(lambda job: _guard(job[0], job[1]), jobs, o.workers):
            tasks += [outcome] if isinstance(outcome, Rejected) else outcome
        unique: dict[str, Any] = {}
        for item in self._drop_rejected(ctx, tasks):
            unique.setdefault(item.id, item)
        return [t for t in unique.values() if not ctx.seen(t.id)]

    def scored(self, server: ToolServer, tasks: list[Task], ctx: StageContext) -> list[Task]:
        outcomes = _ordered(
            lambda t: _guard(t.id, lambda: self.scorer.score(server, t)),
            [t for t in tasks if not ctx.seen(t.id)],
            self.options.workers,
        )
        return self._drop_rejected(ctx, (outcome for _, outcome in outcomes))

    def tasks(
        self, server: ToolServer, verdicts: list[ChainVerdict], ctx: StageContext
    ) -> list[Task]:
        """Step 4: scored base tasks, each followed by its scored rewrites."""
        kept = self.scored(server, self.base_tasks(server, verdicts, ctx), ctx)
        if not self.options.augmentations:
            return kept
        rewrites: dict[str, list[Task]] = {}
        outcomes = _ordered(
            lambda t: self.augmenter.augment(t, ctx.rng(f"{SAMPLER}:persona:{t.id}")),
            kept,
            self.options.workers,
        )
        for task, produced in outcomes:
            fresh = [r for r in self._drop_rejected(ctx, produced) if not ctx.seen(r.id)]
            rewrites[task.id] = self.scored(server, fresh, ctx)
        ordered: dict[str, Task] = {}
        for task in kept:
            for item in (task, *rewrites[task.id]):
                ordered.setdefault(item.id, item)
        return list(ordered.values())

    # -- steps 5-6 -------------------------------------------------------------------------------

    def trajectory_id(self, task: Task) -> str:
        return content_id("trajectory", task.id, self.fingerprint)

    def trajectory(self, server: ToolServer, task: Task) -> Trajectory:
        """Roll ``task`` out and judge it: an ok trajectory, or a failed one with its reason."""
        trajectory_id = self.trajectory_id(task)
        metadata: dict[str, Any] = {
            "sampler": SAMPLER,
            "server_id": server.id,
            "server": server.title,
            "domain": server.domain,
            "origin": task.origin,
            "augmentation": task.augmentation,
            "chain": list(task.target_tools) if task.origin == "chain" else None,
            "chain_id": task.chain_id,
            "executor": self.options.executor.name,
        }
        if task.origin == "chain":
            metadata["chain_length"] = len(task.target_tools)

        def failed(reason: str, detail: str, rollout: Rollout | None = None) -> Trajectory:
            messages = rollout.messages if rollout else ({"role": "user", "content": task.query},)
            return Trajectory(
                messages=messages,
                tools=server.tools,
                task=task,
                status="failed",
                metadata={**metadata, "failure": reason, "failure_detail": detail},
                id=trajectory_id,
            )

        try:
            rollout = self.agent.run(server, task, session_key=trajectory_id)
        except StepFailed as exc:
            return failed(exc.reason, exc.detail)
        metadata.update(
            turns=rollout.turns,
            tool_calls=len(rollout.results),
            invalid_calls=list(rollout.invalid_calls),
            injected_failures=rollout.injected_failures,
        )
        if rollout.failure is not None:
            return failed(rollout.failure, rollout.detail, rollout)
        if rollout.invalid_calls and not self.options.keep_invalid_calls:
            return failed("rollout-invalid-call", "; ".join(rollout.invalid_calls), rollout)
        if not rollout.results:
            return failed("rollout-no-tool-call", "the agent answered without a tool", rollout)
        try:
            verdict = self.judge.judge(rollout.messages, server.tools, rollout.results)
        except StepFailed as exc:
            return failed(exc.reason, exc.detail, rollout)
        metadata["judge"] = {
            "threshold": self.options.judge_threshold,
            "not_applicable": list(verdict.not_applicable),
            "reasons": verdict.reasons,
        }
        status = "ok"
        if not verdict.passed:
            status = "failed"
            metadata["failure"] = "judge-below-threshold"
            metadata["failure_detail"] = (
                f"overall {verdict.overall:.3f} < {self.options.judge_threshold:g}"
            )
        return Trajectory(
            messages=rollout.messages,
            tools=server.tools,
            task=task,
            scores=verdict.scores,
            reward=verdict.overall,
            status=status,  # type: ignore[arg-type]
            metadata=metadata,
            id=trajectory_id,
        )

    def sample(self, graph: ToolGraph, ctx: StageContext) -> Iterator[Trajectory]:
        server = graph.server
        graph = self.graph(graph, ctx)
        chains = self.chains(graph, ctx)
        if not chains:
            ctx.drop(
                "no-chains",
                server.id,
                f"{server.title}: no walk of {self.options.min_length}+ tools in its graph",
            )
        verdicts = self.verified(server, chains, ctx)
        tasks = [
            t for t in self.tasks(server, verdicts, ctx) if not ctx.seen(self.trajectory_id(t))
        ]
        rollouts = _ordered(lambda t: self.trajectory(server, t), tasks, self.options.workers)
        for _, trajectory in ctx.progress(
            rollouts, total=len(tasks), desc=server.title, unit="rollout"
        ):
            yield trajectory
