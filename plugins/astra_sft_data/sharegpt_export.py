"""Trajectories as ShareGPT rows, in the tool-use convention LLaMA-Factory reads.

A row is ``{"conversations": [{"from", "value"}...], "tools": "<JSON string>", "id",
"metadata"}`` with roles ``system`` (first, optional), ``human``, ``gpt``, ``function_call``
and ``observation``:

* an assistant turn with tool calls becomes one ``function_call`` turn whose value is the call
  as JSON, ``{"name": ..., "arguments": {...}}`` (arguments as an object), or a JSON list of
  them for parallel calls;
* the tool messages answering it become one ``observation`` turn; several results are joined
  with ``\\n</tool_response>\\n<tool_response>\\n`` as LLaMA-Factory's own OpenAI converter does;
* other assistant turns become ``gpt`` turns, user turns ``human`` turns.

So human/observation turns sit at odd positions and gpt/function_call turns at even ones, which
LLaMA-Factory requires. ShareGPT has no place for the text an assistant writes next to its calls
(its plan); ``thoughts="drop"`` leaves it out (as LLaMA-Factory's converter does),
``thoughts="think"`` keeps it, and any ``reasoning_content``, as a ``<think>...</think>`` prefix,
which LLaMA-Factory's templates with thought words strip off and render before the call.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping
from typing import Any, Literal

from astra_core.records import JSONDict, Trajectory

Thoughts = Literal["drop", "think"]
THOUGHT_CHOICES: tuple[str, ...] = ("drop", "think")
OBSERVATION_SEPARATOR = "\n</tool_response>\n<tool_response>\n"
ROLE_NAMES = {"system": "system", "user": "human", "assistant": "gpt"}


def _call_object(call: Mapping[str, Any]) -> JSONDict:
    function = call["function"]
    arguments = function.get("arguments")
    if isinstance(arguments, str):
        arguments = json.loads(arguments) if arguments.strip() else {}
    return {"name": function["name"], "arguments": arguments if arguments is not None else {}}


def _think(thought: str, text: str) -> str:
    return f"<think>\n{thought}\n</think>\n\n{text}" if thought else text


def to_sharegpt(traj: Trajectory, *, thoughts: Thoughts = "drop") -> JSONDict:
    """One ShareGPT row for a valid trajectory (check it with ``validate_trajectory`` first:
    the conversion trusts that every call is answered and arguments are JSON)."""
    turns: list[JSONDict] = []
    results: list[str] = []

    def flush_results() -> None:
        if results:
            turns.append({"from": "observation", "value": OBSERVATION_SEPARATOR.join(results)})
            results.clear()

    for message in traj.messages:
        role = message.get("role")
        if role == "tool":
            results.append(str(message.get("content") or ""))
            continue
        flush_results()
        text = str(message.get("content") or "")
        reasoning = str(message.get("reasoning_content") or "") if thoughts == "think" else ""
        calls = message.get("tool_calls") or []
        if role == "assistant" and calls:
            objects = [_call_object(c) for c in calls]
            value = json.dumps(objects[0] if len(objects) == 1 else objects, ensure_ascii=False)
            thought = "\n".join(t for t in (reasoning, text) if t) if thoughts == "think" else ""
            turns.append({"from": "function_call", "value": _think(thought, value)})
        else:
            turns.append({"from": ROLE_NAMES[str(role)], "value": _think(reasoning, text)})
    flush_results()
    task = traj.task
    metadata = {
        "server": traj.metadata.get("server", ""),
        "domain": traj.metadata.get("domain", ""),
        "chain": list(traj.metadata.get("chain") or []),
        "task_origin": task.origin,
        "augmentation": task.augmentation,
        "scores": dict(traj.scores),
        "reward": traj.reward,
    }
    return {
        "conversations": turns,
        "tools": json.dumps(list(traj.tools), ensure_ascii=False),
        "id": traj.id,
        "metadata": metadata,
    }


def sharegpt_rows(
    trajectories: Iterable[Trajectory], *, thoughts: Thoughts = "drop"
) -> Iterator[JSONDict]:
    for traj in trajectories:
        yield to_sharegpt(traj, thoughts=thoughts)
