"""Call plans of the ``mcp-probe`` sampler: which tools to call, in which order, and where each
required argument comes from.

An argument is filled from (best first) an earlier call's output, when that tool publishes an
output schema with a matching field (the schema-flow matcher of the catalog); a value the
configured scenario states for ``tool.param`` or ``param``; or a value the tool's own schema
offers (``examples``, ``default``, ``enum``, ``const``). A tool whose required arguments cannot
all be filled is not called. Hand-offs guessed from names and descriptions alone are not used:
a probe only passes on values a published schema says are there.
"""

from __future__ import annotations

import json
import random
from collections.abc import Mapping, Sequence
from typing import Any, Literal

import attrs
import jsonschema

from astra_core.records import JSONDict, ToolServer, canonical_json
from astra_core.tool_schemas import (
    ARRAY_STEP,
    flow_matches,
    server_scenarios,
    tool_params,
    tool_returns,
)


class MissingValue(Exception):
    """An earlier output lacks the value a binding points at."""


@attrs.frozen
class Binding:
    """Where one argument comes from: ``user`` (a scenario value), ``schema`` (a value the
    tool's schema offers) or ``step`` (the output of step ``step`` at ``path``; ``"[]"`` in a
    path is the first element of an array)."""

    param: str
    source: Literal["user", "schema", "step"]
    value: Any = None
    step: int | None = None
    path: tuple[str, ...] = ()
    field_name: str = ""

    def describe(self, tool: str, tools: Sequence[str]) -> str:
        if self.source == "step":
            assert self.step is not None
            path = ".".join(self.path).replace(f".{ARRAY_STEP}", ARRAY_STEP)
            return f"{tool}.{self.param} <- step {self.step + 1} {tools[self.step]}.{path}"
        return f"{tool}.{self.param} <- {self.source} {json.dumps(self.value, ensure_ascii=False)}"


@attrs.frozen
class Step:
    tool: str
    bindings: tuple[Binding, ...]


@attrs.frozen
class Plan:
    steps: tuple[Step, ...]
    scenario: int | None = None  # index of the scenario the user values came from

    @property
    def tools(self) -> tuple[str, ...]:
        return tuple(s.tool for s in self.steps)

    @property
    def key(self) -> str:
        """Equal for plans that would make the same calls (the probe's dedup and id key)."""
        return canonical_json([attrs.asdict(s) for s in self.steps])

    def describe(self) -> list[str]:
        return [b.describe(s.tool, self.tools) for s in self.steps for b in s.bindings]

    def user_values(self) -> dict[str, Any]:
        return {
            f"{s.tool}.{b.param}": b.value
            for s in self.steps
            for b in s.bindings
            if b.source != "step"
        }


def is_write_tool(server: ToolServer, tool: str) -> bool:
    """True when the server's MCP annotations say ``tool`` is not read-only. Tools without
    annotations are not known to write (the probe calls them; see ``skip_tools``)."""
    annotations = (server.endpoint or {}).get("annotations") or {}
    hints = annotations.get(tool) if isinstance(annotations, Mapping) else None
    if not isinstance(hints, Mapping) or not hints:
        return False
    return not bool(hints.get("readOnlyHint", False))


def scenarios_of(server: ToolServer) -> list[dict[str, Any]]:
    return server_scenarios(server)


def schema_offers(schema: Mapping[str, Any]) -> list[Any]:
    """Values a parameter's own schema offers: ``examples``, ``default``, ``enum``, ``const``."""
    values: list[Any] = []
    if isinstance(schema.get("examples"), list):
        values.extend(schema["examples"])
    if schema.get("default") is not None:
        values.append(schema["default"])
    if isinstance(schema.get("enum"), list):
        values.extend(schema["enum"])
    if "const" in schema:
        values.append(schema["const"])
    out: list[Any] = []
    for value in values:
        if value not in out:
            out.append(value)
    return out


def fits(value: Any, schema: Mapping[str, Any]) -> bool:
    """Whether ``value`` validates against a parameter's schema (unresolvable ``$ref``s pass:
    the full arguments are validated again before the call)."""
    try:
        cls = jsonschema.validators.validator_for(schema, default=jsonschema.Draft202012Validator)
        return bool(cls(schema).is_valid(value))
    except Exception:
        return True


def validate_arguments(tool: Mapping[str, Any], arguments: Mapping[str, Any]) -> str | None:
    """``None`` when ``arguments`` validate against the tool's parameters, else the reason."""
    schema = tool["function"].get("parameters") or {"type": "object"}
    cls = jsonschema.validators.validator_for(schema, default=jsonschema.Draft202012Validator)
    errors = sorted(cls(schema).iter_errors(dict(arguments)), key=lambda e: list(e.path))
    if not errors:
        return None
    where = ".".join(str(p) for p in errors[0].path) or "arguments"
    return f"{where}: {errors[0].message}"


