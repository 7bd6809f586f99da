"""How a bundled server is declared: its tools (schema, output schema, phrase, implementation),
how its seeded state is built, and which values a user of it would know (scenarios).

A server module creates one ``ServerSpec`` and decorates its functions::

    SERVER = ServerSpec("shop", title=..., description=..., domain=...)

    @SERVER.tool("Get an order by id.", params({"order_id": string("...")}), returns=obj(...),
                 phrase="show me the details of {order_id}")
    def get_order(state, order_id): ...

    @SERVER.state
    def build_state(rng): ...          # a fresh, deterministic world for a seed

    @SERVER.scenario
    def scenario(state, rng): ...      # one coherent set of values a user could state
"""

from __future__ import annotations

import copy
import json
import random
from collections.abc import Callable
from typing import Any

import attrs

from astra_tool_catalog.schema_builders import JSONSchema

State = dict[str, Any]
ToolFunction = Callable[..., dict[str, Any]]


class ToolError(Exception):
    """A tool refused a call for a reason its caller can act on (unknown id, no stock...).

    The executor turns it into an error observation; it never escapes a session.
    """


@attrs.frozen
class CatalogTool:
    """One bundled tool: the OpenAI schema parts, what it returns, a phrase for task text
    (``{param}`` placeholders), and the Python function that runs it on a server's state."""

    name: str
    description: str
    parameters: JSONSchema
    returns: JSONSchema
    phrase: str
    function: ToolFunction = attrs.field(eq=False, repr=False)

    def openai_schema(self) -> dict[str, Any]:
        return {
            "type": "function",
            "function": {
                "name": self.name,
                "description": self.description,
                "parameters": copy.deepcopy(self.parameters),
            },
        }


class ServerSpec:
    """A bundled server: tools plus a seeded state and the values its users know."""

    def __init__(self, name: str, *, title: str, description: str, domain: str) -> None:
        self.name = name
        self.title = title
        self.description = description
        self.domain = domain
        self.tools: list[CatalogTool] = []
        self._build_state: Callable[[random.Random], State] | None = None
        self._scenario: Callable[[State, random.Random], dict[str, Any]] | None = None
        self._states: dict[int, State] = {}

    # -- declaration ---------------------------------------------------------------------------

    def tool(
        self, description: str, parameters: JSONSchema, *, returns: JSONSchema, phrase: str
    ) -> Callable[[ToolFunction], ToolFunction]:
        def register(function: ToolFunction) -> ToolFunction:
            name = function.__name__
            if any(t.name == name for t in self.tools):
                raise ValueError(f"server {self.name!r} declares tool {name!r} twice")
            self.tools.append(CatalogTool(name, description, parameters, returns, phrase, function))
            return function

        return register

    def state(self, function: Callable[[random.Random], State]) -> Callable[..., State]:
        self._build_state = function
        return function

    def scenario(
        self, function: Callable[[State, random.Random], dict[str, Any]]
    ) -> Callable[..., dict[str, Any]]:
        self._scenario = function
        return function

    # -- use -----------------------------------------------------------------------------------

    def tool_named(self, name: str) -> CatalogTool:
        for tool in self.tools:
            if tool.name == name:
                return tool
        raise KeyError(name)

    def initial_state(self, seed: int) -> State:
        """A fresh copy of the world for ``seed``: every session starts from the same state
        and never sees another session's changes."""
        if seed not in self._states:
            if self._build_state is None:
                raise ValueError(f"server {self.name!r} declares no state builder")
            rng = random.Random(f"astra-catalog:{self.name}:{seed}")
            # JSON round-trip: the state must be plain data, so a deep copy is always enough.
            self._states[seed] = json.loads(json.dumps(self._build_state(rng)))
        return copy.deepcopy(self._states[seed])

    def scenarios(self, seed: int, count: int) -> list[dict[str, Any]]:
        """Up to ``count`` distinct, coherent value sets a user of this server could state."""
        if self._scenario is None:
            return []
        state = self.initial_state(seed)
        rng = random.Random(f"astra-catalog:{self.name}:{seed}:scenarios")
        seen: set[str] = set()
        out: list[dict[str, Any]] = []
        for _ in range(count * 4):
            values = self._scenario(state, rng)
            key = json.dumps(values, sort_keys=True)
            if key not in seen:
                seen.add(key)
                out.append(values)
            if len(out) >= count:
                break
        return out


def next_id(state: State, prefix: str, width: int = 4) -> str:
    """A new id for an object a tool creates, from a counter kept in the state."""
    counters = state.setdefault("_counters", {})
    counters[prefix] = counters.get(prefix, 0) + 1
    return f"{prefix}-{9000 + counters[prefix]:0{width}d}"


def find(state: State, table: str, key: str, value: Any, noun: str) -> dict[str, Any]:
    """The row of ``table`` whose ``key`` equals ``value``, or a ToolError naming it."""
    for row in state[table]:
        if row[key] == value:
            return row
    raise ToolError(f"no {noun} with {key} {value!r}")
