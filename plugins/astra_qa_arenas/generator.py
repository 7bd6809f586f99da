"""The ``qa-llm`` environment generator: arenas from a user's questions and an LLM (paper §2.2).

Each step is an ``arena_step`` chosen by name in the options (docs/hooks.md), so a plugin
replaces one alone; the steps receive the run's LLM wrapped so that its calls are counted per
step, and the sandbox. In three passes over the source's items:

1. per item: decomposition (``decomposer``), the tool-necessity check and the leaf rule
   (``necessity_checker``), the four quality scores (``quality_scorer``);
2. the instances whose mean quality is at the cut (top ``keep_top`` of the scored ones, or
   ``quality_threshold``) get a verified tool per tool sub-question (``tool_writer``; the tools
   of one instance are written at once), then the tools of one intent are merged
   (``tool_merger``);
3. per instance: distractor tools from the other instances' tools by similarity band (other
   domains only), the arena assembled (the LLM's code in ``tool_code``, marked
   ``tool_code_origin = "llm"``), every gold call and one call per distractor replayed in the
   sandbox, and the core's structural checks.

``workers`` items, tools and replays are worked on at once in each pass (the LLM requests are
further bounded by the backend's ``max_concurrency``); the output does not depend on it.
Every candidate that fails goes to ``dropped.jsonl`` as ``<step>-<reason>`` with the detail; the
stage's manifest counts the LLM calls, tokens and cache hits per step (``stats``). An arena's id
depends on its item and on the options that shape it, so a resumed run skips what it wrote or
dropped (the quality cut is then taken over the items still to do).
"""

from __future__ import annotations

import random
import threading
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING, Any, TypeVar

import attrs

from astra_core.arena_structure import topology_of, validate_structure
from astra_core.arena_synthesis import (
    ARENA_STEP_SLOTS,
    QUALITY_SCORES,
    QAInstance,
    QAItem,
    ToolEnvironment,
)
from astra_core.arena_verification import GoldCheck, arena_checks, run_checks
from astra_core.distractor_bands import BANDS, DistractorSampler, PoolTool
from astra_core.errors import StepRejected
from astra_core.options import options_fingerprint, options_to_dict
from astra_core.ordered_map import ordered_map
from astra_core.records import Arena, SubQuestion, content_id
from astra_core.sandbox_policy import LLM_WRITTEN, TOOL_CODE_ORIGIN, require_isolation
from astra_core.tool_similarity import make_embedder, tool_doc
from astra_qa_arenas.llm_calls import LLMUsage, StepLLM
from astra_qa_arenas.options import QALLMOptions
from astra_qa_arenas.quality_scores import quality, selection_cutoff

if TYPE_CHECKING:
    from astra_core.context import StageContext
    from astra_core.registry import ComponentBuilder

NAME = "qa-llm"
STEP_KIND = "arena_step"
# Options that change how the work is done, not what it produces: out of the arenas' ids.
OPERATIONAL_OPTIONS = frozenset(
    {
        "workers",
        "timeout_s",
        "sandbox",
        "base_url",
        "api_key_env",
        "max_retries",
        "max_wait_s",
        "backoff",
        "max_concurrency",
        "headers",
        "cache_dir",
        "cache_mode",
        "keep_top",
        "quality_threshold",
        "max_items",
    }
)
T = TypeVar("T")
R = TypeVar("R")


@attrs.frozen
class Rejected:
    """A candidate a step turned down: the manifest's reason and the detail."""

    reason: str
    detail: str


def _overlapped(fn: Callable[[T], R], items: Iterable[T], workers: int) -> Iterator[tuple[T, R]]:
    """``ordered_map`` with two items a worker submitted ahead, so a slow item at the head
    does not leave the other workers idle."""
    return ordered_map(fn, items, workers, window=2 * workers, name=NAME)


class CountingSandbox:
    """The run's sandbox, counting its runs (isolation attributes pass through)."""

    def __init__(self, sandbox: Any, counts: Counter[str], lock: threading.Lock) -> None:
        self._sandbox = sandbox
        self._counts = counts
        self._lock = lock

    def run(self, code: str, *, timeout_s: float | None = None) -> Any:
        with self._lock:
            self._counts["sandbox_runs"] += 1
        return self._sandbox.run(code, timeout_s=timeout_s)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._sandbox, name)


def _prefixed(step: str, exc: StepRejected) -> Rejected:
    reason = exc.reason if exc.reason.startswith(f"{step}-") else f"{step}-{exc.reason}"
    return Rejected(reason, f"step {step}: {exc.detail}")