class Planner:
    """Draws call plans for one server."""

    def __init__(
        self,
        server: ToolServer,
        *,
        allow_writes: bool = False,
        skip_tools: Sequence[str] = (),
        min_match_score: float = 0.5,
    ) -> None:
        self.server = server
        self.returns = tool_returns(server)
        self.min_match_score = min_match_score
        self.tools = [
            name
            for name in server.tool_names
            if name not in skip_tools and (allow_writes or not is_write_tool(server, name))
        ]
        self.scenarios = scenarios_of(server)

    def properties(self, tool: str) -> dict[str, Any]:
        parameters = self.server.tool(tool)["function"].get("parameters") or {}
        props = parameters.get("properties") or {}
        return dict(props) if isinstance(props, Mapping) else {}

    def user_value(
        self, tool: str, param: str, scenario: Mapping[str, Any], *, required: bool
    ) -> Binding | None:
        schema = self.properties(tool).get(param) or {}
        schema = schema if isinstance(schema, Mapping) else {}
        keys = (f"{tool}.{param}", param) if required else (f"{tool}.{param}",)
        for key in keys:
            if key in scenario and fits(scenario[key], schema):
                return Binding(param, "user", scenario[key])
        return None

    def bind(
        self,
        tool: str,
        earlier: Sequence[Step],
        scenario: Mapping[str, Any],
        rng: random.Random,
    ) -> tuple[Binding, ...] | None:
        """Bindings for every required argument of ``tool`` after ``earlier`` steps, plus the
        optional ones the scenario names for this tool; ``None`` when one cannot be filled."""
        bindings: list[Binding] = []
        claimed: set[tuple[int, tuple[str, ...]]] = set()
        for param in tool_params(self.server.tool(tool)):
            chosen = self.from_earlier(param, earlier, claimed)
            if chosen is None:
                chosen = self.user_value(tool, param.name, scenario, required=True)
            if chosen is None:
                schema = self.properties(tool).get(param.name) or {}
                offers = (
                    [v for v in schema_offers(schema) if fits(v, schema)]
                    if isinstance(schema, Mapping)
                    else []
                )
                if offers:
                    chosen = Binding(param.name, "schema", rng.choice(offers))
            if chosen is None:
                return None
            bindings.append(chosen)
        required = {b.param for b in bindings}
        for name in self.properties(tool):
            if name not in required:
                optional = self.user_value(tool, name, scenario, required=False)
                if optional is not None:
                    bindings.append(optional)
        return tuple(bindings)

    def from_earlier(
        self,
        param: Any,
        earlier: Sequence[Step],
        claimed: set[tuple[int, tuple[str, ...]]],
    ) -> Binding | None:
        candidates = []
        for j, step in enumerate(earlier):
            returns = self.returns.get(step.tool)
            if not returns:  # no published output schema: no hand-off from this tool
                continue
            for match in flow_matches(
                self.server.tool(step.tool), returns, param, min_score=self.min_match_score
            ):
                candidates.append((match.score, j, match))
        candidates.sort(key=lambda c: (-c[0], -c[1]))
        for _, j, match in candidates:
            # one object of an output feeds one parameter (not from and to the same place)
            if (j, match.field.object_path) in claimed:
                continue
            claimed.add((j, match.field.object_path))
            return Binding(
                param.name, "step", step=j, path=match.field.path, field_name=match.field.name
            )
        return None

    def draw(self, rng: random.Random, *, min_calls: int, max_calls: int) -> Plan | None:
        """One random plan of ``min_calls``..``max_calls`` distinct tools, preferring at each
        step tools that use an earlier output; ``None`` when too few tools can be called."""
        index = rng.randrange(len(self.scenarios)) if self.scenarios else None
        scenario = self.scenarios[index] if index is not None else {}
        length = rng.randint(min_calls, max_calls)
        steps: list[Step] = []
        for _ in range(length):
            used = {s.tool for s in steps}
            options = []
            for tool in self.tools:
                if tool in used:
                    continue
                bindings = self.bind(tool, steps, scenario, rng)
                if bindings is not None:
                    options.append(Step(tool, bindings))
            if not options:
                break
            flowing = [o for o in options if any(b.source == "step" for b in o.bindings)]
            steps.append(rng.choice(flowing or options))
        if len(steps) < min_calls:
            return None
        return Plan(tuple(steps), index)


def extract(output: Any, path: Sequence[str], field_name: str = "") -> Any:
    """The value at ``path`` in a parsed tool output (``"[]"``: the first element)."""
    current = output
    for step in path:
        if step == ARRAY_STEP:
            if not isinstance(current, list) or not current:
                raise MissingValue(f"no element in the list before {field_name or 'the value'}")
            current = current[0]
        elif isinstance(current, Mapping) and step in current:
            current = current[step]
        else:
            raise MissingValue(f"the output has no {'.'.join(path)}")
    return current


def arguments_for(step: Step, outputs: Sequence[Any]) -> JSONDict:
    """The arguments of ``step`` given the parsed outputs of the steps before it."""
    arguments: JSONDict = {}
    for b in step.bindings:
        if b.source == "step":
            assert b.step is not None
            arguments[b.param] = extract(outputs[b.step], b.path, b.field_name)
        else:
            arguments[b.param] = b.value
    return arguments
