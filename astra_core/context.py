"""What a component sees of the stage it runs in."""

from __future__ import annotations

import hashlib
import logging
import random
import sys
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any, TypeVar

from astra_core.records import Record, record_type
from astra_core.registry import ComponentBuilder
from astra_core.store import RecordStore

__all__ = ["StageContext"]

T = TypeVar("T")

log = logging.getLogger("astra")


class StageContext:
    """Handed to every stage component (``load(ctx)``, ``sample(graph, ctx)``, ``run(ctx)``...).

    It knows the stage's output directory and store, the run seed, the shard this process owns,
    how to build other components, and where drops, metrics and progress go.
    """

    def __init__(
        self,
        stage: str,
        *,
        run_dir: str | Path,
        builder: ComponentBuilder,
        store: RecordStore | None = None,
        hook: Any = None,
        quiet: bool = False,
        shard: tuple[int, int] = (0, 1),
        trackers: Iterable[Any] = (),
        options: Any = None,
    ) -> None:
        self.stage = stage
        self.run_dir = Path(run_dir)
        self.out_dir = self.run_dir / stage
        self.out_dir.mkdir(parents=True, exist_ok=True)
        self.builder = builder
        self.store = store
        self.hook = hook
        self.quiet = quiet
        self.shard = shard
        self.trackers = list(trackers)
        self.options = options
        self.log = log.getChild(stage)

    @property
    def seed(self) -> int:
        return self.builder.seed

    def rng(self, salt: str = "") -> random.Random:
        """A random generator seeded from the run seed, the stage and ``salt``."""
        return self.builder.rng(f"{self.stage}:{salt}")

    def build(self, kind: str, spec: Any, *, key: str | None = None) -> Any:
        return self.builder.build(kind, spec, key=key)

    # -- records -------------------------------------------------------------------------------

    def seen(self, record_id: str) -> bool:
        """True when the stage already wrote (or dropped) this id: skip the work."""
        return self.store is not None and self.store.seen(record_id)

    def in_shard(self, key: str) -> bool:
        """Whether the work item ``key`` belongs to this process's shard (``--shard i/n``).

        The split hashes the key, so it is the same on every machine and shards never overlap.
        """
        index, count = self.shard
        if count <= 1:
            return True
        digest = int.from_bytes(hashlib.sha256(key.encode("utf-8")).digest()[:8], "big")
        return digest % count == index

    def drop(self, reason: str, record_id: str | None = None, detail: str = "") -> None:
        """Count a dropped candidate under ``reason`` in the manifest (and fire the hook)."""
        if self.store is not None:
            self.store.drop(reason, record_id, detail)
        if self.hook is not None:
            self.hook.astra_record_dropped(
                stage=self.stage, record_id=record_id or "", reason=reason
            )
        self.log.debug("dropped %s: %s %s", record_id or "-", reason, detail)

    def read(self, stage: str, kind: str) -> Iterator[Record]:
        """Read the records another stage of this run wrote (e.g. trajectories for SFT)."""
        yield from RecordStore(self.run_dir / stage, record_type(kind)).iter_records()

    def stage_dir(self, stage: str) -> Path:
        return self.run_dir / stage

    # -- progress and metrics ------------------------------------------------------------------

    def progress(
        self, iterable: Iterable[T], *, total: int | None = None, desc: str = "", unit: str = "it"
    ) -> Iterable[T]:
        """Wrap long work in a progress bar (on stderr; silent with ``--quiet``)."""
        if self.quiet:
            return iterable
        from tqdm.auto import tqdm

        return tqdm(
            iterable,
            total=total,
            desc=desc or self.stage,
            unit=unit,
            file=sys.stderr,
            dynamic_ncols=True,
            leave=False,
        )

    def log_metrics(self, metrics: Mapping[str, float], step: int) -> None:
        """Send one step's metrics to every tracker and to ``astra_train_step_end``."""
        for tracker in self.trackers:
            tracker.log(metrics, step)
        if self.hook is not None:
            self.hook.astra_train_step_end(stage=self.stage, step=step, metrics=dict(metrics))
