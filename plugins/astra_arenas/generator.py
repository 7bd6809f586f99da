"""The ``offline-world`` environment generator: verified arenas with no LLM and no network.

Per arena (all randomness from the run seed, ``seed_offset`` and the arena's index, so a re-run,
a resumed run and every shard build the same arena for the same index):

1. a fresh world of entities and facts, and a question of the scheduled topology over it with
   its answer and decomposition (``questions.py``);
2. structural validation of the decomposition (``structure.py``);
3. one lookup tool per tool-needing sub-question (template + data table holding the needed fact
   and other rows) with a gold call; accepted only when the call, run in the sandbox, prints the
   gold sub-answer; a failing tool is re-drawn up to ``max_attempts`` times;
4. homogeneous tools merged, every gold call re-run after each merge (``merging.py``);
5. distractor tools from the similarity bands (``distractors.py``), with data about entities of
   no question;
6. a final replay of every gold call (and one call per distractor) on the assembled arena, and
   the full structural validation. Any failure drops the candidate with its reason.
"""

from __future__ import annotations

import random
import threading
from collections import deque
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from astra_arenas.merging import GoldStep, MergeError, merge_homogeneous
from astra_arenas.names import NameForge, NamesExhausted
from astra_arenas.options import OfflineWorldOptions
from astra_arenas.questions import LeafStep, PlanError, QAPlan, QuestionBuilder, ToolStep
from astra_arenas.relations import RELATIONS, WORLD_RELATIONS, relation
from astra_arenas.tool_code import ToolDraft, gold_call
from astra_arenas.world import World, build_world, decoy_rows, format_value
from astra_core.arena_structure import decomposition_problems, topology_of, validate_structure
from astra_core.arena_verification import CheckResult, GoldCheck, run_checks
from astra_core.context import StageContext
from astra_core.distractor_bands import DistractorSampler, PoolTool
from astra_core.options import options_to_dict
from astra_core.records import Arena, SubQuestion, content_id
from astra_core.registry import ComponentBuilder
from astra_core.tool_similarity import make_embedder, tool_doc

NAME = "offline-world"
_ORDER = {r.name: i for i, r in enumerate(RELATIONS)}
# Identity-changing options added after arenas were first built, with their defaults.
_ADDED_LATER: dict[str, object] = {
    "relations": (),
    "offer": "needed",
    "familiar_names": 0.0,
    "name_syllables": 0,
}


