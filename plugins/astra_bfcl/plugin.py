"""Hook implementations of the bfcl plugin: BFCL multi-turn entries as arenas, and BFCL's
multi-turn checks as a verifier (needs the optional bfcl-eval package)."""

from __future__ import annotations

from typing import Any

from astra_bfcl.options import BfclMultiTurnOptions, BfclVerifierOptions
from astra_core import hookimpl
from astra_core.registry import ComponentBuilder


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
def astra_register_environment_generators(registry: Any) -> None:
    registry.add(
        "bfcl-multi-turn",
        bfcl_multi_turn_generator,
        options=BfclMultiTurnOptions,
        description="BFCL multi-turn entries (base, miss_func, miss_param, long_context) as "
        "arenas whose bfcl-eval classes run in the sandbox (needs bfcl-eval).",
    )


@hookimpl
def astra_register_verifiers(registry: Any) -> None:
    registry.add(
        "bfcl-multi-turn",
        bfcl_multi_turn_verifier,
        options=BfclVerifierOptions,
        description="BFCL's multi-turn checks per turn (instance state, unordered subsequence "
        "of execution results); reward = passed / judged turns (needs bfcl-eval).",
    )


@hookimpl
def astra_arena_runtime(arena: Any, sandbox: Any) -> Any:
    if arena.metadata.get("source") != "bfcl-eval":
        return None
    from astra_bfcl.runtime import BfclRuntime

    return BfclRuntime(arena, sandbox)
