"""OpenAI chat messages in and out: server answers normalised to one ``ChatResponse`` shape, and
conversations rewritten for servers or models that only see text (tool calls as text blocks).

Normalised answers always have ``role="assistant"``, a string ``content`` ("" rather than null),
and, when the model called tools, ``tool_calls`` with an ``id``, ``type="function"`` and the
arguments as a JSON *string* (Ollama sends objects, some servers omit ids: both are repaired, ids
derived from the call's content so a replayed answer is byte-identical).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from astra_core.protocols import ChatResponse, ParsedTurn
from astra_core.records import JSONDict, ToolCall, canonical_json
from astra_llm.hermes_format import render_tools_prompt


def call_id(name: str, arguments: str, index: int, context: str) -> str:
    digest = hashlib.sha256(canonical_json([name, arguments, index, context]).encode()).hexdigest()
    return f"call_{digest[:24]}"


def _arguments_json(value: Any, name: str) -> str:
    if value is None:
        return "{}"
    if isinstance(value, str):
        return value
    if isinstance(value, Mapping):
        return json.dumps(dict(value), ensure_ascii=False)
    raise ValueError(f"arguments of tool call {name!r} are a {type(value).__name__}")


def normalize_tool_calls(raw: Any, *, context: str = "") -> list[JSONDict]:
    if not isinstance(raw, list):
        raise ValueError(f"tool_calls must be a list, got {type(raw).__name__}")
    calls = []
    for index, call in enumerate(raw):
        function = call.get("function") if isinstance(call, Mapping) else None
        if not isinstance(function, Mapping) or not isinstance(function.get("name"), str):
            raise ValueError(f"tool_calls[{index}] has no function name: {call!r}")
        name = function["name"]
        arguments = _arguments_json(function.get("arguments"), name)
        calls.append(
            {
                "id": call.get("id") or call_id(name, arguments, index, context),
                "type": "function",
                "function": {"name": name, "arguments": arguments},
            }
        )
    return calls


def _text(content: Any) -> str:
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):  # content parts: keep the text ones
        return "".join(
            p.get("text", "") for p in content if isinstance(p, Mapping) and p.get("type") == "text"
        )
    raise ValueError(f"message content is a {type(content).__name__}")


def _usage(raw: Any) -> dict[str, int]:
    if not isinstance(raw, Mapping):
        return {}
    return {k: v for k, v in raw.items() if isinstance(v, int) and not isinstance(v, bool)}


def response_from_completion(body: Any) -> ChatResponse:
    """A ``chat.completion`` object (OpenAI, vLLM, SGLang, Ollama, transformers serve) to a
    ``ChatResponse``; a body of any other shape raises ``ValueError`` saying what is missing."""
    if not isinstance(body, Mapping):
        raise ValueError(f"the answer is not a JSON object: {str(body)[:200]!r}")
    choices = body.get("choices")
    if not isinstance(choices, list) or not choices:
        raise ValueError(f"the answer has no choices: {canonical_json(body)[:300]}")
    choice = choices[0]
    message = choice.get("message") if isinstance(choice, Mapping) else None
    if not isinstance(message, Mapping):
        raise ValueError(f"choices[0] has no message: {canonical_json(choice)[:300]}")
    content = _text(message.get("content"))
    out: JSONDict = {"role": "assistant", "content": content}
    finish = choice.get("finish_reason") or "stop"
    if message.get("tool_calls"):
        out["tool_calls"] = normalize_tool_calls(message["tool_calls"], context=content)
        finish = "tool_calls"  # Ollama says "stop" even when it called tools
    return ChatResponse(message=out, finish_reason=str(finish), usage=_usage(body.get("usage")))


def response_from_text(
    text: str,
    *,
    finish_reason: str,
    usage: Mapping[str, int],
    parse: Callable[[str], ParsedTurn],
) -> ChatResponse:
    """Generated text with ``<tool_call>`` blocks (or whatever ``parse`` reads) to a response."""
    turn = parse(text)
    message: JSONDict = {"role": "assistant", "content": turn.content}
    if turn.calls:
        message["tool_calls"] = normalize_tool_calls(
            [{"function": {"name": c.name, "arguments": dict(c.arguments)}} for c in turn.calls],
            context=text,
        )
        finish_reason = "tool_calls"
    return ChatResponse(message=message, finish_reason=finish_reason, usage=dict(usage))


def response_to_json(response: ChatResponse) -> JSONDict:
    return {
        "message": response.message,
        "finish_reason": response.finish_reason,
        "usage": dict(response.usage),
    }


def response_from_json(data: Mapping[str, Any]) -> ChatResponse:
    """Either a stored ``{"message", "finish_reason", "usage"}`` or a raw ``chat.completion``."""
    if "choices" in data:
        return response_from_completion(data)
    message = data.get("message")
    if not isinstance(message, Mapping):
        raise ValueError('a stored response needs a "message" object')
    return ChatResponse(
        message=dict(message),
        finish_reason=str(data.get("finish_reason") or "stop"),
        usage=_usage(data.get("usage")),
    )


def _decoded_arguments(call: Mapping[str, Any]) -> ToolCall:
    function = call.get("function") or {}
    args = function.get("arguments")
    if isinstance(args, str):
        try:
            args = json.loads(args) if args.strip() else {}
        except ValueError:
            args = {"_raw": args}  # keep what the model wrote rather than lose the turn
    return ToolCall(name=str(function.get("name", "")), arguments=dict(args or {}))


def arguments_as_objects(messages: Sequence[Mapping[str, Any]]) -> list[JSONDict]:
    """Messages with tool-call arguments decoded to dicts: what HF chat templates expect."""
    out = []
    for m in messages:
        m = dict(m)
        if m.get("tool_calls"):
            m["tool_calls"] = [
                {**dict(c), "function": {**dict(c["function"]), "arguments": dict(tc.arguments)}}
                for c, tc in ((c, _decoded_arguments(c)) for c in m["tool_calls"])
            ]
        out.append(m)
    return out


def messages_with_text_tools(
    messages: Sequence[Mapping[str, Any]],
    tools: Sequence[Mapping[str, Any]] | None,
    *,
    format_calls: Callable[[Sequence[ToolCall]], str],
    tools_prompt: str | None = None,
) -> list[JSONDict]:
    """The conversation as plain text turns: tools offered in the system prompt, earlier calls as
    text blocks, tool results as user turns wrapped in ``<tool_response>`` (Hermes/Qwen style)."""
    out: list[JSONDict] = []
    rest = list(messages)
    if tools:
        offer = render_tools_prompt(tools, tools_prompt)
        if rest and rest[0].get("role") == "system":
            system = _text(rest.pop(0).get("content"))
            offer = f"{system}\n\n{offer}" if system else offer
        out.append({"role": "system", "content": offer})
    responses_open = False  # consecutive tool results share one user turn
    for m in rest:
        role = m.get("role")
        content = _text(m.get("content"))
        if role == "tool":
            block = f"<tool_response>\n{content}\n</tool_response>"
            if responses_open:
                out[-1]["content"] += "\n" + block
            else:
                out.append({"role": "user", "content": block})
            responses_open = True
            continue
        responses_open = False
        if role == "assistant" and m.get("tool_calls"):
            calls = format_calls([_decoded_arguments(c) for c in m["tool_calls"]])
            content = f"{content}\n{calls}" if content else calls
        out.append({"role": str(role), "content": content})
    return out
