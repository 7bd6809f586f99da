"""Demonstrations that recover from a failed call: a name misspelt, the tool's error, the retry.

A small model's commonest slip on unseen arenas is a name copied with one letter wrong; the
call fails and, having seen only flawless demonstrations, it never tries again. ``with_retry``
rewrites one call of a demonstration into that slip and its repair: the call with one word's
first letter changed (marked ``weight: 0``, so it is context and not a target), the error the
tool printed for it, and the same call again with the name right. The error is what the
arena's own tool code prints in the sandbox for the misspelt name, which is none of the
arena's names, nor of the renamed copy's that the demonstration may be.
"""

from __future__ import annotations

import json
import random
import string
from collections.abc import Callable, Collection
from typing import Any

import attrs

from astra_core.records import JSONDict, ToolCall, ToolCallResult, Trajectory
from astra_core.tool_errors import call_failed

# runs a call in the arena's sandbox session
RunCall = Callable[[ToolCall], ToolCallResult]


def misspelt(name: str, rng: random.Random, taken: Collection[str] = ()) -> str:
    """``name`` with the first letter of one of its words changed, matching no name in
    ``taken`` (compared casefolded, as the tools look names up)."""
    words = name.split(" ")
    starts = [i for i, w in enumerate(words) if w[:1].isalpha()]
    if not starts:
        raise ValueError(f"name {name!r} has no word starting with a letter to misspell")
    avoid = {t.casefold() for t in taken} | {name.casefold()}
    free = []
    for i in starts:
        first = words[i][0]
        letters = string.ascii_uppercase if first.isupper() else string.ascii_lowercase
        for letter in letters:
            out = " ".join([*words[:i], letter + words[i][1:], *words[i + 1 :]])
            if out.casefold() not in avoid:
                free.append(out)
    if free:
        return rng.choice(free)
    raise ValueError(f"no misspelling of {name!r} is free of the names taken")


def with_retry(
    demo: Trajectory, rng: random.Random, run: RunCall, taken: Collection[str] = ()
) -> Trajectory:
    """``demo`` with one of its calls (drawn with ``rng``) first made with a misspelt name.

    The call's string argument is misspelt (avoiding ``taken``), ``run`` runs the misspelt call
    in the arena's sandbox for the error it prints, and a new turn repeats the call as it was.
    Raises ``ValueError`` naming the demonstration when it has no call with a string argument,
    or when the misspelt call did not fail (raise, or answer with an ``{"error": ...}`` object)."""
    messages = list(demo.messages)
    source = demo.metadata.get("arena_id", demo.id)
    sites = [
        (i, j, key)
        for i, m in enumerate(messages)
        if m.get("role") == "assistant"
        for j, call in enumerate(m.get("tool_calls") or [])
        for key, value in _arguments(call).items()
        if isinstance(value, str) and value.strip()
    ]
    if not sites:
        raise ValueError(f"demonstration of {source}: no call with a name argument to misspell")
    i, j, key = rng.choice(sites)
    turn = messages[i]
    right = turn["tool_calls"][j]
    arguments = _arguments(right)
    wrong_args = {**arguments, key: misspelt(arguments[key], rng, taken)}
    name = right["function"]["name"]
    result = run(ToolCall(name, wrong_args))
    if not call_failed(result):
        raise ValueError(
            f"demonstration of {source}: {name} with the misspelt {wrong_args[key]!r} did not "
            f"fail: {result.output[:200]}"
        )

    ids = {c.get("id") for m in messages for c in m.get("tool_calls") or []}
    n = len(ids) + 1
    while f"call_{n}" in ids:
        n += 1
    retry_id = f"call_{n}"
    wrong = {**right, "function": {**right["function"], "arguments": _json(wrong_args)}}
    calls = list(turn["tool_calls"])
    calls[j] = wrong
    # the slip is context, not a target: the model should learn the repair, not the misspelling
    failed = {**turn, "tool_calls": calls, "weight": 0}
    # the turn's tool outputs follow it in call order; the misspelt call's becomes the error
    n_out = len(calls)
    outputs = messages[i + 1 : i + 1 + n_out]
    if len(outputs) != n_out or any(o.get("role") != "tool" for o in outputs):
        raise ValueError(f"demonstration of {source}: turn {i} is not followed by its outputs")
    right_output = outputs[j]
    outputs[j] = {**right_output, "content": result.output}
    retry_turn: JSONDict = {
        "role": "assistant",
        "content": "",
        "tool_calls": [{**right, "id": retry_id}],
    }
    retry_output = {**right_output, "tool_call_id": retry_id}
    new = [*messages[:i], failed, *outputs, retry_turn, retry_output, *messages[i + 1 + n_out :]]
    return attrs.evolve(
        demo,
        messages=tuple(new),
        metadata={**demo.metadata, "retried": {"tool": name, "misspelt": wrong_args[key]}},
        id="",
    )


def _arguments(call: JSONDict) -> dict[str, Any]:
    args = call["function"].get("arguments", {})
    return dict(json.loads(args) if isinstance(args, str) else args)


def _json(arguments: dict[str, Any]) -> str:
    return json.dumps(arguments, ensure_ascii=False)
