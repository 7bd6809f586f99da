"""Hook implementations of the bundled arenas plugin: an offline environment generator and the
paper's sub-task F1 verifier."""

from __future__ import annotations

from typing import Any

from astra_arenas.options import OfflineWorldOptions, SubtaskF1Options
from astra_core import hookimpl
from astra_core.registry import ComponentBuilder


def offline_world(options: OfflineWorldOptions, builder: ComponentBuilder) -> Any:
    from astra_arenas.generator import OfflineWorldGenerator

    return OfflineWorldGenerator(options, builder)


def subtask_f1(options: SubtaskF1Options, builder: ComponentBuilder) -> Any:
    from astra_arenas.verifier import SubtaskF1Verifier

    return SubtaskF1Verifier(options)


@hookimpl
def astra_register_environment_generators(registry: Any) -> None:
    registry.add(
        "offline-world",
        offline_world,
        options=OfflineWorldOptions,
        description="Offline: multi-hop questions over generated worlds, lookup tools verified "
        "in the sandbox, merged, with banded distractors (no LLM, no network).",
    )


@hookimpl
def astra_register_verifiers(registry: Any) -> None:
    registry.add(
        "subtask-f1",
        subtask_f1,
        options=SubtaskF1Options,
        description="The paper's reward: F1 of sub-question recall and call precision; a "
        "sub-question is solved when a call's output contains its gold answer.",
    )


@hookimpl(trylast=True)
def astra_arena_runtime(arena: Any, sandbox: Any) -> Any:
    from astra_arenas.runtime import ToolCodeRuntime

    return ToolCodeRuntime(arena, sandbox)
