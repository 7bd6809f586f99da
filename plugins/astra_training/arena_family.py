"""What the trainers ask of the plugins that know an arena, through the arena-family hooks.

Arenas of several kinds mix in one run (offline worlds, BFCL entries, a third party's), so
nothing here knows a kind: each arena's runtime (``astra_arena_runtime``), verifier
(``astra_arena_verifier``, unless the options name one for all), renamed copy
(``astra_arena_renamed``) and demonstrations (``astra_arena_demonstrations``) come from the
first plugin that answers for it. Which arenas train and which are held out was decided by
``synth-arenas`` and is read from each arena's ``split``.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from astra_core.context import StageContext
from astra_core.errors import AstraError
from astra_core.options import ComponentSpec
from astra_core.protocols import ArenaRuntime, Sandbox, Verifier
from astra_core.records import Arena, Trajectory
from astra_core.registry import ComponentBuilder
from astra_core.sandbox_policy import llm_written, require_isolation

__all__ = [
    "ArenaVerifiers",
    "arena_demonstrations",
    "load_arenas",
    "renamed_arena",
    "runtime_factory",
]


def _kind(arena: Arena) -> str:
    return f"arena {arena.id} (metadata.source {arena.metadata.get('source')!r})"


def _no_hooks(what: str) -> AstraError:
    return AstraError(
        f"{what} come from the plugins' arena hooks: give the plugin manager's hook "
        "(ComponentBuilder(registry, hook=plugins.hook), or hook=plugins.hook)"
    )


def load_arenas(
    ctx: StageContext, stage: str, *, holdout: bool, sandbox: Sandbox | None = None
) -> list[Arena]:
    """The held-out arenas of ``stage`` (``holdout``), or its training ones: as ``synth-arenas``
    split them (an arena no stage split is a training arena). With ``sandbox``, LLM-written
    arenas it may not run are refused now, before a model loads (each episode's runtime would
    refuse them anyway)."""
    arenas = [a for a in ctx.read(stage, "arena") if isinstance(a, Arena) and a.held_out == holdout]
    if not arenas:
        split = "held-out" if holdout else "training"
        hint = " (its holdout_fraction decides the split)" if holdout else ""
        raise AstraError(
            f"{ctx.stage}: no {split} arenas in {ctx.stage_dir(stage)}; run {stage} first{hint}"
        )
    untrusted = [a for a in arenas if llm_written(a)]
    if sandbox is not None and untrusted:
        require_isolation(
            sandbox,
            what=f"the LLM-written tool code of arena {untrusted[0].id} "
            f"({len(untrusted)} such arenas in {ctx.stage_dir(stage)})",
        )
    return arenas


def runtime_factory(sandbox: Sandbox, hook: Any) -> Callable[[Arena], ArenaRuntime]:
    """The runtime of each episode's arena: the first plugin answer to ``astra_arena_runtime``."""
    if hook is None:
        raise _no_hooks("arena runtimes")

    def make(arena: Arena) -> ArenaRuntime:
        runtime = hook.astra_arena_runtime(arena=arena, sandbox=sandbox)
        if runtime is None:
            raise AstraError(
                f"no plugin provides a runtime for {_kind(arena)}: is the plugin that made it "
                "installed and enabled?"
            )
        return runtime

    return make


class ArenaVerifiers:
    """Each arena's verifier: the one ``spec`` names for every arena, else the one its plugin
    names through ``astra_arena_verifier``. Each verifier is built once, with the builder that
    owns (and closes) it."""

    def __init__(
        self, builder: ComponentBuilder, spec: ComponentSpec | None, *, hook: Any, key: str
    ) -> None:
        self.builder = builder
        self.spec = spec
        self.hook = hook
        self.key = key
        self._built: dict[str, Verifier] = {}

    def shared(self) -> Verifier:
        """The verifier the options name for every arena, built now."""
        assert self.spec is not None, "no verifier is named for every arena"
        return self._build(self.spec.name)

    def _build(self, name: str) -> Verifier:
        verifier = self._built.get(name)
        if verifier is None:
            spec = self.spec if self.spec is not None else ComponentSpec(name)
            verifier = self._built[name] = self.builder.build("verifier", spec, key=self.key)
        return verifier

    def name_for(self, arena: Arena) -> str:
        if self.spec is not None:
            return self.spec.name
        if self.hook is None:
            raise _no_hooks("per-arena verifiers")
        name = self.hook.astra_arena_verifier(arena=arena)
        if name is None:
            raise AstraError(
                f"no plugin names a verifier for {_kind(arena)}: name one in the options "
                f"({self.key}) or enable the plugin that made the arena"
            )
        return str(name)

    def __call__(self, arena: Arena) -> Verifier:
        return self._build(self.name_for(arena))

    def for_arenas(self, arenas: Iterable[Arena]) -> dict[str, Verifier]:
        """The verifiers ``arenas`` need, by name, built now (a misnamed one fails here, before
        any rollout)."""
        for arena in arenas:
            self(arena)
        return dict(self._built)


def renamed_arena(hook: Any, arena: Arena, rng: random.Random) -> Arena:
    """``arena`` over fresh names from its plugin (``astra_arena_renamed``), or as it is when
    no plugin renames arenas of its kind."""
    if hook is None:
        raise _no_hooks("renamed arenas")
    copy = hook.astra_arena_renamed(arena=arena, rng=rng)
    return arena if copy is None else copy


def arena_demonstrations(
    hook: Any,
    arenas: Iterable[Arena],
    sandbox: Sandbox,
    *,
    renamings: int,
    retries: int,
    seed: int,
    workers: int = 4,
) -> Iterator[Trajectory]:
    """Each training arena's demonstrations from its plugin, in input order; held-out arenas
    are skipped. A replay mostly waits on its sandbox session starting, so ``workers`` run at
    once."""
    if hook is None:
        raise _no_hooks("arena demonstrations")

    def demos(arena: Arena) -> list[Trajectory]:
        made = hook.astra_arena_demonstrations(
            arena=arena, sandbox=sandbox, renamings=renamings, retries=retries, seed=seed
        )
        if made is None:
            raise AstraError(f"no plugin can demonstrate {_kind(arena)}")
        return list(made)

    training = (a for a in arenas if not a.held_out)
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="arena-demo") as pool:
        for made in pool.map(demos, training):
            yield from made
