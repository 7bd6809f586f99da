"""Hook implementations of the trajectories plugin: the offline chain-walk sampler."""

from __future__ import annotations

from typing import Any

from astra_core import hookimpl
from astra_core.registry import ComponentBuilder
from astra_trajectories.options import OfflineChainWalkOptions


def offline_chain_walk(options: OfflineChainWalkOptions, builder: ComponentBuilder) -> Any:
    from astra_trajectories.sampler import OfflineChainWalkSampler

    return OfflineChainWalkSampler(options, builder)


@hookimpl
def astra_register_trajectory_samplers(registry: Any) -> None:
    registry.add(
        "offline-chain-walk",
        offline_chain_walk,
        options=OfflineChainWalkOptions,
        description="Offline (no LLM): seeded random-walk chains of 2-5 tools per server, "
        "argument-dependency verification, template tasks, real execution through a tool "
        "executor, rule-based judge.",
    )
