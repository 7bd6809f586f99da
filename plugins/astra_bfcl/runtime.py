"""The runtime of a BFCL arena: one episode, its stateful classes alive in a sandbox worker.

``reset()`` opens a fresh sandbox session (a new worker: no state from another episode) and
loads every tool's code; the bfcl-eval instances are created on first use from the entry's
``initial_config`` and live until ``close()``, across calls and across user turns. The episode
walks BFCL's user turns in order:

* ``user_message`` is the current turn's message, ``tools`` the schemas offered in it (in
  ``miss_func`` entries some functions are held out until a later turn);
* ``step(call)`` runs one call and returns a ``TurnCallResult`` (a ``ToolCallResult`` that
  also carries ``turn``);
* ``next_turn()`` closes the turn and returns the next user message, or ``None`` at the end.

``turn_ends`` and each result's ``turn`` tell the ``bfcl-multi-turn`` verifier which calls
belong to which turn. A call that cannot run (a parse error given as a string, an unknown or
not yet offered tool, unexpected or missing arguments, a worker that died) returns
``error=True`` and never reaches the instances, so the verifier does not replay it; a call that
ran returns ``error=False`` even when the method raised (its output is then BFCL's
``"Error during execution: ..."``), because BFCL counts that as an execution result.

A sandbox without ``session()`` still works: each call then re-runs the episode's earlier calls
in a fresh process first (the classes are deterministic), which is slower but exact.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

import attrs
import jsonschema

from astra_core.arena_runtime import SandboxSessionRuntime
from astra_core.errors import AstraError
from astra_core.protocols import Sandbox
from astra_core.records import Arena, JSONDict, ToolCall, ToolCallResult, tool_name

TRUNCATED = "\n[output truncated]"


@attrs.frozen
class TurnCallResult(ToolCallResult):
    """A call's result and the user turn (0-based) it was made in.

    Records store it as a plain ``ToolCallResult`` (the turn is dropped on export); the
    verifier reads ``turn`` when it is there."""

    turn: int = 0


def _outcome(value: Any) -> tuple[str, bool]:
    """(output, failed) from whatever a sandbox session's ``call`` returned."""
    if isinstance(value, tuple) and len(value) == 2 and isinstance(value[1], bool):
        return str(value[0]), value[1]
    if isinstance(value, str):
        return value, False
    if value is None:
        return "None", False
    for field in ("output", "stdout", "result", "value"):
        if hasattr(value, field):
            output = getattr(value, field)
            error = getattr(value, "error", None)
            failed = bool(error) or getattr(value, "ok", True) is False
            if failed and not output:
                output = str(error or "the call failed")
            if not isinstance(output, str):
                output = json.dumps(output, ensure_ascii=False, default=str)
            return output, failed
    return str(value), False


class _ReplaySession:
    """A session over a plain ``Sandbox``: every call re-runs the earlier ones first."""

    def __init__(self, sandbox: Sandbox, timeout_s: float | None) -> None:
        self.sandbox = sandbox
        self.timeout_s = timeout_s
        self.units: list[str] = []
        self.done: list[tuple[str, JSONDict]] = []

    def load(self, code: str) -> None:
        self.units.append(code)

    def call(self, name: str, arguments: Mapping[str, Any]) -> tuple[str, bool]:
        script = "\n\n".join(self.units) + "\n\nimport json as _json\n"
        script += f"_calls = _json.loads({json.dumps([*self.done, (name, dict(arguments))])!r})\n"
        script += (
            "for _name, _args in _calls[:-1]:\n    globals()[_name](**_args)\n"
            "_name, _args = _calls[-1]\n"
            "print('@@out@@' + _json.dumps(globals()[_name](**_args)))\n"
        )
        result = self.sandbox.run(script, timeout_s=self.timeout_s)
        line = next((ln for ln in result.stdout.splitlines() if ln.startswith("@@out@@")), None)
        if not result.ok or line is None:
            limit = f" (limit hit: {result.limit})" if result.limit else ""
            raise AstraError(
                f"the sandbox run failed with exit status {result.exit_code}{limit}: "
                f"{(result.stderr or result.stdout)[-800:]}"
            )
        self.done.append((name, dict(arguments)))
        return json.loads(line[len("@@out@@") :]), False

    def close(self) -> None:
        self.units.clear()
        self.done.clear()


