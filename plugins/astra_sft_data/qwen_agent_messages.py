"""Qwen-Agent message lists (the authors' trajectory format) to OpenAI chat messages.

Qwen-Agent writes one assistant message with the turn's text (and ``reasoning_content``), then
one assistant message per call carrying ``function_call: {name, arguments}``, then one
``role: "function"`` message per result with the tool's ``name``. OpenAI messages put the text
and all calls of a turn in one assistant message with ``tool_calls`` (each with an id) and answer
each call with a ``tool`` message carrying that id. Results are matched to calls by Qwen-Agent's
``extra.function_id`` when present, else to the oldest open call of the same name.
``to_qwen_agent`` goes the other way, in the shape the authors' release writes.
"""

from __future__ import annotations

import json
from collections import deque
from collections.abc import Mapping, Sequence
from typing import Any

from astra_core.errors import AstraError
from astra_core.records import JSONDict


class MessageFormatError(AstraError):
    """A message list that cannot be converted; the message says which message and why."""


def content_text(content: Any) -> str:
    """Text of a message content: a string, ``None``, or a list of content items
    (``{"text": ...}`` in Qwen-Agent, ``{"type": "text", "text": ...}`` in OpenAI)."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = []
        for item in content:
            if isinstance(item, str):
                parts.append(item)
            elif isinstance(item, Mapping) and isinstance(item.get("text"), str):
                parts.append(item["text"])
        return "".join(parts)
    return str(content)


def arguments_text(arguments: Any) -> str:
    """Call arguments as the JSON string OpenAI messages carry (objects are encoded)."""
    if isinstance(arguments, str):
        return arguments
    return json.dumps(arguments if arguments is not None else {}, ensure_ascii=False)


def _join(first: str, second: str) -> str:
    return f"{first}\n{second}" if first and second else first or second


def is_qwen_agent(messages: Sequence[Any]) -> bool:
    """Whether a message list uses Qwen-Agent's ``function_call`` / ``function`` roles."""
    return any(
        isinstance(m, Mapping) and (m.get("role") == "function" or m.get("function_call"))
        for m in messages
    )


def from_qwen_agent(messages: Sequence[Any], *, keep_reasoning: bool = True) -> list[JSONDict]:
    """OpenAI messages for a Qwen-Agent message list; call ids are ``call_1``, ``call_2``..."""
    out: list[JSONDict] = []
    open_by_name: dict[str, deque[str]] = {}
    by_function_id: dict[str, str] = {}
    counter = 0

    for index, message in enumerate(messages):
        if not isinstance(message, Mapping):
            raise MessageFormatError(f"message {index} is not a JSON object")
        role = message.get("role")
        text = content_text(message.get("content"))
        reasoning = content_text(message.get("reasoning_content")) if keep_reasoning else ""
        found_extra = message.get("extra")
        extra: Mapping[str, Any] = found_extra if isinstance(found_extra, Mapping) else {}
        if role in ("system", "user"):
            out.append({"role": role, "content": text})
        elif role == "assistant":
            function_call = message.get("function_call")
            last = out[-1] if out and out[-1]["role"] == "assistant" else None
            if function_call:
                if not isinstance(function_call, Mapping) or not isinstance(
                    function_call.get("name"), str
                ):
                    raise MessageFormatError(
                        f"message {index}: function_call must be {{name, arguments}}"
                    )
                counter += 1
                call_id = f"call_{counter}"
                name = function_call["name"]
                call = {
                    "id": call_id,
                    "type": "function",
                    "function": {
                        "name": name,
                        "arguments": arguments_text(function_call.get("arguments")),
                    },
                }
                open_by_name.setdefault(name, deque()).append(call_id)
                if isinstance(extra.get("function_id"), (str, int)):
                    by_function_id[str(extra["function_id"])] = call_id
                # the turn's text and any earlier calls of the same turn share one message
                if last is not None:
                    last.setdefault("tool_calls", []).append(call)
                    target = last
                else:
                    target = {"role": "assistant", "content": "", "tool_calls": [call]}
                    out.append(target)
                target["content"] = _join(target["content"], text)
            elif last is not None and not last.get("tool_calls"):
                target = last
                target["content"] = _join(target["content"], text)
            else:
                target = {"role": "assistant", "content": text}
                out.append(target)
            if reasoning:
                target["reasoning_content"] = _join(target.get("reasoning_content", ""), reasoning)
        elif role in ("function", "tool"):
            name = message.get("name")
            call_id = None
            function_id = extra.get("function_id")
            if function_id is not None and str(function_id) in by_function_id:
                call_id = by_function_id.pop(str(function_id))
                queue = open_by_name.get(str(name)) or deque()
                if call_id in queue:
                    queue.remove(call_id)
            elif role == "tool" and isinstance(message.get("tool_call_id"), str):
                call_id = message["tool_call_id"]
            elif open_by_name.get(str(name)):
                call_id = open_by_name[str(name)].popleft()
            if call_id is None:
                raise MessageFormatError(
                    f"message {index}: a result of {name!r} answers no open call of that tool"
                )
            out.append({"role": "tool", "tool_call_id": call_id, "content": text})
        else:
            raise MessageFormatError(
                f"message {index}: role {role!r} is none of system, user, assistant, function"
            )
    return out


