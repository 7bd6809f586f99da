"""The stages of a run. Each stage object works alone from Python::

    stage = SynthArenasStage(config.stages["synth-arenas"])
    summary = run_stage(stage, config, plugins, out_dir)

Synthesis stages compose the components their section names (source -> sampler, generator) and
write records through the store; training stages hand the whole stage to a ``trainer``, the
eval stage to an ``evaluator``.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import Any, ClassVar

import attrs

from astra_core._splits import is_holdout
from astra_core.config import (
    EvalSection,
    SynthArenasSection,
    SynthTrajectoriesSection,
    TrainSection,
)
from astra_core.context import StageContext
from astra_core.options import ComponentSpec
from astra_core.records import Arena, Record, Trajectory
from astra_core.store import RecordStore

__all__ = [
    "STAGE_CLASSES",
    "EvalStage",
    "Stage",
    "SynthArenasStage",
    "SynthTrajectoriesStage",
    "TrainRLStage",
    "TrainSFTStage",
    "TrainerStage",
]


class Stage:
    """Base of the stages. ``record_cls`` is the record a synthesis stage writes (or ``None``)."""

    name: ClassVar[str] = ""
    record_cls: ClassVar[type[Record] | None] = None

    def __init__(self, section: Any) -> None:
        self.section = section

    @property
    def shard_size(self) -> int:
        return int(getattr(self.section, "shard_size", 1000))

    def open_store(self, ctx_dir: Any) -> RecordStore | None:
        if self.record_cls is None:
            return None
        return RecordStore(ctx_dir, self.record_cls, shard_size=self.shard_size).open()

    def execute(self, ctx: StageContext) -> Mapping[str, Any]:
        """Do the stage's work; return metrics for the summary."""
        raise NotImplementedError

    # Shared by synthesis stages: filter, write, fire hooks, honour ``limit``.
    def emit(self, ctx: StageContext, records: Iterable[Record]) -> None:
        assert ctx.store is not None
        limit = getattr(self.section, "limit", None)
        for record in records:
            if limit is not None and len(ctx.store) >= limit:
                break
            if getattr(record, "status", "ok") == "failed":
                metadata = getattr(record, "metadata", {})
                reason = str(metadata.get("failure", "failed"))
                ctx.drop(reason, record.id, str(metadata.get("failure_detail", "")))
                continue
            if ctx.hook is not None:
                reason = ctx.hook.astra_filter_record(stage=self.name, record=record)
                if reason:
                    ctx.drop(str(reason), record.id)
                    continue
            if ctx.store.write(record) and ctx.hook is not None:
                ctx.hook.astra_record_kept(stage=self.name, record=record)

    def limit_reached(self, ctx: StageContext) -> bool:
        limit = getattr(self.section, "limit", None)
        return limit is not None and ctx.store is not None and len(ctx.store) >= limit


class SynthTrajectoriesStage(Stage):
    """Tool graphs from a ``tool_graph_source``, trajectories from a ``trajectory_sampler``.
    Its metric ``servers`` is the number of tool servers the dataset's trajectories come from."""

    name = "synth-trajectories"
    record_cls = Trajectory
    section: SynthTrajectoriesSection

    def execute(self, ctx: StageContext) -> Mapping[str, Any]:
        source = ctx.build("tool_graph_source", self.section.source, key=f"{self.name}.source")
        sampler = ctx.build("trajectory_sampler", self.section.sampler, key=f"{self.name}.sampler")
        for graph in source.load(ctx):
            if self.limit_reached(ctx):
                break
            self.emit(ctx, sampler.sample(graph, ctx))
        # Counted in the dataset, not in this attempt's loop: a resumed run that found its limit
        # already reached samples no server, yet its dataset still covers them.
        assert ctx.store is not None
        servers = {t.task.server_id for t in ctx.store.iter_records() if isinstance(t, Trajectory)}
        return {"servers": len(servers)}


class SynthArenasStage(Stage):
    """Arenas from one ``environment_generator`` or several in turn, each arena's train /
    held-out split decided here."""

    name = "synth-arenas"
    record_cls = Arena
    section: SynthArenasSection

    def execute(self, ctx: StageContext) -> Mapping[str, Any]:
        specs = self.section.generator
        if isinstance(specs, ComponentSpec):
            specs = (specs,)
            keys = [f"{self.name}.generator"]
        else:
            keys = [f"{self.name}.generator[{i}]" for i in range(len(specs))]
        metrics: dict[str, Any] = {}
        for spec, key in zip(specs, keys, strict=True):
            if self.limit_reached(ctx):
                break
            generator = ctx.build("environment_generator", spec, key=key)
            self.emit(ctx, self.split(generator.generate(ctx)))
            # a generator's own counts (LLM calls per step, sandbox runs...) go to the manifest
            stats = getattr(generator, "stats", None)
            if isinstance(stats, Mapping) and stats:
                metrics[spec.name if len(keys) == 1 else key] = dict(stats)
        return metrics

    def split(self, arenas: Iterable[Arena]) -> Iterator[Arena]:
        """Each arena with its train / held-out side decided here, once for every later stage
        (an arena the generator already placed keeps its side)."""
        fraction = self.section.holdout_fraction
        for arena in arenas:
            if not arena.split:
                side = "holdout" if is_holdout(arena.id, fraction) else "train"
                arena = attrs.evolve(arena, split=side)
            yield arena


class TrainerStage(Stage):
    """A stage run entirely by the ``trainer`` (training) or ``evaluator`` (eval) its section
    names: the field's name is also the component's kind."""

    section: TrainSection | EvalSection

    def execute(self, ctx: StageContext) -> Mapping[str, Any]:
        if isinstance(self.section, TrainSection):
            kind, spec = "trainer", self.section.trainer
        else:
            kind, spec = "evaluator", self.section.evaluator
        component = ctx.build(kind, spec, key=f"{self.name}.{kind}")
        return dict(component.run(ctx) or {})


class TrainSFTStage(TrainerStage):
    name = "train-sft"


class TrainRLStage(TrainerStage):
    name = "train-rl"


class EvalStage(TrainerStage):
    name = "eval"


STAGE_CLASSES: dict[str, type[Stage]] = {
    cls.name: cls
    for cls in (SynthTrajectoriesStage, SynthArenasStage, TrainSFTStage, TrainRLStage, EvalStage)
}
