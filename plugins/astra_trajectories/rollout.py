"""Step 5: the rollout, an agent loop that offers the server's tools to the LLM and executes its
calls with the tool executor (a fresh session per trajectory when the executor has one).

Every call must name an offered tool and carry a JSON object that validates against the tool's
schema; a call that does not is never executed, it gets an error observation, so the model can
correct itself. The loop ends when the model answers without calling a tool; at ``max_turns``
turns that still call tools, or on an answer cut by the length limit, the rollout fails.
Each call is answered by exactly one ``tool`` message, and call ids are made unique within the
conversation (some servers number calls from 0 on every turn).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import attrs
import jsonschema
from jsonschema.exceptions import best_match

from astra_core.errors import LLMCallFailed
from astra_core.protocols import LLMBackend, ToolExecutor
from astra_core.records import JSONDict, Task, ToolCall, ToolCallResult, ToolServer, content_id
from astra_trajectories.step_outcomes import StepFailed

TURN_CAP = "rollout-turn-cap"
TRUNCATED = "rollout-truncated"
EMPTY_ANSWER = "rollout-empty-answer"


@attrs.frozen
class Rollout:
    """The conversation, one result per call (invalid calls included, as errors), and the
    calls that named no offered tool or failed their schema."""

    messages: tuple[JSONDict, ...]
    results: tuple[ToolCallResult, ...]
    invalid_calls: tuple[str, ...] = ()
    failure: str | None = None
    detail: str = ""
    turns: int = 0
    injected_failures: int = 0  # calls an emulator failed on purpose


def error_output(message: str) -> str:
    return json.dumps({"error": message}, ensure_ascii=False)


class CallChecker:
    """Checks a model's call against the offered tools and their JSON Schemas."""

    def __init__(self, server: ToolServer) -> None:
        self.server = server
        self._validators: dict[str, Any] = {}
        for tool in server.tools:
            schema = tool["function"].get("parameters") or {"type": "object"}
            cls = jsonschema.validators.validator_for(schema, jsonschema.Draft202012Validator)
            self._validators[tool["function"]["name"]] = cls(schema)

    def check(self, name: str, raw_arguments: Any) -> tuple[dict[str, Any], str | None]:
        """The decoded arguments and the problem with the call, or ``None`` when it is valid."""
        if name not in self._validators:
            return {}, (
                f"unknown tool {name!r}; the tools offered are: "
                + ", ".join(self.server.tool_names)
            )
        arguments: Any = raw_arguments
        if isinstance(raw_arguments, str):
            try:  # an empty string is how some servers write "no arguments"
                arguments = json.loads(raw_arguments) if raw_arguments.strip() else {}
            except ValueError as exc:
                return {}, f"the arguments of {name} are not valid JSON ({exc})"
        if not isinstance(arguments, dict):
            return {}, f"the arguments of {name} must be a JSON object"
        error = best_match(self._validators[name].iter_errors(arguments))
        if error is not None:
            where = "/".join(str(p) for p in error.absolute_path)
            problem = f"{where}: {error.message}" if where else error.message
            return arguments, f"invalid arguments for {name}: {problem}"
        return arguments, None


class AgentRollout:
    def __init__(
        self,
        llm: LLMBackend,
        executor: ToolExecutor,
        *,
        max_turns: int,
        system_prompt: str,
        sampling: Mapping[str, Any] | None = None,
    ) -> None:
        self.llm = llm
        self.executor = executor
        self.max_turns = max_turns
        self.system_prompt = system_prompt
        self.sampling = dict(sampling or {})

    def system_message(self, server: ToolServer) -> str:
        description = server.description.strip()
        if description and not description.endswith("."):
            description += "."
        # replace, not str.format: a prompt may hold JSON braces of its own
        text = self.system_prompt.replace("{title}", server.title)
        return text.replace("{description}", description).strip()

    def run(self, server: ToolServer, task: Task, *, session_key: str) -> Rollout:
        """Roll ``task`` out; ``StepFailed`` when the agent's LLM (or an LLM-backed executor)
        fails for good."""
        open_session = getattr(self.executor, "open_session", None)
        session = open_session(session_key) if callable(open_session) else self.executor
        set_task = getattr(session, "set_task", None)
        if callable(set_task):  # the emulator may show the request to its LLM
            set_task(task.query)
        checker = CallChecker(server)
        messages: list[JSONDict] = [
            {"role": "system", "content": self.system_message(server)},
            {"role": "user", "content": task.query},
        ]
        results: list[ToolCallResult] = []
        invalid: list[str] = []
        used_ids: set[str] = set()

        def finish(failure: str | None, detail: str, turns: int) -> Rollout:
            return Rollout(
                tuple(messages),
                tuple(results),
                tuple(invalid),
                failure,
                detail,
                turns,
                int(getattr(session, "injected", 0)),
            )

        for turn in range(1, self.max_turns + 1):
            try:
                response = self.llm.chat(messages, tools=list(server.tools), **self.sampling)
            except LLMCallFailed as exc:
                raise StepFailed("rollout-llm-failed", str(exc)) from exc
            content = str(response.message.get("content") or "")
            calls = list(response.message.get("tool_calls") or [])
            message: JSONDict = {"role": "assistant", "content": content}
            if response.finish_reason == "length":
                messages.append(message)
                return finish(TRUNCATED, f"turn {turn} was cut by the length limit", turn)
            if not calls:
                messages.append(message)
                failure = None if content.strip() else EMPTY_ANSWER
                return finish(failure, "", turn)
            fixed: list[JSONDict] = []
            for index, call in enumerate(calls):
                call_id = str(call.get("id") or "")
                if not call_id or call_id in used_ids:
                    call_id = f"call_{content_id(task.id, turn, index)[:12]}"
                used_ids.add(call_id)
                function = dict(call.get("function") or {})
                if (
                    not isinstance(function.get("arguments"), str)
                    or not function["arguments"].strip()
                ):  # the data always holds arguments as a JSON object string
                    raw = function.get("arguments")
                    function["arguments"] = json.dumps(raw if raw else {}, ensure_ascii=False)
                # a fresh dict in one key order: a replayed answer (stored with sorted keys)
                # writes the same bytes as the live one
                fixed.append(
                    {
                        "id": call_id,
                        "type": "function",
                        "function": {
                            "name": function.get("name"),
                            "arguments": function["arguments"],
                        },
                    }
                )
            message["tool_calls"] = fixed
            messages.append(message)
            for call in fixed:
                name = str(call["function"]["name"])
                arguments, problem = checker.check(name, call["function"].get("arguments"))
                if problem is not None:
                    invalid.append(f"turn {turn}: {problem}")
                    result = ToolCallResult(name, arguments, error_output(problem), error=True)
                else:
                    try:
                        result = session.call(server, ToolCall(name, arguments))
                    except LLMCallFailed as exc:  # an LLM-backed executor (the emulator)
                        reason = getattr(exc, "reason", "executor-llm-failed")
                        raise StepFailed(reason, str(exc)) from exc
                results.append(result)
                messages.append(
                    {"role": "tool", "tool_call_id": call["id"], "content": result.output}
                )
        return finish(TURN_CAP, f"still calling tools after {self.max_turns} turns", self.max_turns)
