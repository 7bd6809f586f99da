"""How the RL trainer and the arena evaluator split their work across processes.

Every process draws the same plan (the arenas of a step, the held-out arenas of an eval) and
takes a *contiguous* share of it: with ``n`` items on ``world`` processes, process ``rank``
takes items ``[rank * ceil(n / world), (rank + 1) * ceil(n / world))``. Gathering the shares in
rank order then gives the items in plan order, so what a process gathers is what one process
would have produced alone.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any, TypeVar

from astra_core.errors import ConfigError

T = TypeVar("T")


def share(count: int, world: int, rank: int) -> range:
    """The contiguous block of ``range(count)`` that process ``rank`` of ``world`` takes (the
    last blocks are shorter, or empty, when ``world`` does not divide ``count``)."""
    per = math.ceil(count / world) if count else 0
    return range(min(rank * per, count), min((rank + 1) * per, count))


def rollout_seed(seed: int, step: int, round_: int, first_group: int) -> int:
    """The torch seed of the rollout batch whose first group is ``first_group`` of a step's
    ``round_``-th fill round: a function of the group, not of the process that rolls it out."""
    return (((seed * 100003 + step) * 1009 + round_) * 1000003 + first_group) % (1 << 63)


def check_split(stage: str, groups_per_step: int, groups_per_rollout: int, world: int) -> None:
    """Refuse a step that cannot be split into whole groups, or whole rollout batches, per
    process."""
    if groups_per_step % world:
        raise ConfigError(
            f"{stage}: groups_per_step = {groups_per_step} is not divisible by the "
            f"{world} processes: each process rolls out whole groups, the same number; "
            f"use a multiple of {world}"
        )
    mine = groups_per_step // world
    if groups_per_rollout and mine % groups_per_rollout:
        raise ConfigError(
            f"{stage}: groups_per_rollout = {groups_per_rollout} does not divide the "
            f"{mine} groups of each of the {world} processes (groups_per_step = "
            f"{groups_per_step}); use a divisor of {mine}, or 0 for one batch per process"
        )


def gather_shares(accelerator: Any, mine: Sequence[T]) -> list[T]:
    """Every process's ``mine``, concatenated in rank order, on every process."""
    if accelerator.num_processes == 1:
        return list(mine)
    from accelerate.utils import gather_object

    per_rank = gather_object([list(mine)])
    return [item for part in per_rank for item in part]


def reduce_sums(accelerator: Any, values: Mapping[str, float]) -> dict[str, float]:
    """``values`` summed over every process; a key some processes lack counts 0 there (a
    process whose share of a short batch was empty has no loss parts)."""
    totals: dict[str, float] = {}
    for part in gather_shares(accelerator, [dict(values)]):
        for key, value in part.items():
            totals[key] = totals.get(key, 0.0) + float(value)
    return totals
