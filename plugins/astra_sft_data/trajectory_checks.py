"""Structural checks of SFT trajectories: what a trainer needs to be true of every record.

``validate_trajectory(traj)`` returns the problems as text (an empty list means valid):

* every tool call names a tool the trajectory offers, has a unique id, and its ``arguments``
  are a JSON string that decodes to an object valid under that tool's JSON Schema;
* every call is answered by exactly one ``tool`` message carrying its ``tool_call_id``, before
  the conversation moves on;
* roles follow each other sensibly (system first, then user; after a user an assistant; after
  an assistant's calls their tool results; after tool results an assistant);
* the conversation ends with an assistant answer (text, no calls).

``check_trajectory`` returns the same problems as ``Problem`` objects with a ``kind``, for
counting them (``astra sft-data check``).
"""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping, Sequence
from typing import Any

import attrs
import jsonschema

from astra_core.records import Trajectory, canonical_json

ROLES = ("system", "user", "assistant", "tool")

# Problem kinds, counted by ``astra sft-data check`` and used as import drop reasons.
BAD_TOOL = "bad-tool-schema"
BAD_MESSAGE = "bad-message"
ROLE_ORDER = "role-order"
UNKNOWN_TOOL = "unknown-tool"
BAD_CALL = "bad-call"
BAD_ARGUMENTS = "bad-arguments"
SCHEMA_MISMATCH = "arguments-schema"
UNANSWERED = "unanswered-call"
ORPHAN_RESULT = "orphan-tool-message"
NO_FINAL_ANSWER = "no-final-answer"


@attrs.frozen
class Problem:
    """One thing wrong with a trajectory: ``where`` (``messages[3].tool_calls[0]``), a
    ``kind`` from the constants above and a sentence saying what is wrong."""

    where: str
    kind: str
    text: str

    def __str__(self) -> str:
        return f"{self.where}: {self.text}" if self.where else self.text


@functools.lru_cache(maxsize=4096)
def _validator(schema_json: str) -> Any:
    # keyed by the schema's canonical JSON: many trajectories offer the same tools
    schema = json.loads(schema_json)
    cls = jsonschema.validators.validator_for(schema, default=jsonschema.Draft202012Validator)
    cls.check_schema(schema)
    return cls(schema)


def _offered_tools(tools: Sequence[Any], problems: list[Problem]) -> dict[str, Any]:
    """Tool name -> its compiled argument validator (``None`` when the schema is unusable)."""
    offered: dict[str, Any] = {}
    for index, tool in enumerate(tools):
        where = f"tools[{index}]"
        function = tool.get("function") if isinstance(tool, Mapping) else None
        if not isinstance(function, Mapping):
            function = {}
        name = function.get("name")
        if not isinstance(name, str) or not name:
            problems.append(
                Problem(
                    where,
                    BAD_TOOL,
                    'not an OpenAI tool {"type": "function", "function": '
                    '{"name", "description", "parameters"}}',
                )
            )
            continue
        if name in offered:
            problems.append(Problem(where, BAD_TOOL, f"tool {name!r} is offered twice"))
            continue
        parameters = function.get("parameters")
        if parameters is None:
            parameters = {"type": "object", "properties": {}}
        if not isinstance(parameters, Mapping):
            problems.append(Problem(where, BAD_TOOL, f"{name}: parameters must be a JSON object"))
            offered[name] = None
            continue
        try:
            offered[name] = _validator(canonical_json(parameters))
        except jsonschema.SchemaError as exc:
            problems.append(
                Problem(
                    where, BAD_TOOL, f"{name}: parameters are not valid JSON Schema: {exc.message}"
                )
            )
            offered[name] = None
    return offered


def _check_call(
    call: Any, where: str, offered: Mapping[str, Any], seen_ids: set[str], problems: list[Problem]
) -> str | None:
    """Check one entry of ``tool_calls``; return its id when it has a usable one."""
    if not isinstance(call, Mapping):
        problems.append(Problem(where, BAD_CALL, "a tool call must be a JSON object"))
        return None
    call_id = call.get("id")
    function = call.get("function")
    if not isinstance(function, Mapping):
        function = {}
    if not isinstance(function.get("name"), str):
        problems.append(
            Problem(where, BAD_CALL, 'a tool call needs "function": {"name", "arguments"}')
        )
        name = None
    else:
        name = function["name"]
    if call.get("type", "function") != "function":
        problems.append(Problem(where, BAD_CALL, f"type {call.get('type')!r} is not 'function'"))
    usable_id: str | None = None
    if not isinstance(call_id, str) or not call_id:
        problems.append(Problem(where, BAD_CALL, "the call has no id"))
    elif call_id in seen_ids:
        problems.append(Problem(where, BAD_CALL, f"call id {call_id!r} is used twice"))
    else:
        seen_ids.add(call_id)
        usable_id = call_id
    if name is None:
        return usable_id
    label = f"{where} ({name})"
    if name not in offered:
        known = ", ".join(sorted(offered)) or "none"
        problems.append(
            Problem(label, UNKNOWN_TOOL, f"calls {name!r}, which is not offered (offered: {known})")
        )
        return usable_id
    arguments = function.get("arguments")
    if not isinstance(arguments, str):
        problems.append(
            Problem(
                label,
                BAD_ARGUMENTS,
                f"arguments must be a JSON string, got {type(arguments).__name__}",
            )
        )
        return usable_id
    try:
        decoded = json.loads(arguments)
    except json.JSONDecodeError as exc:
        problems.append(Problem(label, BAD_ARGUMENTS, f"arguments are not valid JSON ({exc.msg})"))
        return usable_id
    if not isinstance(decoded, dict):
        problems.append(
            Problem(
                label,
                BAD_ARGUMENTS,
                f"arguments must decode to an object, got {type(decoded).__name__}",
            )
        )
        return usable_id
    validator = offered[name]
    if validator is not None:
        error = jsonschema.exceptions.best_match(validator.iter_errors(decoded))
        if error is not None:
            path = "/".join(str(p) for p in error.absolute_path)
            at = f" at {path!r}" if path else ""
            problems.append(
                Problem(
                    label,
                    SCHEMA_MISMATCH,
                    f"arguments do not match the tool's schema{at}: {error.message}",
                )
            )
    return usable_id


