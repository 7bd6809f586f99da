"""The TOML run config.

One file says which stages run and which component each stage uses, with its options::

    [run]
    name = "quickstart"
    seed = 0

    [synth-arenas.generator]
    name = "offline-world"
    count = 120

Loading happens in two steps: ``load_config`` reads the file and checks its shape (no plugins
needed); ``RunConfig.resolve(registry)`` checks every component name against the registered
components and every option against the component's declared options. Both raise a
``ConfigError`` naming the file and the key's dotted path.
"""

from __future__ import annotations

import hashlib
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import attrs

from astra_core.errors import ConfigError
from astra_core.options import (
    ComponentSpec,
    component,
    option,
    options_to_dict,
    structure_options,
    within,
)
from astra_core.records import canonical_json

__all__ = [
    "STAGES",
    "STAGE_SECTIONS",
    "EvalSection",
    "PluginsSection",
    "RunConfig",
    "RunSection",
    "SynthArenasSection",
    "SynthTrajectoriesSection",
    "TrackingSection",
    "TrainSection",
    "load_config",
    "parse_config",
]

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

if False:  # typing only; avoids an import cycle at run time
    from astra_core.registry import ComponentRegistry

# The stages of a run, in the order they always run.
STAGES: tuple[str, ...] = ("synth-trajectories", "synth-arenas", "train-sft", "train-rl", "eval")


@attrs.frozen
class RunSection:
    """The ``[run]`` section: the run's name and seed."""

    name: str = "astra"
    seed: int = 0
    stages: tuple[str, ...] | None = None


@attrs.frozen
class PluginsSection:
    """The ``[plugins]`` section: plugin files to load and plugins to disable."""

    disable: tuple[str, ...] = ()
    files: tuple[str, ...] = ()


@attrs.frozen
class TrackingSection:
    """The ``[tracking]`` section: the trackers metrics go to."""

    trackers: tuple[ComponentSpec, ...] = component("tracker", default=None, factory=tuple)


@attrs.frozen
class SynthTrajectoriesSection:
    """The ``[synth-trajectories]`` section: its source, sampler and limit."""

    source: ComponentSpec = component("tool_graph_source")
    sampler: ComponentSpec = component("trajectory_sampler")
    limit: int | None = attrs.field(
        default=None, metadata={"help": "stop after this many trajectories"}
    )
    shard_size: int = 1000


@attrs.frozen
class SynthArenasSection:
    # One generator, or a list of them (``[[synth-arenas.generator]]`` tables): their arenas
    # go into one dataset, in turn, so arenas of several kinds mix in the later stages.
    """The ``[synth-arenas]`` section: its generator(s), limit and held-out fraction."""

    generator: ComponentSpec | tuple[ComponentSpec, ...] = component("environment_generator")
    limit: int | None = attrs.field(default=None, metadata={"help": "stop after this many arenas"})
    holdout_fraction: float = option(
        "share of the arenas kept out of training for eval, recorded in each arena's split "
        "(by a hash of its id: the same arena always falls on the same side)",
        0.2,
        within(0, 1),
    )
    shard_size: int = 1000


@attrs.frozen
class TrainSection:
    """The ``[train-sft]`` and ``[train-rl]`` sections: the ``trainer`` each runs."""

    trainer: ComponentSpec = component("trainer")


@attrs.frozen
class EvalSection:
    """The ``[eval]`` section: the ``evaluator`` it runs."""

    evaluator: ComponentSpec = component("evaluator")


STAGE_SECTIONS: dict[str, type] = {
    "synth-trajectories": SynthTrajectoriesSection,
    "synth-arenas": SynthArenasSection,
    "train-sft": TrainSection,
    "train-rl": TrainSection,
    "eval": EvalSection,
}
TOP_LEVEL = ("run", "plugins", "tracking", *STAGES)


@attrs.frozen
class RunConfig:
    """A parsed run config. ``stages`` maps each configured stage to its section object."""

    path: str | None
    run: RunSection
    plugins: PluginsSection
    tracking: TrackingSection
    stages: dict[str, Any]
    raw: dict[str, Any] = attrs.field(repr=False, factory=dict)
    resolved: bool = False

    @property
    def base_dir(self) -> Path:
        return Path(self.path).resolve().parent if self.path else Path.cwd()

    @property
    def stage_order(self) -> tuple[str, ...]:
        """The stages ``astra run`` runs: ``[run] stages`` or every configured one, in order."""
        if self.run.stages is not None:
            return tuple(s for s in STAGES if s in self.run.stages)
        return tuple(s for s in STAGES if s in self.stages)

    def plugin_files(self) -> list[str]:
        return [str((self.base_dir / f).resolve()) for f in self.plugins.files]

    def resolve(self, registry: ComponentRegistry) -> RunConfig:
        """Check component names and options against ``registry``."""

        def resolver(kind: str, spec: ComponentSpec, key: str) -> ComponentSpec:
            return registry.resolve(kind, spec, key=key, file=self.path)

        stages = {
            name: structure_options(
                STAGE_SECTIONS[name],
                self.raw.get(name, {}),
                key=name,
                file=self.path,
                resolve_component=resolver,
            )
            for name in self.stages
        }
        tracking = structure_options(
            TrackingSection,
            self.raw.get("tracking", {}),
            key="tracking",
            file=self.path,
            resolve_component=resolver,
        )
        return attrs.evolve(self, stages=stages, tracking=tracking, resolved=True)

    def stage_hash(self, stage: str) -> str:
        """A hash of one stage's resolved section and the seed: changes when its output would."""
        body = {"seed": self.run.seed, "section": options_to_dict(self.stages[stage])}
        return hashlib.sha256(canonical_json(body).encode()).hexdigest()[:16]


def parse_config(data: Mapping[str, Any], *, path: str | None = None) -> RunConfig:
    """Check the shape of a config mapping (as read from TOML) and return a ``RunConfig``."""
    data = dict(data)
    for key in data:
        if key not in TOP_LEVEL:
            raise ConfigError(
                f"unknown section {key!r}; sections are: {', '.join(TOP_LEVEL)}", path=path, key=key
            )
    run = structure_options(RunSection, data.get("run", {}), key="run", file=path)
    if run.stages is not None:
        for i, stage in enumerate(run.stages):
            if stage not in STAGES:
                raise ConfigError(
                    f"unknown stage {stage!r}; stages are: {', '.join(STAGES)}",
                    path=path,
                    key=f"run.stages[{i}]",
                )
            if stage not in data:
                raise ConfigError(
                    f"stage {stage!r} is listed but has no [{stage}] section",
                    path=path,
                    key="run.stages",
                )
    plugins = structure_options(PluginsSection, data.get("plugins", {}), key="plugins", file=path)
    tracking = structure_options(
        TrackingSection, data.get("tracking", {}), key="tracking", file=path
    )
    stages = {
        name: structure_options(STAGE_SECTIONS[name], data[name], key=name, file=path)
        for name in STAGES
        if name in data
    }
    return RunConfig(
        path=path, run=run, plugins=plugins, tracking=tracking, stages=stages, raw=data
    )


def load_config(path: str | Path) -> RunConfig:
    """Read and shape-check a TOML run config."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read config: {exc.strerror}", path=str(p)) from exc
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"not valid TOML: {exc}", path=str(p)) from exc
    return parse_config(data, path=str(p))
