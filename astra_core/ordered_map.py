"""Running one function over many items on a thread pool, results in the items' order: how the
LLM-driven samplers and generators overlap their calls (the calls wait on I/O, not the CPU)."""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TypeVar

__all__ = ["ordered_map"]

T = TypeVar("T")
R = TypeVar("R")


def ordered_map(
    fn: Callable[[T], R],
    items: Iterable[T],
    workers: int,
    *,
    window: int | None = None,
    name: str = "astra",
) -> Iterator[tuple[T, R]]:
    """``(item, fn(item))`` in the items' order, at most ``workers`` running at once and at most
    ``window`` (default ``workers``) submitted ahead of the consumer, so one that stops early
    leaves at most that many calls to finish. ``name`` prefixes the threads' names."""
    if workers <= 1:
        for item in items:
            yield item, fn(item)
        return
    ahead = window or workers
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix=name) as pool:
        pending: deque[tuple[T, Future[R]]] = deque()
        for item in items:
            pending.append((item, pool.submit(fn, item)))
            if len(pending) >= ahead:
                done, future = pending.popleft()
                yield done, future.result()
        while pending:
            done, future = pending.popleft()
            yield done, future.result()
