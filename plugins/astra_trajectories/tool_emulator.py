"""The ``llm-emulator`` tool executor: an LLM plays the tools of servers that have no real
implementation (the paper's doc-only MCP servers).

* Stateful: each session (one per trajectory, ``open_session(key)``) keeps its calls and outputs;
  the last ``history_window`` of them go into every prompt so ids, names and amounts stay
  consistent across turns. ``set_task(query)`` lets a session show the user's request too, in
  a share ``show_task_probability`` of sessions (the authors: 0.5).
* Failure injection: a valid call fails with probability ``failure_rate`` (the paper: 0.2, absent
  from the authors' code) with a timeout or unreachable-service error, without asking the LLM.
  The draw comes from ``builder.rng("llm-emulator:<session key>")``: the same seed and session
  give the same failures whatever the thread order.
* Calls naming a tool the server lacks, or whose arguments fail the schema, get an error
  observation and never reach the LLM.
* An emulator LLM call that fails, or answers something that is not the asked JSON, raises
  ``EmulatorCallFailed`` (an ``LLMCallFailed``): the record that needed it fails, the run goes
  on. Nothing invented by the framework ever stands in for a tool output.
"""

from __future__ import annotations

import json
import random
import threading
from collections.abc import Mapping
from typing import TYPE_CHECKING

from astra_core.errors import ConfigError, LLMCallFailed
from astra_core.protocols import LLMBackend
from astra_core.records import JSONDict, ToolCall, ToolCallResult, ToolServer
from astra_trajectories import prompts
from astra_trajectories.llm_answers import ask
from astra_trajectories.llm_options import LLMEmulatorOptions
from astra_trajectories.rollout import CallChecker, error_output
from astra_trajectories.step_outcomes import StepFailed

if TYPE_CHECKING:
    from astra_core.registry import ComponentBuilder

NAME = "llm-emulator"
INJECTED_FAILURES = (
    "timeout: {tool} did not answer within 30 s",
    "service unavailable: {server} answered HTTP 503, try again later",
    "connection error: {server} could not be reached",
)


class EmulatorCallFailed(LLMCallFailed):
    """The emulator's LLM could not answer a call; ``reason`` says how."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail, backend=NAME)
        self.reason = reason


class EmulatorSession:
    """One conversation's emulated tools: its history, its task and its failure draws."""

    def __init__(self, emulator: LLMToolEmulator, key: str, rng: random.Random) -> None:
        self.emulator = emulator
        self.key = key
        self.rng = rng
        self.history: list[JSONDict] = []
        self.injected = 0
        self.task: str | None = None
        # drawn first, so the failure draws that follow do not depend on set_task being called
        self.show_task = rng.random() < emulator.options.show_task_probability
        self._checkers: dict[str, CallChecker] = {}

    def set_task(self, query: str) -> None:
        self.task = query

    def call(self, server: ToolServer, call: ToolCall) -> ToolCallResult:
        options = self.emulator.options
        checker = self._checkers.get(server.id)
        if checker is None:
            checker = self._checkers[server.id] = CallChecker(server)
        raw = dict(call.arguments) if isinstance(call.arguments, Mapping) else call.arguments
        arguments, problem = checker.check(call.name, raw)
        if problem is not None:
            return self._remember(ToolCallResult(call.name, arguments, error_output(problem), True))
        if self.rng.random() < options.failure_rate:
            self.injected += 1
            template = self.rng.choice(INJECTED_FAILURES)
            message = template.format(tool=call.name, server=server.title)
            return self._remember(
                ToolCallResult(call.name, arguments, error_output(message), True), injected=True
            )
        window = self.history[-options.history_window :] if options.history_window else []
        messages = prompts.emulator_messages(
            server,
            server.tool(call.name),
            arguments,
            window,
            self.task if self.show_task else None,
        )
        try:
            answer = ask(
                self.emulator.require_llm(),
                messages,
                schema=prompts.EMULATOR_SCHEMA,
                step="emulator",
                sampling=options.sampling,
            )
        except StepFailed as exc:
            raise EmulatorCallFailed(exc.reason, f"{call.name}: {exc.detail}") from exc
        output = answer["output"]
        failed = answer["status"] == "error"
        if isinstance(output, str):
            plain_error = failed and not output.lstrip().startswith("{")
            text = error_output(output) if plain_error else output
        else:
            text = json.dumps(output, ensure_ascii=False)
        if len(text) > options.max_output_chars:
            cut = len(text) - options.max_output_chars
            text = text[: options.max_output_chars] + f"... [truncated {cut} characters]"
        return self._remember(ToolCallResult(call.name, arguments, text, failed))

    def _remember(self, result: ToolCallResult, *, injected: bool = False) -> ToolCallResult:
        entry: JSONDict = {
            "tool": result.name,
            "arguments": result.arguments,
            "output": result.output,
            "error": result.error,
        }
        if injected:
            entry["injected"] = True
        self.history.append(entry)
        return result


class LLMToolEmulator:
    """See the module docstring. ``call`` uses one default session; agents open their own."""

    def __init__(
        self,
        options: LLMEmulatorOptions,
        builder: ComponentBuilder,
        llm: LLMBackend | None = None,
    ) -> None:
        self.options = options
        self.builder = builder
        self.llm = llm
        self._default: EmulatorSession | None = None
        self._lock = threading.Lock()
        self._count = 0

    def bind(self, llm: LLMBackend) -> None:
        """Give the emulator an LLM when its own ``llm`` option was left out (the sampler
        passes its ``emulator_llm`` or ``llm``)."""
        if self.llm is None:
            self.llm = llm

    def require_llm(self) -> LLMBackend:
        if self.llm is None:
            raise ConfigError(
                f"tool_executor {NAME!r} has no LLM: set its llm option (or use it as the "
                "executor of the llm-pipeline sampler, which lends it emulator_llm or llm)"
            )
        return self.llm

    def open_session(self, key: str = "") -> EmulatorSession:
        if not key:
            with self._lock:
                self._count += 1
                key = f"session-{self._count}"
        return EmulatorSession(self, key, self.builder.rng(f"{NAME}:{key}"))

    def call(self, server: ToolServer, call: ToolCall) -> ToolCallResult:
        with self._lock:
            if self._default is None:
                self._default = self.open_session("default")
        return self._default.call(server, call)