class BfclRuntime(SandboxSessionRuntime):
    """Per-episode execution of a BFCL arena (see the module docstring)."""

    def __init__(
        self,
        arena: Arena,
        sandbox: Sandbox,
        *,
        check_types: bool = False,
        max_output_chars: int | None = None,
        timeout_s: float | None = None,
    ) -> None:
        meta = arena.metadata
        if meta.get("source") != "bfcl-eval":
            raise AstraError(
                f"arena {arena.id} is not a BFCL multi-turn arena (metadata.source is "
                f"{meta.get('source')!r}); use the arena runtime of its own plugin"
            )
        super().__init__(arena, sandbox, timeout_s=timeout_s)
        self.check_types = check_types
        self.max_output_chars = max_output_chars
        self.turns: tuple[str, ...] = tuple(str(t) for t in meta.get("turns") or ())
        if not self.turns:
            raise AstraError(f"BFCL arena {arena.id} has no turns in its metadata")
        self.schemas: dict[str, JSONDict] = {tool_name(t): t for t in arena.tools}
        # Tool name -> the turn from which it is offered (held-out functions of miss_func).
        self.offered_from: dict[str, int] = {}
        for turn, names in (meta.get("added_functions") or {}).items():
            for name in names:
                self.offered_from[str(name)] = int(turn)
        self.turn = 0
        self.calls: list[TurnCallResult] = []
        self._ends: list[int] = []

    # -- lifecycle -----------------------------------------------------------------------------

    def fallback_session(self) -> _ReplaySession:
        return _ReplaySession(self.sandbox, self.timeout_s)

    def load_error(self, outcome: Any) -> str:
        return str(getattr(outcome, "output", "") or outcome.error)

    def reset(self) -> None:
        """A fresh worker with every tool loaded, back at the first turn."""
        super().reset()
        self.turn = 0
        self.calls = []
        self._ends = []

    # -- turns ---------------------------------------------------------------------------------

    @property
    def done(self) -> bool:
        return self.turn >= len(self.turns)

    @property
    def user_message(self) -> str | None:
        """The current turn's user message (``None`` once every turn is over)."""
        return None if self.done else self.turns[self.turn]

    def offered(self, name: str) -> bool:
        return name in self.schemas and self.offered_from.get(name, 0) <= self.turn

    @property
    def tools(self) -> tuple[JSONDict, ...]:
        """The schemas offered in the current turn."""
        return tuple(s for n, s in self.schemas.items() if self.offered(n))

    def next_turn(self) -> str | None:
        """Close the current turn; the next user message, or ``None`` when there is none."""
        if not self.done:
            self._ends.append(len(self.calls))
            self.turn += 1
        return self.user_message

    @property
    def turn_ends(self) -> tuple[int, ...]:
        """For each closed turn, the number of calls made by its end."""
        return tuple(self._ends)

    # -- calls ---------------------------------------------------------------------------------

    def check(self, call: ToolCall) -> str | None:
        """Why ``call`` cannot run now, or ``None`` when it can."""
        if self.done:
            return "the conversation is over: every user turn has been answered"
        if not self.offered(call.name):
            available = ", ".join(n for n in self.schemas if self.offered(n))
            return f"unknown tool {call.name!r}; available tools: {available}"
        if not isinstance(call.arguments, Mapping):
            return f"arguments of {call.name} must be a JSON object"
        schema = self.schemas[call.name]["function"].get("parameters") or {}
        props = schema.get("properties") or {}
        extra = sorted(set(call.arguments) - set(props))
        if extra:
            return (
                f"{call.name} got unexpected argument(s) {', '.join(extra)}; "
                f"it takes: {', '.join(props) or 'none'}"
            )
        missing = [p for p in schema.get("required") or () if p not in call.arguments]
        if missing:
            return f"{call.name} is missing required argument(s) {', '.join(missing)}"
        if self.check_types:
            try:
                jsonschema.validate(dict(call.arguments), schema)
            except jsonschema.ValidationError as exc:
                return f"invalid arguments for {call.name}: {exc.message}"
        return None

    def _record(self, name: str, arguments: Any, output: str, error: bool) -> TurnCallResult:
        args = dict(arguments) if isinstance(arguments, Mapping) else {}
        result = TurnCallResult(name, args, output, error=error, turn=self.turn)
        self.calls.append(result)
        return result

    def step(self, call: ToolCall | str) -> TurnCallResult:
        """Run one parsed call (or turn a parse error string into an observation)."""
        if isinstance(call, str):
            return self._record("", {}, f"Error: malformed tool call: {call}", True)
        problem = self.check(call)
        if problem is not None:
            return self._record(call.name, call.arguments, f"Error: {problem}", True)
        if call.name in self.load_errors:
            return self._record(
                call.name,
                call.arguments,
                f"Error: tool {call.name} failed to load: {self.load_errors[call.name]}",
                True,
            )
        if self._session is None:
            raise AstraError("BfclRuntime.step() before reset(): use it as a context manager")
        try:
            output, failed = _outcome(self._session.call(call.name, dict(call.arguments)))
        except Exception as exc:
            # The worker died or timed out: the episode's state is gone with it, so every
            # later call fails too rather than run on a fresh, wrong state.
            return self._poison(call, f"{type(exc).__name__}: {exc}")
        if failed:
            # The tools catch every exception of the BFCL method, so a failure here is the
            # worker's (a limit, a timeout): treat it like a dead worker.
            return self._poison(call, output)
        if self.max_output_chars is not None and len(output) > self.max_output_chars:
            output = output[: self.max_output_chars] + TRUNCATED
        return self._record(call.name, call.arguments, output, False)

    def _poison(self, call: ToolCall, reason: str) -> TurnCallResult:
        # The worker died or timed out: the episode's state is gone with it (or half-written),
        # so every later call fails too rather than run on a fresh, wrong state.
        self.load_errors = dict.fromkeys(self.schemas, f"the sandbox worker failed: {reason}")
        return self._record(call.name, call.arguments, f"Error: the call failed: {reason}", True)

    def play(self, turns: Sequence[Sequence[ToolCall]]) -> list[TurnCallResult]:
        """Run ``turns[k]`` as the calls of turn k, every turn in order (tests, demos)."""
        for turn_calls in turns:
            for call in turn_calls:
                self.step(call)
            self.next_turn()
        return list(self.calls)
