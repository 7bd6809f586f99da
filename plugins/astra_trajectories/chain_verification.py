"""Chain verification by argument-dependency satisfiability (the paper's first check).

A chain is kept when every required parameter of every step can be filled, either from an
earlier step's output (the hand-offs the graph's edge declares, else matched by name, type and
description, as the schema-flow graph does) or from the task (a value a user of the server could
state: the server's scenarios, or the schema's ``examples``/``default``/``enum``), and every
step after the first uses something an earlier step returned. The result is a plan saying
where each argument comes from, which the offline task writer and agent follow. It is the
``chain_verifier`` step of ``offline-chain-walk``; a plugin replaces it by registering another
``trajectory_step`` with ``step = "chain_verifier"``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar, Literal

import attrs

from astra_core.errors import StepRejected
from astra_core.records import Handoff, ToolEdge, ToolServer
from astra_core.tool_schemas import (
    ARRAY_STEP,
    FieldMatch,
    OutputField,
    flow_matches,
    server_scenarios,
    tool_params,
    tool_returns,
)

if TYPE_CHECKING:
    from astra_core.registry import ComponentBuilder
    from astra_trajectories.options import ArgumentDependencyOptions

UNSATISFIABLE = "unsatisfiable-argument"
NO_FLOW = "no-data-flow"
UNKNOWN_TOOL = "unknown-tool"
# Score of a hand-off an edge declares (``ToolEdge.handoffs``), above any derived match.
DECLARED_SCORE = 1.0


class ChainRejected(StepRejected):
    """The chain cannot be run; ``reason`` is counted as ``chain-<reason>``."""


@attrs.frozen
class Binding:
    """Where one argument comes from: the user (``source="user"``) or the output of step
    ``step`` at ``path`` (``"[]"`` in a path: the first element of that array)."""

    param: str
    source: Literal["user", "step"]
    step: int | None = None
    path: tuple[str, ...] = ()
    basis: str = ""
    score: float = 0.0
    field_name: str = ""
    entity: str = ""  # what the value is, for task text ("order", "airport code")

    @property
    def from_array(self) -> bool:
        return ARRAY_STEP in self.path

    def describe(self, tool: str, tools: tuple[str, ...]) -> str:
        if self.source == "user":
            return f"{tool}.{self.param} <- task"
        assert self.step is not None
        path = ".".join(self.path).replace(f".{ARRAY_STEP}", ARRAY_STEP)
        return (
            f"{tool}.{self.param} <- step {self.step + 1} {tools[self.step]}.{path} ({self.basis})"
        )


@attrs.frozen
class StepPlan:
    tool: str
    bindings: tuple[Binding, ...]

    def binding(self, param: str) -> Binding:
        for b in self.bindings:
            if b.param == param:
                return b
        raise KeyError(param)


@attrs.frozen
class ChainPlan:
    server_id: str
    tools: tuple[str, ...]
    steps: tuple[StepPlan, ...]

    @property
    def user_params(self) -> tuple[str, ...]:
        """Parameter names the task must state, in first-use order."""
        out: list[str] = []
        for step in self.steps:
            for b in step.bindings:
                if b.source == "user" and b.param not in out:
                    out.append(b.param)
        return tuple(out)

    def describe(self) -> list[str]:
        return [b.describe(s.tool, self.tools) for s in self.steps for b in s.bindings]


def schema_values(server: ToolServer) -> dict[str, list[Any]]:
    """Values a schema itself offers for a parameter: ``examples``, ``default``, ``enum``."""
    out: dict[str, list[Any]] = {}
    for tool in server.tools:
        properties = (tool["function"].get("parameters") or {}).get("properties") or {}
        for name, schema in properties.items():
            if not isinstance(schema, Mapping):
                continue
            values: list[Any] = []
            if isinstance(schema.get("examples"), list):
                values.extend(schema["examples"])
            if "default" in schema:
                values.append(schema["default"])
            if isinstance(schema.get("enum"), list):
                values.extend(schema["enum"])
            known = out.setdefault(str(name), [])
            for value in values:
                if value not in known:
                    known.append(value)
    return {name: values for name, values in out.items() if values}


def scenarios(server: ToolServer) -> list[dict[str, Any]]:
    """Coherent sets of values a user of the server knows (``ToolServer.scenarios``)."""
    return server_scenarios(server)


def user_known_params(server: ToolServer) -> set[str]:
    known = set(schema_values(server))
    for scenario in scenarios(server):
        known.update(scenario)
    return known


def declared_matches(source: str, handoffs: Sequence[Handoff], param: str) -> list[FieldMatch]:
    """The hand-offs an edge declares for ``param``, as matches a plan takes like derived ones
    (full score: the graph's source knows better than a name match)."""
    out = []
    for handoff in handoffs:
        if handoff.param != param or not handoff.path:
            continue
        names = [p for p in handoff.path if p != ARRAY_STEP]
        field = OutputField(
            source,
            tuple(handoff.path),
            names[-1] if names else param,
            None,
            container=names[-2] if len(names) > 1 else None,
        )
        out.append(FieldMatch(param, field, DECLARED_SCORE, "hand-off given by the graph"))
    return out


class ArgumentDependencyVerifier:
    """Every required argument of every step is satisfiable from the task or earlier outputs.

    Hand-offs prefer the best match, then the nearest step. One object of an earlier output
    feeds at most one parameter of a step (so ``get_event`` -> ``reschedule_event`` does not
    move the event to the very date and time it already has), and a user-known value wins over
    an element of an array of plain values (``comments[]`` does not supply a new comment).
    """

    name: ClassVar[str] = "argument-dependency"
    step: ClassVar[str] = "chain_verifier"

    def __init__(self, options: ArgumentDependencyOptions, builder: ComponentBuilder) -> None:
        self.min_score = options.min_match_score
        self.require_flow = options.require_flow

    def verify(
        self, server: ToolServer, tools: tuple[str, ...], edges: Sequence[ToolEdge] = ()
    ) -> ChainPlan:
        """The plan of ``tools`` on ``server``. Where ``edges`` (the graph's) declare the
        hand-offs of a pair of tools, those are the only ones taken from that earlier step;
        other pairs are matched from the schemas, as the schema-flow graph builder does."""
        returns = tool_returns(server)
        known = user_known_params(server)
        declared = {(e.source, e.target): e.handoffs for e in edges if e.handoffs}
        steps = []
        for index, name in enumerate(tools):
            try:
                tool = server.tool(name)
            except KeyError:
                raise ChainRejected(
                    UNKNOWN_TOOL, f"server {server.title!r} has no tool {name!r}"
                ) from None
            claimed: set[tuple[int, tuple[str, ...]]] = set()
            bindings = []
            for param in tool_params(tool):
                candidates = []
                for j in range(index):
                    handoffs = declared.get((tools[j], name))
                    matches = (
                        declared_matches(tools[j], handoffs, param.name)
                        if handoffs is not None
                        else flow_matches(
                            server.tool(tools[j]),
                            returns.get(tools[j]),
                            param,
                            min_score=self.min_score,
                        )
                    )
                    for match in matches:
                        candidates.append((match.score, j, match))
                candidates.sort(key=lambda c: (-c[0], -c[1]))
                chosen = None
                for _, j, match in candidates:
                    if (j, match.field.object_path) in claimed:
                        continue
                    scalar_list = match.field.path[-1:] == (ARRAY_STEP,)
                    if scalar_list and param.name in known:
                        continue
                    chosen = (j, match)
                    break
                if chosen is not None:
                    j, match = chosen
                    claimed.add((j, match.field.object_path))
                    entity_words = match.field.name.replace("_", " ")
                    if entity_words.endswith(" id"):
                        entity_words = entity_words[:-3]
                    elif entity_words == "id" and match.field.container:
                        entity_words = match.field.container.rstrip("s").replace("_", " ")
                    bindings.append(
                        Binding(
                            param.name,
                            "step",
                            j,
                            match.field.path,
                            match.basis,
                            match.score,
                            match.field.name,
                            entity_words,
                        )
                    )
                elif param.name in known:
                    bindings.append(Binding(param.name, "user"))
                else:
                    raise ChainRejected(
                        UNSATISFIABLE,
                        f"step {index + 1} {name}.{param.name}: no earlier output fills it and "
                        "the user cannot state it",
                    )
            if index > 0 and self.require_flow and all(b.source == "user" for b in bindings):
                raise ChainRejected(
                    NO_FLOW, f"step {index + 1} {name} uses nothing an earlier step returned"
                )
            steps.append(StepPlan(name, tuple(bindings)))
        return ChainPlan(server.id, tuple(tools), tuple(steps))
