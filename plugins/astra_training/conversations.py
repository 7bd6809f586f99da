"""Training conversations: OpenAI ``messages`` and ``tools``, read from trajectory datasets or
from any OpenAI-messages JSONL file, checked and normalised for chat templates."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import attrs

from astra_core.errors import RecordError
from astra_core.records import JSONDict, Trajectory

ROLES = ("system", "user", "assistant", "tool")


@attrs.frozen
class Conversation:
    """One training sample; ``source`` says where it came from (``file:line`` or a record id)."""

    messages: tuple[JSONDict, ...]
    tools: tuple[JSONDict, ...] = ()
    source: str = ""


def _text(content: Any, where: str) -> str:
    """Message content as one string: ``None`` is empty, text parts are joined."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = []
        for part in content:
            if isinstance(part, Mapping) and part.get("type") == "text":
                parts.append(str(part.get("text", "")))
            else:
                raise RecordError(f"{where}: only text content parts can be trained on")
        return "".join(parts)
    raise RecordError(f"{where}: content must be a string, a list of parts or null")


def _tool_call(call: Any, where: str) -> JSONDict:
    if not isinstance(call, Mapping):
        raise RecordError(f"{where}: a tool call must be an object")
    function = call.get("function", call)
    if not isinstance(function, Mapping) or not isinstance(function.get("name"), str):
        raise RecordError(f"{where}: a tool call needs function.name")
    arguments = function.get("arguments", {})
    if isinstance(arguments, str):
        try:
            json.loads(arguments)
        except json.JSONDecodeError as exc:
            raise RecordError(
                f"{where}: tool call {function['name']!r} has arguments that are not JSON: {exc}"
            ) from None
    elif not isinstance(arguments, Mapping):
        raise RecordError(f"{where}: tool call arguments must be a JSON string or an object")
    out: JSONDict = {
        "type": "function",
        "function": {"name": function["name"], "arguments": arguments},
    }
    if "id" in call:
        out["id"] = call["id"]
    return out


def normalize_messages(
    messages: Sequence[Any], where: str, *, system_prompt: str | None = None
) -> tuple[JSONDict, ...]:
    """Messages a chat template can render: known roles, string content, well-formed calls,
    and ``"weight": 0`` kept on assistant turns that are context only (not trained on).

    Raises ``RecordError`` naming ``where`` for anything else, and when no assistant turn is
    there to learn from.
    """
    out: list[JSONDict] = []
    for i, message in enumerate(messages):
        at = f"{where}: message {i}"
        if not isinstance(message, Mapping):
            raise RecordError(f"{at} is not an object")
        role = message.get("role")
        if role not in ROLES:
            raise RecordError(f"{at} has role {role!r}; expected one of {', '.join(ROLES)}")
        content = message.get("content")
        if role == "tool" and isinstance(content, Mapping):  # a structured tool result
            content = json.dumps(content, ensure_ascii=False)
        clean: JSONDict = {"role": role, "content": _text(content, at)}
        if role == "assistant" and message.get("tool_calls"):
            clean["tool_calls"] = [_tool_call(c, at) for c in message["tool_calls"]]
        if role == "assistant" and "weight" in message:
            # OpenAI's fine-tuning format: weight 0 keeps a turn in context but out of the loss
            if message["weight"] not in (0, 1) or isinstance(message["weight"], bool):
                raise RecordError(f"{at} has weight {message['weight']!r}; expected 0 or 1")
            if message["weight"] == 0:
                clean["weight"] = 0
        if role == "tool":
            for key in ("tool_call_id", "name"):
                if key in message:
                    clean[key] = message[key]
        out.append(clean)
    if not any(m["role"] == "assistant" and m.get("weight", 1) for m in out):
        raise RecordError(f"{where}: no assistant message to train on")
    if system_prompt and out[0]["role"] != "system":
        out.insert(0, {"role": "system", "content": system_prompt})
    return tuple(out)


def read_jsonl(path: str | Path, *, system_prompt: str | None = None) -> Iterator[Conversation]:
    """Conversations of an OpenAI-messages JSONL file: ``{"messages": [...], "tools": [...]}``."""
    p = Path(path)
    if not p.is_file():
        raise RecordError(f"SFT data file {p} does not exist")
    with p.open(encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, 1):
            if not line.strip():
                continue
            where = f"{p}:{lineno}"
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise RecordError(f"{where}: not valid JSON: {exc}") from None
            if not isinstance(row, Mapping) or not isinstance(row.get("messages"), list):
                raise RecordError(f'{where}: expected an object with a "messages" list')
            tools = row.get("tools") or []
            if not isinstance(tools, list):
                raise RecordError(f'{where}: "tools" must be a list of tool schemas')
            yield Conversation(
                normalize_messages(row["messages"], where, system_prompt=system_prompt),
                tuple(tools),
                where,
            )


def from_trajectories(
    records: Iterable[Any], *, system_prompt: str | None = None
) -> tuple[list[Conversation], int]:
    """Conversations of the ``status == "ok"`` trajectories, and how many were skipped."""
    out: list[Conversation] = []
    skipped = 0
    for record in records:
        if not isinstance(record, Trajectory) or record.status != "ok":
            skipped += 1
            continue
        where = f"trajectory {record.id}"
        out.append(
            Conversation(
                normalize_messages(record.messages, where, system_prompt=system_prompt),
                tuple(record.tools),
                where,
            )
        )
    return out, skipped


def write_jsonl(conversations: Iterable[Conversation], path: str | Path) -> int:
    """Write conversations as OpenAI-messages JSONL (what ``read_jsonl`` and TRL read)."""
    n = 0
    with Path(path).open("w", encoding="utf-8") as fh:
        for conv in conversations:
            row = {"messages": list(conv.messages), "tools": list(conv.tools)}
            fh.write(json.dumps(row, ensure_ascii=False) + "\n")
            n += 1
    return n
