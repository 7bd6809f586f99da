"""The offline agent: runs a verified chain through a real tool executor, with arguments taken
from the task and from earlier tool outputs, so every tool output in the data is real.

It writes the conversation in OpenAI chat format: a planning sentence and one tool call per
assistant turn (``arguments`` a JSON string), a ``tool`` message answering each call, and a
final answer built from what the tools returned. A rollout that cannot go on (a tool error, an
empty result a later step needs, the turn cap) ends early with a ``failure`` reason.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar

import attrs

from astra_core.records import JSONDict, ToolCall, ToolCallResult, ToolServer, content_id
from astra_core.tool_schemas import ARRAY_STEP, singular
from astra_trajectories.chain_verification import ChainPlan
from astra_trajectories.task_templates import (
    GeneratedTask,
    format_value,
    humanise,
    phrase_template,
    render_step,
)

if TYPE_CHECKING:
    from astra_core.registry import ComponentBuilder
    from astra_trajectories.options import ChainExecutorOptions

TOOL_ERROR = "tool-error"
MISSING_VALUE = "missing-upstream-value"
TURN_CAP = "turn-cap"
ORDINALS = ("First,", "Next,", "Then,", "After that,")
ANSWER_OPENERS = (
    "Here is what I found.",
    "Done. Here is a summary:",
    "All steps went through:",
    "Here are the results:",
)


class MissingValue(Exception):
    pass


def agent_voice(phrase: str) -> str:
    """Phrases are written as the user asks ("show me my events"); the agent says them back
    ("show you your events")."""
    swaps = {"me": "you", "my": "your", "mine": "yours", "i": "you"}
    return re.sub(r"\b(me|my|mine|I)\b", lambda m: swaps[m.group(1).lower()], phrase)


@attrs.frozen
class Rollout:
    messages: tuple[JSONDict, ...]
    results: tuple[ToolCallResult, ...]
    failure: str | None = None
    detail: str = ""


def _find_key(data: Any, key: str) -> Any:
    if isinstance(data, Mapping):
        if key in data:
            return data[key]
        children: Sequence[Any] = list(data.values())
    elif isinstance(data, list):
        children = data[:1]
    else:
        raise MissingValue(key)
    for child in children:
        try:
            return _find_key(child, key)
        except MissingValue:
            continue
    raise MissingValue(key)


def extract(data: Any, path: Sequence[str], field_name: str = "") -> Any:
    """The value at ``path`` in a tool output (``"[]"``: the first element of an array). When
    the path is not there (an output documented only in words), the first ``field_name`` key
    found anywhere is used."""
    current = data
    try:
        for step in path:
            if step == ARRAY_STEP:
                if not isinstance(current, list) or not current:
                    raise MissingValue("the list is empty")
                current = current[0]
            elif isinstance(current, Mapping) and step in current:
                current = current[step]
            else:
                raise KeyError(step)
        return current
    except KeyError:
        return _find_key(data, field_name or path[-1])


def short(value: Any, limit: int = 80) -> str:
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def brief(item: Any, fields: int = 3) -> str:
    if isinstance(item, Mapping):
        scalars = [short(v, 40) for v in item.values() if not isinstance(v, (dict, list))]
        return ", ".join(scalars[:fields]) or "details"
    return short(item, 40)


def summarise(data: Any, limit: int = 5) -> str:
    """A one-line account of a tool output: its scalar facts and the size of its lists."""
    if not isinstance(data, Mapping):
        return short(data, 160)
    parts = []
    for key, value in data.items():
        name = humanise(str(key))
        if isinstance(value, list):
            if len(value) == 1:
                parts.append(f"1 {singular(name)}: {brief(value[0])}")
            else:
                parts.append(
                    f"{len(value)} {name} (first: {brief(value[0])})" if value else f"no {name}"
                )
        elif isinstance(value, Mapping):
            parts.append(f"{name}: {brief(value)}")
        else:
            parts.append(f"{name}: {short(value)}")
    return "; ".join(parts[:limit])


class ChainExecutingAgent:
    """Executes the plan's steps in order through ``options.executor`` (a fresh session per
    rollout when the executor offers ``open_session``)."""

    name: ClassVar[str] = "offline-chain-executor"
    step: ClassVar[str] = "agent"

    def __init__(self, options: ChainExecutorOptions, builder: ComponentBuilder) -> None:
        self.executor = builder.build("tool_executor", options.executor, key="executor")
        self.max_turns = options.max_turns
        self.system_prompt = options.system_prompt

    def system_message(self, server: ToolServer) -> str:
        description = server.description.strip()
        if description and not description.endswith("."):
            description += "."
        return self.system_prompt.format(title=server.title, description=description).strip()

    def run(
        self, server: ToolServer, generated: GeneratedTask, plan: ChainPlan, *, session_key: str
    ) -> Rollout:
        session = (
            self.executor.open_session(session_key)
            if hasattr(self.executor, "open_session")
            else self.executor
        )
        messages: list[JSONDict] = [
            {"role": "system", "content": self.system_message(server)},
            {"role": "user", "content": generated.task.query},
        ]
        results: list[ToolCallResult] = []
        outputs: list[Any] = []
        done: list[str] = []

        def stop(reason: str, detail: str, answer: str) -> Rollout:
            messages.append({"role": "assistant", "content": answer})
            return Rollout(tuple(messages), tuple(results), reason, detail)

        for index, step in enumerate(plan.steps):
            if index >= self.max_turns:
                return stop(
                    TURN_CAP,
                    f"the chain needs {len(plan.steps)} calls, cap is {self.max_turns}",
                    "I have to stop here: too many steps.",
                )
            arguments: dict[str, Any] = {}
            for b in step.bindings:
                if b.source == "user":
                    arguments[b.param] = generated.values[b.param]
                    continue
                assert b.step is not None
                try:
                    arguments[b.param] = extract(outputs[b.step], b.path, b.field_name)
                except MissingValue as exc:
                    return stop(
                        MISSING_VALUE,
                        f"step {index + 1} {step.tool}.{b.param}: step {b.step + 1} returned "
                        f"nothing for it ({exc})",
                        f"I could not {done[b.step] if b.step < len(done) else 'continue'}: "
                        "the earlier result was empty, so I cannot go on.",
                    )
            phrase = agent_voice(
                render_step(
                    phrase_template(server, step.tool),
                    {p: format_value(p, v) for p, v in arguments.items()},
                )
            )
            ordinal = (
                ""
                if len(plan.steps) == 1
                else (
                    "Finally,"
                    if index == len(plan.steps) - 1 and index > 0
                    else ORDINALS[min(index, len(ORDINALS) - 1)]
                )
            )
            call_id = f"call_{index + 1}_{content_id(generated.task.id, index)[:8]}"
            messages.append(
                {
                    "role": "assistant",
                    "content": f"{ordinal} I'll {phrase}.".strip(),
                    "tool_calls": [
                        {
                            "id": call_id,
                            "type": "function",
                            "function": {
                                "name": step.tool,
                                "arguments": json.dumps(arguments, ensure_ascii=False),
                            },
                        }
                    ],
                }
            )
            result = session.call(server, ToolCall(step.tool, arguments))
            results.append(result)
            messages.append({"role": "tool", "tool_call_id": call_id, "content": result.output})
            if result.error:
                return stop(
                    TOOL_ERROR,
                    f"step {index + 1} {step.tool}: {short(result.output, 300)}",
                    f"I could not {phrase}: the tool answered {short(result.output, 200)}",
                )
            try:
                outputs.append(json.loads(result.output))
            except json.JSONDecodeError:
                outputs.append(result.output)
            done.append(phrase)
        lines = [f"- {plan.steps[i].tool}: {summarise(outputs[i])}." for i in range(len(done))]
        opener = ANSWER_OPENERS[int(content_id(generated.task.id), 16) % len(ANSWER_OPENERS)]
        answer = f"{opener}\n" + "\n".join(lines)
        answer += f"\n\nIn short: {summarise(outputs[-1], limit=8)}."
        messages.append({"role": "assistant", "content": answer})
        return Rollout(tuple(messages), tuple(results))
