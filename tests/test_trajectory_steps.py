"""The steps of ``offline-chain-walk`` are registered ``trajectory_step`` components: a plugin
replaces one (here the judge) by name, and the sampler keeps the others."""

from __future__ import annotations

import types
from pathlib import Path
from typing import Any, ClassVar

import attrs
import pytest

from astra_core import hookimpl
from astra_core.context import StageContext
from astra_core.errors import ConfigError
from astra_core.options import ComponentSpec
from astra_core.plugins import load_plugins
from astra_core.protocols import TrajectoryStep
from astra_core.records import Trajectory
from astra_core.registry import ComponentBuilder
from astra_core.store import RecordStore


@attrs.frozen
class Verdict:
    scores: dict[str, float]
    failed: tuple[str, ...] = ()

    @property
    def passed(self) -> bool:
        return not self.failed


class CountingJudge:
    """Passes every trajectory; its score is the number of calls made."""

    step: ClassVar[str] = "judge"

    def judge(self, messages: Any, tools: Any, *, results: Any, target_tools: Any) -> Verdict:
        return Verdict({"calls": float(len(results)), "overall": 0.25})


class MisplacedStep:
    step: ClassVar[str] = "agent"


@hookimpl
def astra_register_trajectory_steps(registry: Any) -> None:
    registry.add("counting-judge", lambda options, builder: CountingJudge())
    registry.add("misplaced", lambda options, builder: MisplacedStep())


def builder_with_plugin() -> ComponentBuilder:
    plugin = types.ModuleType("counting_judge")
    plugin.astra_register_trajectory_steps = astra_register_trajectory_steps  # type: ignore[attr-defined]
    return ComponentBuilder(load_plugins(objects=[("counting-judge", plugin)]).registry, seed=0)


def sample(tmp_path: Path, **options: Any) -> list[Trajectory]:
    builder = builder_with_plugin()
    store = RecordStore(tmp_path / "synth-trajectories", Trajectory).open()
    ctx = StageContext(
        "synth-trajectories", run_dir=tmp_path, builder=builder, store=store, quiet=True
    )
    source = builder.build(
        "tool_graph_source", ComponentSpec("bundled-catalog", {"servers": ["shop"]})
    )
    spec = ComponentSpec("offline-chain-walk", {"max_chains_per_server": 4, **options})
    sampler = builder.build("trajectory_sampler", spec)
    out = [t for graph in source.load(ctx) for t in sampler.sample(graph, ctx)]
    store.close()
    return out


def test_the_bundled_steps_are_registered_for_their_slots():
    builder = builder_with_plugin()
    names = builder.registry.names("trajectory_step")
    assert {"argument-dependency", "offline-template", "offline-chain-executor"} <= set(names)
    judge = builder.build("trajectory_step", "offline-rules")
    assert isinstance(judge, TrajectoryStep) and judge.step == "judge"


def test_a_plugin_replaces_the_judge_alone(tmp_path: Path):
    bundled = sample(tmp_path / "bundled")
    replaced = sample(tmp_path / "replaced", judge="counting-judge")
    # the same chains, tasks and rollouts; only the judging differs
    assert [t.messages for t in replaced] == [t.messages for t in bundled]
    assert replaced and all(t.status == "ok" and t.reward == 0.25 for t in replaced)
    for trajectory in replaced:
        assert trajectory.scores["calls"] == len(trajectory.tool_calls)
        assert trajectory.metadata["judge"] == "counting-judge"


def test_a_step_in_the_wrong_slot_or_unknown_is_refused():
    builder = builder_with_plugin()
    with pytest.raises(ConfigError, match="judge: 'misplaced' fills the agent slot, not judge"):
        builder.build(
            "trajectory_sampler", ComponentSpec("offline-chain-walk", {"judge": "misplaced"})
        )
    with pytest.raises(ConfigError, match="agent: unknown choice 'llm-agent'"):
        builder.build(
            "trajectory_sampler", ComponentSpec("offline-chain-walk", {"agent": "llm-agent"})
        )
