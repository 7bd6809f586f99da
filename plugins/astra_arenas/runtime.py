"""The arena runtime an RL rollout drives: one episode, its tools live in a sandbox worker.

``reset()`` starts a fresh sandbox session and loads the arena's tool code into it, so no state
crosses episodes; ``step(call)`` checks a parsed call against the arena's schemas and runs it in
the session; ``close()`` ends the session. Anything wrong with a call (a parse error passed as a
string, an unknown tool, missing, unexpected or mistyped arguments, a tool that raises, a worker
that dies or times out) comes back as an error observation, never as an exception, and the
verifier counts it as a call.

The sandbox should offer ``session()`` (a persistent worker with ``load(code)`` and
``call(name, arguments)``); a sandbox with only ``run(code)`` still works, one process per call
and no state kept between calls.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import jsonschema

from astra_core.arena_runtime import SandboxSessionRuntime
from astra_core.arena_verification import GoldCheck, run_checks
from astra_core.protocols import Sandbox
from astra_core.records import Arena, JSONDict, ToolCall, ToolCallResult, tool_name


def own_namespace(name: str, code: str) -> str:
    """Code that loads one tool into a namespace of its own, as the gold-call harness runs it
    (``astra_core.arena_verification``): the episode's worker holds every tool, and two tools'
    module-level names (an LLM-written ``_DATA`` table, a helper) must not overwrite each other.
    Only the tool's function lands in the worker's namespace."""
    return (
        "_astra_unit = {'__name__': 'astra_tool_unit'}\n"
        f"exec(compile({code!r}, {f'<tool {name}>'!r}, 'exec'), _astra_unit)\n"
        f"{name} = _astra_unit[{name!r}]\n"
        "del _astra_unit\n"
    )


class _RunPerCall:
    """A session over a plain ``Sandbox``: every call runs the tool code afresh."""

    def __init__(self, sandbox: Sandbox, timeout_s: float | None) -> None:
        self.sandbox = sandbox
        self.timeout_s = timeout_s
        self.units: dict[str, str] = {}

    def load(self, code: str, name: str = "") -> None:
        self.units[name or f"unit{len(self.units)}"] = code

    def call(self, name: str, arguments: Mapping[str, Any]) -> tuple[str, bool]:
        unit = name if name in self.units else next(iter(self.units), "")
        check = GoldCheck("call", unit, ToolCall(name, dict(arguments)), "\x00")
        (result,) = run_checks(self.sandbox, self.units, [check], timeout_s=self.timeout_s)
        # The check's answer is never printed: a call that ran normally fails only on that.
        failed = not result.reason.startswith("output does not contain")
        return (
            result.reason + ("\n" + result.output if result.output else "")
            if failed
            else result.output
        ), failed

    def close(self) -> None:
        self.units.clear()


class ToolCodeRuntime(SandboxSessionRuntime):
    """Per-episode tool execution for one arena (see the module docstring)."""

    def __init__(
        self,
        arena: Arena,
        sandbox: Sandbox,
        *,
        max_output_chars: int = 8000,
        timeout_s: float | None = None,
    ) -> None:
        super().__init__(arena, sandbox, timeout_s=timeout_s)
        self.max_output_chars = max_output_chars
        self.schemas: dict[str, JSONDict] = {}
        for tool in arena.tools:
            self.schemas.setdefault(tool_name(tool), tool["function"].get("parameters") or {})
        # a validator per tool, its schema checked once (jsonschema.validate checks it per call)
        self._validators: dict[str, Any] = {}
        self.calls = 0

    # -- lifecycle -----------------------------------------------------------------------------

    def fallback_session(self) -> _RunPerCall:
        return _RunPerCall(self.sandbox, self.timeout_s)

    def load_tool(self, session: Any, name: str, code: str) -> Any:
        if isinstance(session, _RunPerCall):
            return session.load(code, name)
        return session.load(own_namespace(name, code))

    def reset(self) -> None:
        """A fresh session with every tool of the arena loaded; earlier state is gone."""
        super().reset()
        self.calls = 0

    # -- calls ---------------------------------------------------------------------------------

    def _error(self, name: str, arguments: Mapping[str, Any], message: str) -> ToolCallResult:
        return ToolCallResult(name, dict(arguments), f"Error: {message}", error=True)

    def check(self, call: ToolCall) -> str | None:
        """Why ``call`` cannot run (unknown tool, bad arguments), or ``None`` when it can."""
        if call.name not in self.schemas:
            available = ", ".join(sorted(self.schemas))
            return f"unknown tool {call.name!r}; available tools: {available}"
        if not isinstance(call.arguments, Mapping):
            return f"arguments of {call.name} must be a JSON object"
        schema = self.schemas[call.name]
        props = schema.get("properties") or {}
        if schema.get("additionalProperties", False) is not True:
            extra = sorted(set(call.arguments) - set(props))
            if extra:
                return (
                    f"{call.name} got unexpected argument(s) {', '.join(extra)}; "
                    f"it takes: {', '.join(props) or 'none'}"
                )
        validator = self._validators.get(call.name)
        if validator is None:
            cls = jsonschema.validators.validator_for(schema)
            try:
                cls.check_schema(schema)
            except jsonschema.SchemaError as exc:
                return f"tool {call.name} has an invalid parameter schema: {exc.message}"
            validator = self._validators[call.name] = cls(schema)
        error = jsonschema.exceptions.best_match(validator.iter_errors(dict(call.arguments)))
        if error is not None:
            where = "/".join(str(p) for p in error.absolute_path)
            return f"invalid arguments for {call.name}: {error.message}" + (
                f" (at {where})" if where else ""
            )
        return None

    def step(self, call: ToolCall | str) -> ToolCallResult:
        """Run one parsed call (or turn a parse error string into an observation)."""
        self.calls += 1
        if isinstance(call, str):
            return self._error("", {}, f"malformed tool call: {call}")
        problem = self.check(call)
        if problem is not None:
            return self._error(
                call.name, call.arguments if isinstance(call.arguments, Mapping) else {}, problem
            )
        if call.name in self.load_errors:
            return self._error(
                call.name,
                call.arguments,
                f"tool {call.name} failed to load: {self.load_errors[call.name]}",
            )
        if self._session is None:
            self.reset()
        try:
            outcome = self._session.call(call.name, dict(call.arguments))
        except Exception as exc:
            # The worker died or timed out: its state is gone, the next call gets a fresh one.
            self.close()
            return self._error(call.name, call.arguments, f"the tool call failed: {exc}")
        if isinstance(outcome, tuple):
            output, failed = outcome
        else:
            output, error = getattr(outcome, "output", ""), getattr(outcome, "error", None)
            failed = bool(error)
            if failed:  # what it printed before failing, then the error itself
                output = f"{output}\n{error}" if output else str(error)
        if not isinstance(output, str):
            output = json.dumps(output, ensure_ascii=False, default=str)
        if len(output) > self.max_output_chars:
            output = output[: self.max_output_chars] + "\n[output truncated]"
        if failed:
            return self._error(call.name, call.arguments, output)
        return ToolCallResult(call.name, dict(call.arguments), output, error=False)
