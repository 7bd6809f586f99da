"""Reading an LLM's JSON answer leniently and checking it strictly, for any LLM-driven step.

An answer is read leniently (reasoning in ``<think>`` tags and code fences are removed, text
around the JSON is ignored) and checked strictly against a JSON Schema; ``MalformedAnswer`` says
what was wrong (the first violation with its JSON path, and the start of the answer), which a
step can show the LLM when it asks again.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

import jsonschema
from jsonschema.exceptions import best_match

__all__ = ["MalformedAnswer", "answer_text", "extract_json", "parse_answer"]

_THINK = re.compile(r"<think>.*?</think>", re.DOTALL | re.IGNORECASE)
_FENCE = re.compile(r"```(?:json|JSON)?\s*(.*?)```", re.DOTALL)


class MalformedAnswer(ValueError):
    """An LLM answer that is not the JSON its prompt asked for."""


def answer_text(content: str) -> str:
    """The answer without reasoning: ``<think>`` blocks removed, and when a reasoning model's
    template left only the closing tag, the text after it (as the authors' parser does)."""
    text = _THINK.sub("", content)
    if "</think>" in text:
        text = text.rsplit("</think>", 1)[1]
    return text.strip()


_TYPES: dict[str, type] = {"object": dict, "array": list}


def extract_json(content: str, expect: str | None = None) -> Any:
    """The first JSON object or array in ``content`` (inside a code fence if there is one);
    with ``expect`` (``"object"`` or ``"array"``) the first one of that kind."""
    text = answer_text(content)
    if not text:
        raise MalformedAnswer("the answer is empty")
    fenced = _FENCE.search(text)
    candidates = [fenced.group(1).strip()] if fenced else []
    candidates.append(text)
    wanted = _TYPES.get(expect or "", (dict, list))
    decoder = json.JSONDecoder()
    problem = f"no JSON {expect or 'object or array'} in the answer"
    for candidate in candidates:
        try:
            value = json.loads(candidate)
            if isinstance(value, wanted):
                return value
        except ValueError:
            pass
        starts = [i for i, char in enumerate(candidate) if char in "[{"][:64]
        for start in starts:
            try:
                value, _ = decoder.raw_decode(candidate, start)
            except ValueError as exc:
                if start == starts[0]:
                    problem = f"invalid JSON ({exc})"
                continue
            if isinstance(value, wanted):
                return value
    raise MalformedAnswer(problem)


def _snippet(text: str, limit: int = 160) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 3] + "..."


def parse_answer(content: str, schema: Mapping[str, Any], step: str) -> Any:
    """``content`` read as JSON and checked against ``schema``; ``MalformedAnswer`` names the
    step, the first violation (with its JSON path) and the start of the answer."""
    try:
        value = extract_json(content, schema.get("type"))
    except MalformedAnswer as exc:
        raise MalformedAnswer(f"{step}: {exc}; the answer began {_snippet(content)!r}") from None
    error = best_match(jsonschema.Draft202012Validator(schema).iter_errors(value))
    if error is not None:
        where = "$" + "".join(
            f"[{p}]" if isinstance(p, int) else f".{p}" for p in error.absolute_path
        )
        raise MalformedAnswer(
            f"{step}: {where}: {error.message}; the answer began {_snippet(content)!r}"
        )
    return value
