"""The ``python-catalog`` tool executor: runs bundled tools for real on per-session state.

Every session owns a fresh copy of each server's world, so what one trajectory does (cancel an
order, book a seat) is never seen by another. Arguments are validated against the tool's JSON
Schema before the implementation runs; unknown tools, bad arguments, refusals and even bugs in an
implementation come back as ``ToolCallResult(error=True)`` with a message, never as a raise.
"""

from __future__ import annotations

import functools
import itertools
import json
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import jsonschema
from jsonschema.exceptions import best_match

from astra_core.records import ToolCall, ToolCallResult, ToolServer
from astra_tool_catalog.bundled_source import CATALOG_NAME, ENDPOINT_KIND
from astra_tool_catalog.catalog_model import CatalogTool, ServerSpec, State, ToolError
from astra_tool_catalog.options import PythonCatalogOptions
from astra_tool_catalog.servers import SERVERS

if TYPE_CHECKING:
    from astra_core.registry import ComponentBuilder


def error_output(message: str) -> str:
    return json.dumps({"error": message}, ensure_ascii=False)


@functools.cache
def _validator(server: str, tool: str) -> Any:
    schema = SERVERS[server].tool_named(tool).parameters
    cls = jsonschema.validators.validator_for(schema, default=jsonschema.Draft202012Validator)
    return cls(schema)


def argument_errors(server: str, tool: str, arguments: Mapping[str, Any]) -> str | None:
    """The most relevant schema violation of ``arguments``, as a sentence, or ``None``."""
    error = best_match(_validator(server, tool).iter_errors(dict(arguments)))
    if error is None:
        return None
    where = "/".join(str(p) for p in error.absolute_path)
    return f"{where}: {error.message}" if where else error.message


class CatalogSession:
    """One conversation's view of the bundled servers: its own states, created on first use."""

    def __init__(self, executor: PythonCatalogExecutor, key: str) -> None:
        self.executor = executor
        self.key = key
        self._states: dict[tuple[str, int], State] = {}
        self.calls = 0

    def state(self, spec: ServerSpec, seed: int) -> State:
        if (spec.name, seed) not in self._states:
            self._states[(spec.name, seed)] = spec.initial_state(seed)
        return self._states[(spec.name, seed)]

    def call(self, server: ToolServer, call: ToolCall) -> ToolCallResult:
        self.calls += 1
        arguments = dict(call.arguments) if isinstance(call.arguments, Mapping) else {}

        def fail(message: str) -> ToolCallResult:
            return ToolCallResult(call.name, arguments, error_output(message), error=True)

        if not isinstance(call.arguments, Mapping):
            return fail(f"arguments of {call.name!r} must be a JSON object")
        located = self.executor.locate(server)
        if isinstance(located, str):
            return fail(located)
        spec, seed = located
        if call.name not in server.tool_names:
            return fail(
                f"unknown tool {call.name!r} on server {server.title!r}; its tools are: "
                + ", ".join(server.tool_names)
            )
        try:
            tool: CatalogTool = spec.tool_named(call.name)
        except KeyError:
            return fail(f"tool {call.name!r} has no Python implementation in {spec.name!r}")
        problem = argument_errors(spec.name, tool.name, arguments)
        if problem is not None:
            return fail(f"invalid arguments for {tool.name}: {problem}")
        try:
            result = tool.function(self.state(spec, seed), **arguments)
        except ToolError as exc:
            return fail(str(exc))
        except Exception as exc:  # a bug in an implementation is the tool's failure, not ours
            return fail(f"{tool.name} failed: {type(exc).__name__}: {exc}")
        output = json.dumps(result, ensure_ascii=False)
        limit = self.executor.options.max_output_chars
        if len(output) > limit:
            output = output[:limit] + f"... [truncated {len(output) - limit} characters]"
        return ToolCallResult(call.name, arguments, output)


class PythonCatalogExecutor:
    """Runs the bundled catalog's tools.

    ``open_session(key)`` gives a session with fresh state (one per trajectory or episode);
    ``call`` itself uses one shared default session per executor, for callers that know
    nothing of sessions.
    """

    def __init__(self, options: PythonCatalogOptions, builder: ComponentBuilder) -> None:
        self.options = options
        self.default_seed = builder.seed if options.state_seed is None else options.state_seed
        self._counter = itertools.count()
        self._default: CatalogSession | None = None

    def locate(self, server: ToolServer) -> tuple[ServerSpec, int] | str:
        """The bundled server behind a ``ToolServer`` and its world seed, or why there is none."""
        endpoint = server.endpoint or {}
        if endpoint.get("kind") != ENDPOINT_KIND or endpoint.get("catalog") != CATALOG_NAME:
            return (
                f"server {server.title!r} has no bundled Python implementation "
                f"(endpoint {endpoint.get('kind', 'none')!r}): set the sampler's executor option "
                "to a tool_executor that can call it"
            )
        name = str(endpoint.get("server", ""))
        if name not in SERVERS:
            return f"no bundled server {name!r}; the bundled servers are: {', '.join(SERVERS)}"
        seed = endpoint.get("state_seed")
        return SERVERS[name], int(seed) if isinstance(seed, int) else self.default_seed

    def open_session(self, key: str = "") -> CatalogSession:
        return CatalogSession(self, key or f"session-{next(self._counter)}")

    def call(self, server: ToolServer, call: ToolCall) -> ToolCallResult:
        if self._default is None:
            self._default = self.open_session("default")
        return self._default.call(server, call)
