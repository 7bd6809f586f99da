"""Hook implementations of the bfcl plugin: BFCL multi-turn entries as arenas, and BFCL's
multi-turn checks as a verifier (needs the optional bfcl-eval package)."""

from __future__ import annotations

from typing import Any

from astra_bfcl.options import BfclMultiTurnOptions, BfclVerifierOptions
from astra_bfcl.preflight import bfcl_problems
from astra_core import hookimpl
from astra_core.protocols import ArenaRuntime, Sandbox
from astra_core.records import Arena, Trajectory
from astra_core.registry import ComponentBuilder, Registrar


def bfcl_multi_turn_generator(options: BfclMultiTurnOptions, builder: ComponentBuilder) -> Any:
    from astra_bfcl.generator import BfclMultiTurnGenerator

    return BfclMultiTurnGenerator(options, builder)


def bfcl_multi_turn_verifier(options: BfclVerifierOptions, builder: ComponentBuilder) -> Any:
    from astra_bfcl.data import require_bfcl
    from astra_bfcl.verifier import BfclMultiTurnVerifier

    require_bfcl()
    sandbox = builder.build("sandbox", options.sandbox, key="verifier.sandbox")
    return BfclMultiTurnVerifier(options, sandbox)


@hookimpl
def astra_register_environment_generators(registry: Registrar) -> None:
    registry.add(
        "bfcl-multi-turn",
        bfcl_multi_turn_generator,
        options=BfclMultiTurnOptions,
        description="BFCL multi-turn entries (base, miss_func, miss_param, long_context) as "
        "arenas whose bfcl-eval classes run in the sandbox (needs bfcl-eval).",
        preflight=bfcl_problems,
    )


@hookimpl
def astra_register_verifiers(registry: Registrar) -> None:
    registry.add(
        "bfcl-multi-turn",
        bfcl_multi_turn_verifier,
        options=BfclVerifierOptions,
        description="BFCL's multi-turn checks per turn (instance state, unordered subsequence "
        "of execution results); reward = passed / judged turns (needs bfcl-eval).",
        preflight=bfcl_problems,
    )


# BFCL's arenas are recognised by their source: played turn by turn, scored by BFCL's checks,
# never renamed (their instances' state is data, not names) and not demonstrated.


def _is_bfcl(arena: Arena) -> bool:
    return arena.metadata.get("source") == "bfcl-eval"


@hookimpl
def astra_arena_runtime(arena: Arena, sandbox: Sandbox) -> ArenaRuntime | None:
    if not _is_bfcl(arena):
        return None
    from astra_bfcl.runtime import BfclRuntime

    return BfclRuntime(arena, sandbox)


@hookimpl
def astra_arena_verifier(arena: Arena) -> str | None:
    return "bfcl-multi-turn" if _is_bfcl(arena) else None


@hookimpl
def astra_arena_demonstrations(arena: Arena) -> list[Trajectory] | None:
    return [] if _is_bfcl(arena) else None
