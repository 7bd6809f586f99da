"""Hook implementations of the bundled arenas plugin: an offline environment generator, a
generator of the authors' released RL rows, the paper's sub-task F1 verifier, the arena-family
hooks for any arena (runtime, verifier, renaming, demonstrations) and the ``astra arenas``
command (import / export of released RL rows)."""

from __future__ import annotations

import random
from typing import Any

from astra_arenas.options import OfflineWorldOptions, RlRowsOptions, SubtaskF1Options
from astra_core import hookimpl
from astra_core.protocols import ArenaRuntime, Sandbox
from astra_core.records import Arena, Trajectory
from astra_core.registry import ComponentBuilder, Registrar


def offline_world(options: OfflineWorldOptions, builder: ComponentBuilder) -> Any:
    from astra_arenas.generator import OfflineWorldGenerator

    return OfflineWorldGenerator(options, builder)


def released_rl_rows(options: RlRowsOptions, builder: ComponentBuilder) -> Any:
    from astra_arenas.rl_rows import RlRowsGenerator

    return RlRowsGenerator(options, builder)


def subtask_f1(options: SubtaskF1Options, builder: ComponentBuilder) -> Any:
    from astra_arenas.verifier import SubtaskF1Verifier

    return SubtaskF1Verifier(options)


@hookimpl
def astra_register_environment_generators(registry: Registrar) -> None:
    registry.add(
        "offline-world",
        offline_world,
        options=OfflineWorldOptions,
        description="Offline: multi-hop questions over generated worlds, lookup tools verified "
        "in the sandbox, merged, with banded distractors (no LLM, no network).",
    )
    registry.add(
        "astra-rl-rows",
        released_rl_rows,
        options=RlRowsOptions,
        description="The authors' released RL rows (ASTRA-RL-1k) as arenas, one per row, "
        "unchanged; their tool code is marked LLM-written (isolating sandbox only).",
    )


@hookimpl
def astra_register_verifiers(registry: Registrar) -> None:
    registry.add(
        "subtask-f1",
        subtask_f1,
        options=SubtaskF1Options,
        description="The paper's reward: F1 of sub-question recall and call precision; a "
        "sub-question is solved when a call's output contains its gold answer.",
    )


@hookimpl
def astra_add_commands(subparsers: Any) -> None:
    from astra_arenas.commands import add_arenas_command

    add_arenas_command(subparsers)


# The arena-family hooks answer last, for any arena another plugin left: its tool code runs in
# the sandbox and the paper's reward scores it. Renaming needs the names an offline world records.


@hookimpl(trylast=True)
def astra_arena_runtime(arena: Arena, sandbox: Sandbox) -> ArenaRuntime:
    from astra_arenas.runtime import ToolCodeRuntime

    return ToolCodeRuntime(arena, sandbox)


@hookimpl(trylast=True)
def astra_arena_verifier(arena: Arena) -> str:
    return "subtask-f1"


@hookimpl(trylast=True)
def astra_arena_renamed(arena: Arena, rng: random.Random) -> Arena | None:
    if not arena.metadata.get("names"):
        return None
    from astra_arenas.renaming import fresh_names, renamed_arena

    return renamed_arena(arena, fresh_names(arena, rng), f"~{rng.getrandbits(32):08x}")


@hookimpl(trylast=True)
def astra_arena_demonstrations(
    arena: Arena, sandbox: Sandbox, renamings: int, retries: int, seed: int
) -> list[Trajectory]:
    if any(sq.call is None for sq in arena.needed):
        return []  # no gold calls to replay (imported released rows): nothing to demonstrate
    from astra_arenas.demonstrations import arena_demonstrations

    return arena_demonstrations(arena, sandbox, renamings=renamings, retries=retries, seed=seed)