class ArenaRejected(Exception):
    """A candidate arena failed a check; ``reason`` is the manifest's drop category."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


def topology_schedule(weights: dict[str, float], count: int) -> list[str]:
    """Smooth weighted round robin: every topology with weight > 0 appears early and in
    proportion, and arena ``i`` gets the same topology whatever ``count`` is."""
    active = [(t, w) for t, w in weights.items() if w > 0]
    total = sum(w for _, w in active)
    credit = dict.fromkeys((t for t, _ in active), 0.0)
    order = []
    for _ in range(count):
        for t, w in active:
            credit[t] += w
        best = max(credit, key=lambda t: credit[t])
        credit[best] -= total
        order.append(best)
    return order


def tool_pool() -> list[PoolTool]:
    """Every relation template as a pool tool (the global pool distractors come from)."""
    return [PoolTool(r.name, r.domain, tool_doc(r.schema())) for r in RELATIONS]


class OfflineWorldGenerator:
    """Yields verified arenas of all four topologies from generated worlds."""

    def __init__(self, options: OfflineWorldOptions, builder: ComponentBuilder) -> None:
        self.options = options
        self.builder = builder
        self.sandbox = builder.build("sandbox", options.sandbox, key="offline-world.sandbox")
        self._sampler: DistractorSampler | None = None
        # What changes an arena's content; count, sandbox and timeouts do not.
        body = options_to_dict(options)
        for key in ("count", "sandbox", "timeout_s", "workers"):
            body.pop(key, None)
        # Options added later leave the ids of arenas built without them unchanged.
        for key, default in _ADDED_LATER.items():
            if getattr(options, key) == default:
                body.pop(key)
        self._identity = body
        self.stats = {"sandbox_runs": 0, "retries": 0, "merges": 0}
        self._lock = threading.Lock()
        self.relations = (
            tuple(relation(n) for n in options.relations) if options.relations else WORLD_RELATIONS
        )

    @property
    def sampler(self) -> DistractorSampler:
        if self._sampler is None:
            self._sampler = DistractorSampler(
                tool_pool(),
                make_embedder(self.options.embedder),
                high=self.options.band_high,
                low=self.options.band_low,
            )
        return self._sampler

    def arena_id(self, seed: int, index: int) -> str:
        return content_id(NAME, self._identity, seed, index)

    def generate(self, ctx: StageContext) -> Iterator[Arena]:
        o = self.options
        schedule = topology_schedule(o.topologies, o.count)
        _ = self.sampler  # built once, before worker threads share it
        todo = (
            (index, arena_id)
            for index in range(o.count)
            if ctx.in_shard(arena_id := self.arena_id(ctx.seed, index)) and not ctx.seen(arena_id)
        )
        bar = ctx.progress(iter(todo), total=o.count, desc=NAME, unit="arena")
        # A build mostly waits on sandbox processes, so a few run at once; results keep their
        # index order, so the output file is the same for any number of workers.
        with ThreadPoolExecutor(max_workers=o.workers, thread_name_prefix=NAME) as pool:
            pending: deque[tuple[str, Future[Arena]]] = deque()
            for index, arena_id in bar:
                pending.append(
                    (arena_id, pool.submit(self.build, ctx.seed, index, schedule[index], arena_id))
                )
                if len(pending) >= 2 * o.workers:
                    yield from self._finish(ctx, pending.popleft())
            while pending:
                yield from self._finish(ctx, pending.popleft())

    @staticmethod
    def _finish(ctx: StageContext, item: tuple[str, Future[Arena]]) -> Iterator[Arena]:
        arena_id, future = item
        try:
            yield future.result()
        except ArenaRejected as exc:
            ctx.drop(exc.reason, arena_id, exc.detail)

    # -- one arena -----------------------------------------------------------------------------

    def build(self, seed: int, index: int, topology: str, arena_id: str = "") -> Arena:
        """Build, verify and assemble arena ``index``; raises ``ArenaRejected``."""
        try:
            return self._build(seed, index, topology, arena_id)
        except NamesExhausted as exc:  # this arena's names only: the others draw their own
            raise ArenaRejected("names-exhausted", str(exc)) from exc

    def _build(self, seed: int, index: int, topology: str, arena_id: str) -> Arena:
        o = self.options
        rng = random.Random(f"{NAME}:{seed}:{o.seed_offset}:{index}")
        familiar = (
            o.familiar_names > 0
            and random.Random(f"{NAME}:{seed}:{o.seed_offset}:{index}:cast").random()
            < o.familiar_names
        )
        # a familiar arena's forge replays one fixed sequence: the same cast in every such arena
        forge = NameForge(
            random.Random(f"{NAME}:{seed}:{o.seed_offset}:cast") if familiar else rng,
            o.name_syllables,
        )
        world = build_world(rng, forge, o.world_size)
        builder = QuestionBuilder(
            world,
            rng,
            min_hops=o.min_hops,
            max_hops=o.max_hops,
            max_branches=o.max_branches,
            leaf_probability=o.leaf_probability,
            relations=self.relations,
        )
        try:
            plan = builder.build(topology)
        except PlanError as exc:
            raise ArenaRejected("plan-failed", str(exc)) from exc
        subquestions = [self._subquestion(s) for s in plan.steps]
        problems = decomposition_problems(subquestions)
        if topology_of(subquestions) != topology:
            problems.append(f"decomposition forms {topology_of(subquestions)!r}, not {topology!r}")
        if problems:
            raise ArenaRejected("structure-invalid", "; ".join(problems))

        steps = self._verified_steps(plan, world, rng)
        try:
            merged, reruns = merge_homogeneous(steps, self._run, enabled=o.merge)
        except MergeError as exc:
            raise ArenaRejected(exc.reason, exc.detail) from exc
        self._count("merges", reruns)

        tools = {m.draft.name: m.draft for m in merged}
        gold_answers = {s.answer for s in steps}
        bands = self.sampler.sample(sorted(tools), o.distractors_per_band, rng)
        distractors: dict[str, ToolDraft] = {}
        for band in ("high", "medium", "low"):
            for name in bands[band]:
                distractors[name] = self._decoy(name, rng, forge, gold_answers)
        if o.offer == "all":
            for rel in self.relations:
                if rel.name not in tools and rel.name not in distractors:
                    distractors[rel.name] = self._decoy(rel.name, rng, forge, gold_answers)

        calls = {s.id: s.call for s in steps}
        tool_of = {s.id: s.draft.name for s in steps}
        final_subs = tuple(
            sq
            if not sq.needs_tool
            else SubQuestion(
                sq.id, sq.question, sq.answer, sq.depends_on, True, tool_of[sq.id], calls[sq.id]
            )
            for sq in subquestions
        )
        every = {**tools, **distractors}
        if o.offer == "all":  # one order for every arena, so every prompt starts alike
            every = dict(sorted(every.items(), key=lambda item: _ORDER[item[0]]))
        arena = Arena(
            question=plan.question,
            answer=plan.answer,
            topology=plan.topology,  # type: ignore[arg-type]
            subquestions=final_subs,
            tools=tuple(d.schema() for d in every.values()),
            tool_code={name: d.code() for name, d in every.items()},
            distractors=tuple(distractors),
            domain=steps[0].draft.relation.domain,
            metadata={
                "generator": NAME,
                "index": index,
                "seed": seed,
                "hops": plan.hops,
                "tool_domains": {n: d.relation.domain for n, d in every.items()},
                "distractor_bands": bands,
                "merged": {m.draft.name: list(m.members) for m in merged if len(m.members) > 1},
                "embedder": o.embedder,
                "names": dict(forge.issued),  # name -> entity kind, for renamed copies
                "name_syllables": o.name_syllables,
                **({"familiar_names": True} if familiar else {}),
            },
            id=arena_id,
        )
        self._final_replay(arena, distractors)
        problems = validate_structure(arena)
        if problems:
            raise ArenaRejected("structure-invalid", "; ".join(problems))
        return arena

    @staticmethod
    def _subquestion(step: ToolStep | LeafStep) -> SubQuestion:
        if isinstance(step, ToolStep):
            return SubQuestion(step.id, step.question, step.answer, step.depends_on, True)
        return SubQuestion(step.id, step.question, step.answer, step.depends_on, False)

    def _count(self, key: str, n: int) -> None:
        with self._lock:  # builds run in worker threads
            self.stats[key] += n

    def _run(self, units: Any, checks: Sequence[GoldCheck]) -> list[CheckResult]:
        self._count("sandbox_runs", 1)
        return run_checks(self.sandbox, units, checks, timeout_s=self.options.timeout_s)

    def _draft(self, step: ToolStep, world: World, rng: random.Random) -> ToolDraft:
        others = [row for row in world.rows(step.relation) if row[0] != step.subject]
        extra = rng.sample(others, min(self.options.extra_rows, len(others)))
        return ToolDraft(step.relation, tuple(sorted([(step.subject, _raw(world, step)), *extra])))

    def _verified_steps(self, plan: QAPlan, world: World, rng: random.Random) -> list[GoldStep]:
        """A tool and a gold call per tool step, each accepted by a sandbox run."""
        todo = {s.id: s for s in plan.tool_steps}
        accepted: dict[str, GoldStep] = {}
        last_failures: list[CheckResult] = []
        for attempt in range(self.options.max_attempts):
            if not todo:
                break
            if attempt:
                self._count("retries", len(todo))
            candidates = {
                sid: GoldStep(
                    sid, self._draft(s, world, rng), gold_call(s.relation, s.subject), s.answer
                )
                for sid, s in todo.items()
            }
            units = {sid: c.draft.code() for sid, c in candidates.items()}
            checks = [GoldCheck(sid, sid, c.call, c.answer) for sid, c in candidates.items()]
            last_failures = []
            for result in self._run(units, checks):
                if result.passed:
                    accepted[result.key] = candidates[result.key]
                    del todo[result.key]
                else:
                    last_failures.append(result)
        if todo:
            raise ArenaRejected(
                "gold-call-failed",
                f"after {self.options.max_attempts} attempts: "
                + "; ".join(f"{r.key} {r.call.name}: {r.reason}" for r in last_failures),
            )
        return [accepted[s.id] for s in plan.tool_steps]

    def _decoy(self, name: str, rng: random.Random, forge: NameForge, gold: set[str]) -> ToolDraft:
        rel = relation(name)
        rows: list[tuple[str, Any]] = []
        while not rows:  # a decoy never prints a gold answer; names are fresh by construction
            rows = [
                row
                for row in decoy_rows(rel, rng, forge, self.options.decoy_rows)
                if format_value(row[1]) not in gold
            ]
        return ToolDraft(rel, tuple(sorted(rows)))

    def _final_replay(self, arena: Arena, distractors: dict[str, ToolDraft]) -> None:
        checks = [
            GoldCheck(sq.id, sq.call.name, sq.call, sq.answer)
            for sq in arena.needed
            if sq.call is not None
        ]
        for name, draft in distractors.items():
            subject, value = draft.rows[0]
            checks.append(
                GoldCheck(
                    f"distractor:{name}",
                    name,
                    gold_call(draft.relation, subject),
                    format_value(value),
                )
            )
        failed = [r for r in self._run(arena.tool_code, checks) if not r.passed]
        if failed:
            raise ArenaRejected(
                "replay-failed", "; ".join(f"{r.key} {r.call.name}: {r.reason}" for r in failed)
            )


def _raw(world: World, step: ToolStep) -> Any:
    return world.value(step.relation, step.subject)