def check_trajectory(traj: Trajectory) -> list[Problem]:
    """Every problem of ``traj`` (see the module docstring), in conversation order."""
    return check_messages(traj.messages, traj.tools)


def check_messages(messages: Sequence[Any], tools: Sequence[Any]) -> list[Problem]:
    """``check_trajectory`` on bare OpenAI ``messages`` and ``tools``."""
    problems: list[Problem] = []
    offered = _offered_tools(tools, problems)
    if not messages:
        return [*problems, Problem("messages", BAD_MESSAGE, "the conversation is empty")]
    seen_ids: set[str] = set()
    answered: set[str] = set()
    pending: dict[str, int] = {}  # call id -> index of the assistant message that made it
    previous: str | None = None  # role of the previous well-formed message
    for index, message in enumerate(messages):
        where = f"messages[{index}]"
        role = message.get("role") if isinstance(message, Mapping) else None
        if role not in ROLES:
            problems.append(
                Problem(where, BAD_MESSAGE, f"role {role!r} is none of {', '.join(ROLES)}")
            )
            continue
        content = message.get("content")
        if role != "tool" and pending:
            ids = ", ".join(sorted(pending))
            problems.append(
                Problem(
                    where,
                    UNANSWERED,
                    f"call(s) {ids} of messages[{min(pending.values())}] "
                    f"have no tool message before this {role} message",
                )
            )
            pending.clear()
        if role == "system":
            if index != 0:
                problems.append(Problem(where, ROLE_ORDER, "a system message may only come first"))
            if not isinstance(content, str):
                problems.append(Problem(where, BAD_MESSAGE, "system content must be text"))
        elif role == "user":
            if previous == "user":
                problems.append(Problem(where, ROLE_ORDER, "two user messages in a row"))
            elif previous == "tool":
                problems.append(
                    Problem(
                        where,
                        ROLE_ORDER,
                        "tool results are followed by a user message, not by an assistant turn",
                    )
                )
            if not isinstance(content, str) or not content.strip():
                problems.append(Problem(where, BAD_MESSAGE, "user content must be non-empty text"))
        elif role == "assistant":
            if previous in (None, "system"):
                problems.append(
                    Problem(where, ROLE_ORDER, "an assistant turn before any user message")
                )
            elif previous == "assistant":
                problems.append(
                    Problem(
                        where,
                        ROLE_ORDER,
                        "two assistant turns in a row with no tool results or user message between",
                    )
                )
            if content is not None and not isinstance(content, str):
                problems.append(Problem(where, BAD_MESSAGE, "assistant content must be text"))
            calls = message.get("tool_calls")
            if calls is not None and not isinstance(calls, list):
                problems.append(Problem(where, BAD_CALL, "tool_calls must be a list"))
                calls = None
            for number, call in enumerate(calls or ()):
                call_id = _check_call(
                    call, f"{where}.tool_calls[{number}]", offered, seen_ids, problems
                )
                if call_id is not None:
                    pending[call_id] = index
            if not calls and not (isinstance(content, str) and content.strip()):
                problems.append(
                    Problem(where, BAD_MESSAGE, "an assistant turn with no text and no tool calls")
                )
        else:  # tool
            call_id = message.get("tool_call_id")
            if not isinstance(content, str):
                problems.append(Problem(where, BAD_MESSAGE, "tool content must be text"))
            if call_id in pending:
                del pending[call_id]
                answered.add(call_id)
            elif call_id in answered:
                problems.append(
                    Problem(where, ORPHAN_RESULT, f"answers call {call_id!r} a second time")
                )
            elif previous not in ("assistant", "tool"):
                problems.append(
                    Problem(where, ORPHAN_RESULT, "a tool message with no call before it")
                )
            else:
                problems.append(
                    Problem(
                        where,
                        ORPHAN_RESULT,
                        f"tool_call_id {call_id!r} names no open call "
                        "of the assistant turn before it",
                    )
                )
        previous = role
    if pending:
        ids = ", ".join(sorted(pending))
        problems.append(
            Problem(
                f"messages[{min(pending.values())}]",
                UNANSWERED,
                f"call(s) {ids} are never answered by a tool message",
            )
        )
    last = messages[-1]
    if not (
        isinstance(last, Mapping)
        and last.get("role") == "assistant"
        and not last.get("tool_calls")
        and isinstance(last.get("content"), str)
        and last["content"].strip()
    ):
        problems.append(
            Problem(
                f"messages[{len(messages) - 1}]",
                NO_FINAL_ANSWER,
                "the conversation does not end with an assistant answer",
            )
        )
    return problems


def validate_trajectory(traj: Trajectory) -> list[str]:
    """The problems of ``traj`` as sentences naming the message at fault; empty when valid."""
    return [str(p) for p in check_trajectory(traj)]
