"""Import and export of the authors' released RL format (HF ``Emperorizzis/ASTRA-RL-1k``).

One row per arena::

    {"prompt": [{"role": "user", "content": "..."}],
     "tool_schema": "[{\"type\": \"function\", \"function\": {...}}, ...]",  # distractors too
     "tool_dict": "{\"tool_name\": \"<python source>\", ...}",
     "sub_qa_dict": "{\"tool_name\": [\"gold sub-answer\", ...], ...}"}

The last three are JSON *strings* in the release; both strings and decoded values are read.
The format keeps no decomposition (no sub-questions, dependencies, gold calls or final answer),
so an export may add an ``astra`` field (a JSON string with those) that makes the round trip
exact (the arena's split included); readers of the released format ignore it. Without it an
import gets one sub-question per gold answer (tool known, call unknown), ``single`` /
``parallel-single`` as topology, and ``metadata[TOOL_CODE_ORIGIN] = LLM_WRITTEN``: the authors'
tool code was written by an LLM, so it is untrusted and runs only in an isolating sandbox.

A row whose gold answers cannot be reached is refused with an error naming the row and the tool:
a tool of ``sub_qa_dict`` that ``tool_schema`` does not offer, that has no code in ``tool_dict``,
whose code does not parse, imports beyond the standard library or defines no function of its
name, or an empty gold answer.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

import attrs
import cattrs

from astra_core.arena_structure import code_problems
from astra_core.errors import RecordError
from astra_core.records import Arena, SubQuestion, ToolCall, tool_name
from astra_core.sandbox_policy import LLM_WRITTEN, TOOL_CODE_ORIGIN

RL_FIELDS: tuple[str, ...] = ("prompt", "tool_schema", "tool_dict", "sub_qa_dict")
EXTRA_FIELD = "astra"


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)


def arena_to_rl_row(arena: Arena, *, with_astra: bool = True) -> dict[str, Any]:
    """The released row for ``arena`` (plus the ``astra`` field unless ``with_astra=False``)."""
    sub_qa: dict[str, list[str]] = {}
    for sq in arena.needed:
        if sq.tool:
            sub_qa.setdefault(sq.tool, []).append(sq.answer)
    row: dict[str, Any] = {
        "prompt": [{"role": "user", "content": arena.question}],
        "tool_schema": _dumps(list(arena.tools)),
        "tool_dict": _dumps(dict(arena.tool_code)),
        "sub_qa_dict": _dumps(sub_qa),
    }
    if with_astra:
        row[EXTRA_FIELD] = _dumps(
            {
                "id": arena.id,
                # the content's own hash: a generator may give ids of its own (offline-world's
                # come from its seed and index), so the check of an edited row uses this
                "digest": content_digest(arena),
                "answer": arena.answer,
                "topology": arena.topology,
                "subquestions": cattrs.unstructure(list(arena.subquestions)),
                "distractors": list(arena.distractors),
                "domain": arena.domain,
                "metadata": arena.metadata,
                "split": arena.split,
            }
        )
    return row


def _decoded(row: Mapping[str, Any], key: str, kind: type, where: str) -> Any:
    if key not in row:
        raise RecordError(f"{where}: RL row has no {key!r} field (fields: {', '.join(row)})")
    value = row[key]
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError as exc:
            raise RecordError(f"{where}: field {key!r} is not valid JSON: {exc}") from exc
    if not isinstance(value, kind):
        raise RecordError(
            f"{where}: field {key!r} must hold a {kind.__name__}, got {type(value).__name__}"
        )
    return value


def arena_from_rl_row(row: Mapping[str, Any], *, where: str = "RL row") -> Arena:
    """An ``Arena`` from a released row (exact when the row carries the ``astra`` field)."""
    prompt = _decoded(row, "prompt", list, where)
    tools_in = _decoded(row, "tool_schema", list, where)
    tool_code = _decoded(row, "tool_dict", dict, where)
    sub_qa = _decoded(row, "sub_qa_dict", dict, where)
    users = [
        m.get("content", "") for m in prompt if isinstance(m, Mapping) and m.get("role") == "user"
    ]
    if not users:
        raise RecordError(f"{where}: prompt has no user message")
    question = str(users[-1])
    tools: list[dict[str, Any]] = []
    names: set[str] = set()
    duplicates: list[str] = []
    for tool in tools_in:
        try:
            name = tool_name(tool)
        except (KeyError, TypeError) as exc:
            raise RecordError(
                f"{where}: a tool_schema entry is not an OpenAI tool: {tool!r:.200}"
            ) from exc
        if name in names:
            duplicates.append(name)  # the release has a few; the first one wins
            continue
        names.add(name)
        tools.append(tool)
    gold: dict[str, list[str]] = {
        str(k): [str(a) for a in (v if isinstance(v, list) else [v])] for k, v in sub_qa.items()
    }
    _check_gold(gold, names, tool_code, where)
    extra = row.get(EXTRA_FIELD)
    if extra:
        return _exact_arena(extra, question, tools, tool_code, gold, where)
    subs: list[SubQuestion] = []
    for name, answers in gold.items():
        for answer in answers:
            n = len(subs) + 1
            subs.append(
                SubQuestion(
                    f"q{n}", f"Sub-task {n}: find it with {name}.", answer, (), True, name, None
                )
            )
    # an LLM wrote the released tools: untrusted, run only where the sandbox policy allows
    metadata: dict[str, Any] = {
        "source": "ASTRA-RL-1k",
        "dependencies_known": False,
        TOOL_CODE_ORIGIN: LLM_WRITTEN,
    }
    if duplicates:
        metadata["duplicate_tools"] = duplicates
    return Arena(
        question=question,
        answer="",
        topology="single" if len(subs) == 1 else "parallel-single",
        subquestions=tuple(subs),
        tools=tuple(tools),
        tool_code={str(k): str(v) for k, v in tool_code.items()},
        distractors=tuple(n for n in (tool_name(t) for t in tools) if n not in gold),
        metadata=metadata,
    )


def _exact_arena(
    extra: Any,
    question: str,
    tools: list[dict[str, Any]],
    tool_code: Mapping[str, Any],
    gold: Mapping[str, list[str]],
    where: str,
) -> Arena:
    """The arena an export wrote, from its row and the ``astra`` field."""
    try:
        info = json.loads(extra) if isinstance(extra, str) else dict(extra)
        subquestions = tuple(cattrs.structure(info["subquestions"], list[SubQuestion]))
        arena = Arena(
            question=question,
            answer=info.get("answer", ""),
            topology=info["topology"],
            subquestions=subquestions,
            tools=tuple(tools),
            tool_code={str(k): str(v) for k, v in tool_code.items()},
            distractors=tuple(info.get("distractors", ())),
            domain=info.get("domain", ""),
            metadata=info.get("metadata", {}),
            split=info.get("split", ""),
        )
    except Exception as exc:
        raise RecordError(f"{where}: the {EXTRA_FIELD!r} field is malformed: {exc}") from exc
    restored: dict[str, list[str]] = {}
    for sq in subquestions:
        if sq.needs_tool and sq.tool:
            restored.setdefault(sq.tool, []).append(sq.answer)
    if restored != gold:
        raise RecordError(f"{where}: sub_qa_dict disagrees with the {EXTRA_FIELD!r} field")
    # A row edited after its export is not passed off as the original.
    recorded, digest = info.get("id"), info.get("digest")
    if digest is not None and digest != content_digest(arena):
        raise RecordError(
            f"{where}: the row's content does not match the digest of arena {recorded!r} its "
            f"{EXTRA_FIELD!r} field records (edited after export?); drop that field to import "
            "the row as a released one"
        )
    return attrs.evolve(arena, id=recorded) if recorded else arena


def content_digest(arena: Arena) -> str:
    """The id ``arena``'s content alone would get (its recorded id may be its generator's)."""
    return attrs.evolve(arena, id="").id


def _check_gold(
    gold: Mapping[str, list[str]], offered: set[str], tool_code: Mapping[str, Any], where: str
) -> None:
    """Refuse a row some gold answer of which no offered, loadable tool can return."""
    if not gold:
        raise RecordError(f"{where}: sub_qa_dict holds no gold sub-answer")
    for name, answers in gold.items():
        if name not in offered:
            raise RecordError(
                f"{where}: tool {name!r} of sub_qa_dict is not offered in tool_schema"
            )
        code = tool_code.get(name)
        if not isinstance(code, str) or not code.strip():
            raise RecordError(f"{where}: tool {name!r} of sub_qa_dict has no code in tool_dict")
        problems = code_problems(name, code)
        if problems:
            raise RecordError(f"{where}: {problems[0]}")
        if not answers or any(not a for a in answers):
            raise RecordError(f"{where}: tool {name!r} of sub_qa_dict has an empty gold answer")


def gold_calls(arena: Arena) -> dict[str, ToolCall]:
    """Sub-question id -> verified call (imports of the bare format have none)."""
    return {sq.id: sq.call for sq in arena.subquestions if sq.call is not None}


def read_rl_jsonl(path: str | Path) -> Iterator[Arena]:
    """Arenas from a JSONL file of released rows (e.g. the dataset exported with ``to_json``)."""
    path = Path(path)
    with path.open("r", encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, 1):
            if line.strip():
                yield arena_from_rl_row(json.loads(line), where=f"{path}:{lineno}")


def write_rl_jsonl(arenas: Iterable[Arena], path: str | Path, *, with_astra: bool = True) -> int:
    """Write arenas as released rows; returns how many."""
    n = 0
    with Path(path).open("w", encoding="utf-8") as fh:
        for arena in arenas:
            fh.write(_dumps(arena_to_rl_row(arena, with_astra=with_astra)) + "\n")
            n += 1
    return n
