"""The paper's adaptive batch filling (§3.2.2, Fig. 5), usable with any RL algorithm.

A rollout group is *valid* when the population std of its rewards is above ``delta`` (a group
where every sample got the same reward has zero advantage everywhere and teaches nothing). Valid
groups are gathered until a batch of ``batch_groups`` is full; valid groups beyond the batch are
carried over to the next step in a buffer holding fewer than one batch, as in the paper
(|buffer| < n). The trainer loop::

    filler = AdaptiveBatchFiller(delta=options.filter_std_delta)
    batch = None
    while batch is None and rounds_left:
        batch, stats = filler.fill(rollout_groups(), batch_groups)
    batch = batch or filler.flush(batch_groups)   # give up: train on what there is

``state_dict()`` / ``load_state_dict()`` save and restore the buffer (plain JSON once the groups'
items are encoded), so a resumed run trains on exactly the groups an unbroken run would.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Generic, TypeVar

T = TypeVar("T")

STATE_VERSION = 1


def default_reward(item: Any) -> float:
    """The reward of a group member: a number, a mapping with ``"reward"``, or an object with a
    ``reward`` attribute (a float, a tensor, or a ``Reward`` record with ``value``)."""
    if isinstance(item, (int, float)) and not isinstance(item, bool):
        return float(item)
    if isinstance(item, Mapping):
        if "reward" not in item:
            raise TypeError(f"AdaptiveBatchFiller: a group item mapping has no 'reward': {item!r}")
        value = item["reward"]
    elif hasattr(item, "reward"):
        value = item.reward
    else:
        raise TypeError(
            f"AdaptiveBatchFiller: cannot read a reward from a {type(item).__name__}; pass "
            "reward=callable"
        )
    if hasattr(value, "value") and not hasattr(value, "item"):  # a Reward record
        value = value.value
    return float(value)


def population_std(values: Sequence[float]) -> float:
    if not values or min(values) == max(values):
        return 0.0  # exactly: the mean of equal floats need not equal them (0.7 * 3 / 3)
    mean = math.fsum(values) / len(values)
    return math.sqrt(math.fsum((v - mean) ** 2 for v in values) / len(values))


class AdaptiveBatchFiller(Generic[T]):
    """Drops groups whose reward std <= ``delta`` and fills batches of valid groups, keeping the
    surplus in a carry-over buffer.

    ``capacity`` caps the buffer (default: one group fewer than the batch, the paper's
    |buffer| < n); surplus beyond it is discarded and counted in ``overflow_groups``.
    """

    def __init__(
        self,
        delta: float = 0.0,
        *,
        capacity: int | None = None,
        reward: Callable[[T], float] = default_reward,
    ) -> None:
        if delta < 0:
            raise ValueError(f"AdaptiveBatchFiller: delta must be >= 0, got {delta}")
        if capacity is not None and capacity < 0:
            raise ValueError(f"AdaptiveBatchFiller: capacity must be >= 0, got {capacity}")
        self.delta = float(delta)
        self.capacity = capacity
        self.reward = reward
        self._buffer: list[list[T]] = []
        self.totals: dict[str, int] = {
            "groups_seen": 0,
            "groups_dropped": 0,
            "groups_overflowed": 0,
            "batches": 0,
        }

    @property
    def buffer(self) -> tuple[list[T], ...]:
        """The carried-over valid groups, oldest first."""
        return tuple(self._buffer)

    def __len__(self) -> int:
        return len(self._buffer)

    def group_std(self, group: Sequence[T]) -> float:
        return population_std([self.reward(item) for item in group])

    def is_valid(self, group: Sequence[T]) -> bool:
        return self.group_std(group) > self.delta

    def fill(
        self, new_groups: Sequence[Sequence[T]], batch_groups: int
    ) -> tuple[list[list[T]] | None, dict[str, float]]:
        """Add freshly rolled-out groups; return ``(batch, stats)`` once ``batch_groups`` valid
        groups are at hand (buffered ones first), else ``(None, stats)``: roll out more."""
        if batch_groups <= 0:
            raise ValueError(f"AdaptiveBatchFiller: batch_groups must be > 0, got {batch_groups}")
        valid = [list(g) for g in new_groups if self.is_valid(g)]
        dropped = len(new_groups) - len(valid)
        buffered = len(self._buffer)
        pool = self._buffer + valid
        batch: list[list[T]] | None = None
        if len(pool) >= batch_groups:
            batch, pool = pool[:batch_groups], pool[batch_groups:]
        capacity = self.capacity if self.capacity is not None else max(batch_groups - 1, 0)
        # Without a batch the pool is below one batch; capacity binds only after one is taken.
        keep = pool if batch is None else pool[:capacity]
        overflow = len(pool) - len(keep)
        self._buffer = keep
        self.totals["groups_seen"] += len(new_groups)
        self.totals["groups_dropped"] += dropped
        self.totals["groups_overflowed"] += overflow
        self.totals["batches"] += int(batch is not None)
        stats = {
            "new_groups": float(len(new_groups)),
            "valid_groups": float(len(valid)),
            "filtered_groups": float(dropped),
            "groups_from_buffer": float(min(buffered, batch_groups) if batch is not None else 0),
            "buffer_size": float(len(self._buffer)),
            "overflow_groups": float(overflow),
            "batch_ready": float(batch is not None),
        }
        return batch, stats

    def flush(self, batch_groups: int) -> list[list[T]]:
        """Take up to ``batch_groups`` buffered groups now (when a trainer stops rolling out and
        trains on a partial batch)."""
        batch, self._buffer = self._buffer[:batch_groups], self._buffer[batch_groups:]
        return batch

    # -- resume ----------------------------------------------------------------------------------

    def state_dict(self, encode: Callable[[T], Any] | None = None) -> dict[str, Any]:
        """The buffer and counters; ``encode`` turns an item into JSON-ready data."""
        enc = encode or (lambda item: item)
        return {
            "version": STATE_VERSION,
            "delta": self.delta,
            "capacity": self.capacity,
            "groups": [[enc(item) for item in group] for group in self._buffer],
            "totals": dict(self.totals),
        }

    def load_state_dict(
        self, state: Mapping[str, Any], decode: Callable[[Any], T] | None = None
    ) -> None:
        """Restore what ``state_dict`` saved; ``decode`` is the inverse of its ``encode``."""
        version = state.get("version")
        if version != STATE_VERSION:
            raise ValueError(
                f"AdaptiveBatchFiller: cannot load buffer state version {version!r} "
                f"(this version reads {STATE_VERSION})"
            )
        dec = decode or (lambda item: item)
        self._buffer = [[dec(item) for item in group] for group in state["groups"]]
        self.totals = {**self.totals, **{k: int(v) for k, v in state.get("totals", {}).items()}}
