"""The ``llm-necessity`` step: which sub-questions need a tool, and the leaf rule.

The LLM marks each sub-question ``tool_necessity`` true or false (purely linguistic steps need no
tool). A non-tool step that another step depends on breaks the paper's rule (non-tool steps only
at leaves): the instance is rejected with ``leaf-rule``, as is one where no step needs a tool.
The structural check is the core's (``astra_core.arena_structure.decomposition_problems``).
"""

from __future__ import annotations

from typing import Any

import attrs

from astra_core.arena_structure import decomposition_problems
from astra_core.arena_synthesis import QAInstance
from astra_core.errors import StepRejected
from astra_core.llm_json import MalformedAnswer
from astra_core.protocols import LLMBackend
from astra_core.records import SubQuestion
from astra_core.registry import ComponentBuilder
from astra_qa_arenas.llm_calls import ask_json
from astra_qa_arenas.prompts import NECESSITY, NECESSITY_SCHEMA, fill, messages

STEP = "necessity"


def step_lines(instance: QAInstance, *, answers: bool = True) -> str:
    """One line per sub-question: id, question, answer and dependencies."""
    lines = []
    for sq in instance.subquestions:
        deps = f" (depends on {', '.join(sq.depends_on)})" if sq.depends_on else ""
        answer = f" -> {sq.answer}" if answers else ""
        lines.append(f"{sq.id}. {sq.question}{answer}{deps}")
    return "\n".join(lines)


def leaf_rule(instance: QAInstance) -> QAInstance:
    """``instance`` unchanged, or ``StepRejected`` when a non-tool step is not a leaf."""
    subs = [
        SubQuestion(s.id, s.question, s.answer, s.depends_on, s.needs_tool)
        for s in instance.subquestions
    ]
    broken = [p for p in decomposition_problems(subs) if p.startswith("non-tool")]
    if broken:
        raise StepRejected("leaf-rule", "; ".join(broken))
    if not any(s.needs_tool for s in instance.subquestions):
        raise StepRejected("no-tool-step", "no sub-question needs a tool")
    return instance


class LLMNecessityChecker:
    """``check(instance, llm) -> QAInstance`` with ``needs_tool`` set; see the module docstring."""

    step = "necessity_checker"

    def __init__(self, options: None = None, builder: ComponentBuilder | None = None) -> None:
        pass

    def check(self, instance: QAInstance, llm: LLMBackend) -> QAInstance:
        ids = [s.id for s in instance.subquestions]

        def aligned(answer: Any) -> None:
            got = [str(entry["_uuid"]) for entry in answer]
            if sorted(got) != sorted(ids):
                raise MalformedAnswer(f"{STEP}: expected one entry for each _uuid {ids}, got {got}")

        prompt = fill(NECESSITY, question=instance.question, steps=step_lines(instance))
        answer = ask_json(llm, messages(prompt), schema=NECESSITY_SCHEMA, step=STEP, check=aligned)
        verdict = {
            str(e["_uuid"]): (bool(e["tool_necessity"]), str(e.get("reason", ""))) for e in answer
        }
        subs = tuple(
            attrs.evolve(s, needs_tool=verdict[s.id][0], reason=verdict[s.id][1])
            for s in instance.subquestions
        )
        return leaf_rule(attrs.evolve(instance, subquestions=subs, id=instance.id))
