"""The same arena over freshly named entities: same facts, same structure, new names.

An offline-world arena records every name its world drew (``metadata["names"]``, name -> kind).
``fresh_names`` draws a new name of the same kind for each; ``renamed_arena`` replaces them all
at once in the question, the answers, the verified calls and the tool code, and
``renamed_demonstration`` does the same to a demonstration replayed from the arena, tool
outputs included: the result is exactly the replay of the renamed arena (a test checks this
against the sandbox), without the cost of a sandbox session per copy. Trained on such copies, a
model cannot recall an entity's name from an earlier epoch: it has to copy it from the question
or a tool output, which is what held-out arenas ask for.
"""

from __future__ import annotations

import functools
import json
import random
import re
from collections.abc import Callable, Iterable
from typing import Any

import attrs

from astra_arenas.names import NameForge
from astra_core.records import Arena, SubQuestion, Trajectory, content_id

# A Python string literal as the tool code writes a table's names and values (repr, one line).
_LITERAL = re.compile(r"'(?:[^'\\\n]|\\.)*'|\"(?:[^\"\\\n]|\\.)*\"")


def fresh_names(arena: Arena, rng: random.Random) -> dict[str, str]:
    """A new name, drawn with ``rng``, for each entity name ``arena`` records (old -> new).

    Raises ``ValueError`` naming the arena when it records none (arenas of other generators,
    or built before names were recorded)."""
    names = arena.metadata.get("names")
    if not isinstance(names, dict) or not names:
        raise ValueError(
            f"arena {arena.id}: no entity names in its metadata to rename (only offline-world "
            "arenas built by this version record them; rebuild the arenas)"
        )
    forge = _holding(tuple(names), int(arena.metadata.get("name_syllables", 0))).fork(rng)
    return {old: forge.new(kind) for old, kind in names.items()}


@functools.lru_cache(maxsize=64)
def _holding(names: tuple[str, ...], max_syllables: int) -> NameForge:
    """A forge that has taken ``names`` (and draws nothing itself): new names neither contain
    nor hide in old ones, so none is left by chance. Kept for each of an arena's renamings to
    fork: taking the old names again was half of every renaming's clash tests."""
    forge = NameForge(random.Random(0), max_syllables)
    for old in names:
        forge.reserve(old)
    return forge


def renamed_arena(arena: Arena, mapping: dict[str, str], suffix: str) -> Arena:
    """``arena`` with every name renamed by ``mapping``; its id is ``arena.id + suffix``.

    Raises ``ValueError`` naming the arena when an old name is left anywhere after it."""
    text = _text_renamer(mapping)
    code = _code_renamer(mapping)
    names = arena.metadata["names"]
    copy = attrs.evolve(
        arena,
        question=text(arena.question),
        answer=text(arena.answer),
        subquestions=tuple(_renamed_subquestion(sq, text) for sq in arena.subquestions),
        tool_code={name: code(src) for name, src in arena.tool_code.items()},
        metadata={
            **arena.metadata,
            "names": {mapping[old]: kind for old, kind in names.items()},
            "renamed_from": arena.id,
        },
        id=arena.id + suffix,
    )
    texts = [copy.question, copy.answer, *copy.tool_code.values()]
    texts += [t for sq in copy.subquestions for t in (sq.question, sq.answer)]
    _check_no_old_names(arena.id, texts, mapping)
    return copy


def renamed_demonstration(demo: Trajectory, mapping: dict[str, str]) -> Trajectory:
    """A demonstration of an arena, as replayed from that arena renamed by ``mapping``.

    Raises ``ValueError`` naming the source arena when an old name is left after it."""
    text = _text_renamer(mapping)
    messages = tuple(_renamed_value(m, text) for m in demo.messages)
    source = demo.metadata.get("arena_id", demo.id)
    _check_no_old_names(source, [json.dumps(messages, ensure_ascii=False)], mapping)
    # Ids from the demonstration's and the mapping's: what the copy is made of, and a
    # fraction of the cost of hashing the copy itself (two thirds of a renaming's time)
    return attrs.evolve(
        demo,
        messages=messages,
        task=attrs.evolve(
            demo.task,
            query=text(demo.task.query),
            id=content_id("renamed", demo.task.id, mapping),
        ),
        metadata={**demo.metadata, "renamed_from": source},
        id=content_id("renamed", demo.id, mapping),
    )


def _whole_names(names: Iterable[str]) -> str:
    # longest names first, whole words only: "Vel Tora" is never matched as "Vel"
    alternatives = "|".join(re.escape(n) for n in sorted(names, key=len, reverse=True))
    return rf"(?<!\w)(?:{alternatives})(?!\w)"


@functools.lru_cache(maxsize=64)
def _old_names(names: tuple[str, ...]) -> tuple[re.Pattern[str], re.Pattern[str]]:
    """An arena's old names as whole words (what its renamings replace), and those or their
    table keys (what none may leave). The same for each renaming of the arena: kept."""
    keys = "|".join(re.escape(repr(n.casefold())) for n in names)
    return re.compile(_whole_names(names)), re.compile(rf"{_whole_names(names)}|{keys}")


def _text_renamer(mapping: dict[str, str]) -> Callable[[str], str]:
    pattern = _old_names(tuple(mapping))[0]  # one pass: a new name is never renamed again
    return lambda s: pattern.sub(lambda m: mapping[m.group()], s)


def _code_renamer(mapping: dict[str, str]) -> Callable[[str], str]:
    # tables key rows by the casefolded name and show the name as written: both are literals
    literals = {repr(old): repr(new) for old, new in mapping.items()}
    literals |= {repr(old.casefold()): repr(new.casefold()) for old, new in mapping.items()}
    return lambda src: _LITERAL.sub(lambda m: literals.get(m.group(), m.group()), src)


def _renamed_subquestion(sq: SubQuestion, text: Callable[[str], str]) -> SubQuestion:
    call = sq.call
    if call is not None:
        call = attrs.evolve(call, arguments=_renamed_value(call.arguments, text))
    return attrs.evolve(sq, question=text(sq.question), answer=text(sq.answer), call=call)


def _renamed_value(value: Any, text: Callable[[str], str]) -> Any:
    if isinstance(value, str):
        return text(value)
    if isinstance(value, dict):
        return {k: _renamed_value(v, text) for k, v in value.items()}
    if isinstance(value, list):
        return [_renamed_value(v, text) for v in value]
    return value


def _check_no_old_names(source: str, texts: list[str], mapping: dict[str, str]) -> None:
    pattern = _old_names(tuple(mapping))[1]
    for t in texts:
        if found := pattern.search(t):
            raise ValueError(
                f"arena {source}: name {found.group()!r} is left after renaming (it is written "
                "in a form the renaming does not know)"
            )
