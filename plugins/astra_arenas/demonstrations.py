"""SFT demonstrations from the verified calls of training arenas.

Each tool-needing sub-question of an arena has a call that was verified in the sandbox; replaying
those calls in dependency order (independent calls of one step together, as parallel calls)
gives a correct multi-turn conversation whose tool outputs are real. The SFT trainer asks for
them (``astra_arena_demonstrations``) for training arenas only, never for held-out ones.
"""

from __future__ import annotations

import json
import random
from typing import Any

from astra_arenas.renaming import fresh_names, renamed_demonstration
from astra_arenas.retries import with_retry
from astra_arenas.runtime import ToolCodeRuntime
from astra_core.records import Arena, Task, Trajectory


def dependency_levels(arena: Arena) -> list[list[str]]:
    """Tool sub-question ids grouped by depth: level k depends only on levels < k."""
    by_id = {sq.id: sq for sq in arena.subquestions if sq.needs_tool}
    depth: dict[str, int] = {}

    def level(sid: str) -> int:
        if sid not in depth:
            deps = [d for d in by_id[sid].depends_on if d in by_id]
            depth[sid] = 1 + max((level(d) for d in deps), default=-1)
        return depth[sid]

    levels: dict[int, list[str]] = {}
    for sid in by_id:
        levels.setdefault(level(sid), []).append(sid)
    return [levels[k] for k in sorted(levels)]


def arena_demonstration(arena: Arena, runtime: Any, system_prompt: str | None = None) -> Trajectory:
    """Replay the verified calls of ``arena`` through ``runtime`` (an arena runtime)."""
    by_id = {sq.id: sq for sq in arena.subquestions}
    messages: list[dict[str, Any]] = []
    if system_prompt:
        messages.append({"role": "system", "content": system_prompt})
    messages.append({"role": "user", "content": arena.question})
    runtime.reset()
    n = 0
    for level in dependency_levels(arena):
        calls = []
        results = []
        for sid in level:
            call = by_id[sid].call
            if call is None:
                raise ValueError(f"arena {arena.id}: sub-question {sid} has no verified call")
            n += 1
            call_id = f"call_{n}"
            calls.append(
                {
                    "id": call_id,
                    "type": "function",
                    "function": {
                        "name": call.name,
                        "arguments": json.dumps(call.arguments, ensure_ascii=False),
                    },
                }
            )
            result = runtime.step(call)
            if result.error:
                raise ValueError(
                    f"arena {arena.id}: verified call {call.name} failed on replay: {result.output}"
                )
            results.append(
                {
                    "role": "tool",
                    "tool_call_id": call_id,
                    "name": call.name,
                    "content": result.output,
                }
            )
        messages.append({"role": "assistant", "content": "", "tool_calls": calls})
        messages.extend(results)
    messages.append({"role": "assistant", "content": f"The answer is {arena.answer}."})
    task = Task(
        query=arena.question,
        server_id=arena.domain or "arena",
        origin="server",
        target_tools=tuple(sq.tool for sq in arena.subquestions if sq.tool),
        metadata={"arena_id": arena.id},
    )
    return Trajectory(
        messages=tuple(messages),
        tools=arena.tools,
        task=task,
        metadata={"source": "arena-demonstration", "arena_id": arena.id},
    )


def arena_demonstrations(
    arena: Arena,
    sandbox: Any,
    *,
    renamings: int = 0,
    retries: int = 0,
    seed: int = 0,
    system_prompt: str | None = None,
) -> list[Trajectory]:
    """The demonstration of ``arena``, followed by ``renamings`` copies over freshly named
    entities (``renamed_demonstration``; names drawn from ``seed`` and the arena id).

    The first ``retries`` of those copies (at most ``renamings``) also recover from one
    misspelt call (``with_retry``; its error printed by the arena's tool code in the sandbox).
    What the ``astra_arena_demonstrations`` hook answers for this plugin's arenas."""
    if not 0 <= retries <= renamings:
        raise ValueError(f"retries ({retries}) must be between 0 and renamings ({renamings})")
    out = []
    # not ``with``: entering starts a session, and the replay starts its own fresh one
    runtime = ToolCodeRuntime(arena, sandbox)
    try:
        demo = arena_demonstration(arena, runtime, system_prompt)
        out.append(demo)
        for k in range(renamings):
            rng = random.Random(f"rename:{seed}:{arena.id}:{k}")
            names = fresh_names(arena, rng)
            copy = renamed_demonstration(demo, names)
            if k < retries:
                # a name of neither world fails alike in the arena and its renamed copy
                copy = with_retry(copy, rng, runtime.step, taken=[*names, *names.values()])
            out.append(copy)
    finally:
        runtime.close()
    return out