def to_qwen_agent(messages: Sequence[Mapping[str, Any]]) -> list[JSONDict]:
    """The Qwen-Agent message list of OpenAI ``messages``, as the release writes it: a turn's
    text (with its ``reasoning_content``) in one assistant message, then one assistant message
    per call (``content: []``, ``function_call: {name, arguments}``), then one ``function``
    message per result, named after the tool of the call it answers. ``from_qwen_agent`` reads
    it back (call ids renumbered ``call_1``, ``call_2``...; results of two calls of one tool
    are matched in order)."""
    out: list[JSONDict] = []
    names: dict[str, str] = {}  # call id -> tool name
    for index, message in enumerate(messages):
        role = message.get("role")
        text = content_text(message.get("content"))
        if role in ("system", "user"):
            out.append({"role": role, "content": text})
        elif role == "assistant":
            calls = message.get("tool_calls") or []
            reasoning = content_text(message.get("reasoning_content"))
            if text or reasoning or not calls:
                turn: JSONDict = {"role": "assistant", "content": text}
                if reasoning:
                    turn["reasoning_content"] = reasoning
                out.append(turn)
            for call in calls:
                function = call.get("function") if isinstance(call, Mapping) else None
                if not isinstance(function, Mapping) or not isinstance(function.get("name"), str):
                    raise MessageFormatError(f"message {index}: a tool call has no function name")
                names[str(call.get("id"))] = function["name"]
                out.append(
                    {
                        "role": "assistant",
                        "content": [],
                        "function_call": {
                            "name": function["name"],
                            "arguments": arguments_text(function.get("arguments")),
                        },
                    }
                )
        elif role == "tool":
            name = names.get(str(message.get("tool_call_id")))
            if name is None:
                raise MessageFormatError(
                    f"message {index}: a tool result answers no earlier call "
                    f"(tool_call_id {message.get('tool_call_id')!r})"
                )
            out.append({"role": "function", "name": name, "content": text})
        else:
            raise MessageFormatError(
                f"message {index}: role {role!r} is none of system, user, assistant, tool"
            )
    return out


def normalise_openai(messages: Sequence[Any]) -> list[JSONDict]:
    """OpenAI messages as ASTRA writes them: text content, JSON-string arguments, call ids."""
    out: list[JSONDict] = []
    counter = 0
    open_ids: deque[str] = deque()  # for tool messages that carry no tool_call_id
    for index, message in enumerate(messages):
        if not isinstance(message, Mapping):
            raise MessageFormatError(f"message {index} is not a JSON object")
        converted: JSONDict = {k: v for k, v in message.items() if v is not None}
        if converted.get("role") == "tool":
            call_id = converted.get("tool_call_id")
            if not call_id and open_ids:
                converted["tool_call_id"] = open_ids.popleft()
            elif isinstance(call_id, str) and call_id in open_ids:
                open_ids.remove(call_id)
        if "content" in message:
            converted["content"] = content_text(message.get("content"))
        calls = message.get("tool_calls")
        if calls:
            fixed = []
            for call in calls:
                if not isinstance(call, Mapping) or not isinstance(call.get("function"), Mapping):
                    raise MessageFormatError(f"message {index}: a tool call has no function")
                counter += 1
                function = dict(call["function"])
                function["arguments"] = arguments_text(function.get("arguments"))
                call_id = call.get("id") or f"call_{counter}"
                open_ids.append(call_id)
                fixed.append(
                    {
                        "id": call_id,
                        "type": call.get("type") or "function",
                        "function": function,
                    }
                )
            converted["tool_calls"] = fixed
        elif "tool_calls" in converted:
            del converted["tool_calls"]
        out.append(converted)
    return out