class QALLMGenerator:
    """Arenas from questions (or knowledge corpora) and an LLM; see the module docstring."""

    def __init__(self, options: QALLMOptions, builder: ComponentBuilder) -> None:
        self.options = options
        self.llm = builder.build("llm_backend", options.llm, key=f"{NAME}.llm")
        self._lock = threading.Lock()
        self.counts: Counter[str] = Counter()
        self.sandbox = CountingSandbox(
            builder.build("sandbox", options.sandbox, key=f"{NAME}.sandbox"),
            self.counts,
            self._lock,
        )
        self.steps = {
            slot: builder.build_step(STEP_KIND, slot, options) for slot in ARENA_STEP_SLOTS
        }
        self.usage = LLMUsage()
        self.fingerprint = options_fingerprint(NAME, options, OPERATIONAL_OPTIONS)

    @property
    def stats(self) -> dict[str, Any]:
        """Counts for the manifest: LLM calls, tokens and cache hits per step, sandbox runs,
        code versions tried and accepted."""
        with self._lock:
            counts = dict(self.counts)
        return {**self.usage.flat(), **counts}

    def _count(self, key: str, n: int = 1) -> None:
        with self._lock:
            self.counts[key] += n

    def llm_for(self, step: str) -> StepLLM:
        return StepLLM(self.llm, step, self.usage, self.options.sampling)

    def arena_id(self, item: QAItem) -> str:
        return content_id(NAME, self.fingerprint, item.id)

    # -- pass 1: decomposition, necessity, quality ------------------------------------------------

    def prepare(self, item: QAItem) -> QAInstance | Rejected:
        step = "decompose"
        try:
            instance = self.steps["decomposer"].decompose(item, self.llm_for(step))
            step = "necessity"
            instance = self.steps["necessity_checker"].check(instance, self.llm_for(step))
            step = "quality"
            scores = dict(self.steps["quality_scorer"].score(instance, self.llm_for(step)))
        except StepRejected as exc:
            return _prefixed(step, exc)
        bad = [k for k in QUALITY_SCORES if not 0.0 <= float(scores.get(k, -1)) <= 1.0]
        if bad:
            return Rejected("quality-malformed", f"step quality: no score in [0, 1] for {bad}")
        metadata = {**instance.metadata, "origin": item.origin}
        return attrs.evolve(instance, scores=scores, metadata=metadata, id=instance.id)

    # -- pass 2: tools ----------------------------------------------------------------------------

    def tools(self, instance: QAInstance) -> dict[str, ToolEnvironment] | Rejected:
        step = "tool"
        try:
            tools: dict[str, ToolEnvironment] = {}
            needed = [sq.id for sq in instance.subquestions if sq.needs_tool]

            def write(sid: str) -> ToolEnvironment:
                return self.steps["tool_writer"].write(
                    instance, sid, self.llm_for("tool"), self.sandbox
                )

            # one instance's tools are independent of each other: written at once (within
            # ``workers``), so a 4-hop question waits for its slowest tool, not for all four
            for sid, env in _overlapped(write, needed, min(self.options.workers, len(needed))):
                tools[sid] = env
                self._count("tool_versions", env.attempts)
                self._count("tools_accepted")
            step = "merge"
            return dict(
                self.steps["tool_merger"].merge(instance, tools, self.llm_for(step), self.sandbox)
            )
        except StepRejected as exc:
            return _prefixed(step, exc)

    # -- pass 3: distractors, assembly, replay ----------------------------------------------------

    def assemble(
        self,
        arena_id: str,
        instance: QAInstance,
        tools: dict[str, ToolEnvironment],
        sampler: DistractorSampler | None,
        pool: dict[str, tuple[ToolEnvironment, str]],
        seed: int,
    ) -> Arena | Rejected:
        o = self.options
        own = {env.name: env for env in tools.values()}
        gold = {sq.answer for sq in instance.subquestions if sq.needs_tool}
        bands: dict[str, list[str]] = {b: [] for b in BANDS}
        distractors: dict[str, tuple[ToolEnvironment, str]] = {}
        if sampler is not None and o.distractors_per_band > 0:
            drawn = sampler.sample(
                sorted(own), o.distractors_per_band, random.Random(f"{NAME}:{seed}:{arena_id}")
            )
            for band in BANDS:
                for name in drawn[band]:
                    env, answer = pool[name]
                    # a distractor never prints one of this arena's answers
                    if not any(g in env.output for g in gold):
                        distractors[name] = (env, answer)
                        bands[band].append(name)
        subquestions = tuple(
            SubQuestion(
                sq.id,
                sq.question,
                sq.answer,
                sq.depends_on,
                sq.needs_tool,
                tools[sq.id].name if sq.needs_tool else None,
                tools[sq.id].call if sq.needs_tool else None,
            )
            for sq in instance.subquestions
        )
        question = instance.question
        if o.include_context and instance.context:
            question = (
                f"## Some information related to the user\n{instance.context}\n\n"
                f"## Question\n{instance.question}"
            )
        every = {**{n: e for n, e in own.items()}, **{n: e for n, (e, _) in distractors.items()}}
        arena = Arena(
            question=question,
            answer=instance.answer,
            topology=topology_of(subquestions) or instance.topology,  # type: ignore[arg-type]
            subquestions=subquestions,
            tools=tuple(e.schema for e in every.values()),
            tool_code={n: e.code for n, e in every.items()},
            distractors=tuple(distractors),
            domain=instance.domain,
            metadata={
                "generator": NAME,
                TOOL_CODE_ORIGIN: LLM_WRITTEN,
                "origin": instance.metadata.get("origin", ""),
                "scenario": instance.scenario,
                "hops": len(instance.subquestions),
                "hop_levels": {sq.id: sq.hop for sq in instance.subquestions},
                "quality": dict(instance.scores),
                "quality_mean": quality(instance.scores),
                "merged": {
                    n: sorted(s for s, e in tools.items() if e.name == n)
                    for n in own
                    if sum(e.name == n for e in tools.values()) > 1
                },
                "tool_attempts": {s: e.attempts for s, e in tools.items()},
                "distractor_bands": bands,
                "tool_domains": {
                    **dict.fromkeys(own, instance.domain),
                    **{n: sampler.domain(n) for n in distractors if sampler is not None},
                },
                "context": instance.context,
                "llm": options_to_dict(o.llm).get("model", o.llm.name),
            },
            id=arena_id,
        )
        require_isolation(self.sandbox, what=f"LLM-written tool code of arena {arena_id}")
        units, checks = arena_checks(arena)
        checks += [
            GoldCheck(f"distractor:{n}", n, env.call, answer)
            for n, (env, answer) in distractors.items()
        ]
        failed = [
            r
            for r in run_checks(self.sandbox, units, checks, timeout_s=o.timeout_s)
            if not r.passed
        ]
        if failed:
            detail = "; ".join(f"{r.key} {r.call.name}: {r.reason}" for r in failed)
            return Rejected("replay-failed", f"step replay: {detail}")
        problems = validate_structure(arena)
        if problems:
            return Rejected("structure-invalid", "step assemble: " + "; ".join(problems))
        return arena

    def distractor_pool(
        self, built: list[tuple[str, QAInstance, dict[str, ToolEnvironment]]]
    ) -> tuple[DistractorSampler | None, dict[str, tuple[ToolEnvironment, str]]]:
        """The run's tool pool (first tool of each name) and its sampler."""
        pool: dict[str, tuple[ToolEnvironment, str]] = {}
        domains: dict[str, str] = {}
        for _, instance, tools in built:
            for sid, env in tools.items():
                if env.name not in pool:
                    pool[env.name] = (env, instance.sub(sid).answer)
                    domains[env.name] = instance.domain
        if self.options.distractors_per_band <= 0 or len(pool) < 2:
            return None, pool
        sampler = DistractorSampler(
            [PoolTool(n, domains[n], tool_doc(env.schema)) for n, (env, _) in pool.items()],
            make_embedder(self.options.embedder),
            high=self.options.band_high,
            low=self.options.band_low,
        )
        return sampler, pool

    # -- the generator ----------------------------------------------------------------------------

    def generate(self, ctx: StageContext) -> Iterator[Arena]:
        o = self.options
        unique: dict[str, QAItem] = {}
        for item in self.steps["qa_source"].load(ctx):
            unique.setdefault(item.id, item)
        todo = [
            (item, arena_id)
            for item in unique.values()
            if ctx.in_shard(arena_id := self.arena_id(item)) and not ctx.seen(arena_id)
        ]
        self._count("items", len(todo))
        scored: list[tuple[str, QAInstance]] = []
        jobs = ctx.progress(todo, total=len(todo), desc=f"{NAME} decompose", unit="item")
        for (_, arena_id), out in _overlapped(lambda job: self.prepare(job[0]), jobs, o.workers):
            if isinstance(out, Rejected):
                ctx.drop(out.reason, arena_id, out.detail)
            else:
                scored.append((arena_id, out))
        cutoff = selection_cutoff(
            [quality(i.scores) for _, i in scored],
            keep_top=o.keep_top,
            threshold=o.quality_threshold,
        )
        kept: list[tuple[str, QAInstance]] = []
        for arena_id, instance in scored:
            mean = quality(instance.scores)
            if mean >= cutoff:
                kept.append((arena_id, instance))
            else:
                how = (
                    f"threshold {o.quality_threshold}"
                    if o.quality_threshold is not None
                    else f"top {o.keep_top:.0%} of {len(scored)}"
                )
                ctx.drop(
                    "quality-below-cut",
                    arena_id,
                    f"step quality: mean {mean:.3f} < cut {cutoff:.3f} ({how}); {instance.scores}",
                )
        self._count("instances_scored", len(scored))
        built: list[tuple[str, QAInstance, dict[str, ToolEnvironment]]] = []
        jobs2 = ctx.progress(kept, total=len(kept), desc=f"{NAME} tools", unit="instance")
        for (arena_id, instance), out in _overlapped(
            lambda job: self.tools(job[1]), jobs2, o.workers
        ):
            if isinstance(out, Rejected):
                ctx.drop(out.reason, arena_id, out.detail)
            else:
                built.append((arena_id, instance, out))
        sampler, pool = self.distractor_pool(built)
        # the replays are sandbox runs, independent per arena: overlapped like the LLM calls
        for (arena_id, _, _), arena in _overlapped(
            lambda job: self.assemble(*job, sampler, pool, ctx.seed), built, o.workers
        ):
            if isinstance(arena, Rejected):
                ctx.drop(arena.reason, arena_id, arena.detail)
            else:
                yield arena
