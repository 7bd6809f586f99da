"""The ``llm-decomposer`` step: a question (or a knowledge context) into atomic sub-questions.

The LLM answers in the authors' format (``scenario_type``, ``main_question``, ``final_answer``,
``decomposition_trace`` of ``_uuid``, ``hop_level``, ``sub_question``, ``is_parallel``,
``dependency``, ``sub_answer``). The answer is checked by rules before anything else sees it:
the dependencies are known ids and form a DAG, the declared scenario type is the topology they
form, and the number of sub-questions is within the item's hop budget. Hop levels are computed
from the dependencies (the LLM's are kept in the metadata when they differ).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from astra_core.arena_structure import decomposition_problems, topology_of
from astra_core.arena_synthesis import SCENARIO_TOPOLOGIES, QAInstance, QAItem, SubQA
from astra_core.errors import StepRejected
from astra_core.llm_json import MalformedAnswer
from astra_core.protocols import LLMBackend
from astra_core.records import SubQuestion
from astra_core.registry import ComponentBuilder
from astra_qa_arenas.llm_calls import ask_json
from astra_qa_arenas.prompts import (
    DECOMPOSE_QUESTION,
    DECOMPOSE_SCHEMA,
    DECOMPOSE_UNCONDITIONAL,
    fill,
    messages,
)

STEP = "decompose"


def _ids(value: Any) -> tuple[str, ...]:
    if value is None or value == "" or value == []:
        return ()
    if isinstance(value, (list, tuple)):
        return tuple(str(v) for v in value)
    return (str(value),)


def _text(value: Any) -> str:
    return value if isinstance(value, str) else str(value)


def check_trace(answer: Mapping[str, Any]) -> None:
    """Ids unique and dependencies known, so that the retry can show what was wrong."""
    trace = answer["decomposition_trace"]
    ids = [str(step["_uuid"]) for step in trace]
    if len(set(ids)) != len(ids):
        raise MalformedAnswer(f"{STEP}: _uuid values repeat: {ids}")
    for step in trace:
        unknown = [d for d in _ids(step.get("dependency")) if d not in ids]
        if unknown:
            raise MalformedAnswer(
                f"{STEP}: sub-question {step['_uuid']} depends on unknown _uuid {unknown[0]}"
            )


def hop_levels(subs: Sequence[SubQA]) -> dict[str, int]:
    """1 for roots, 1 + the highest level of the dependencies otherwise (a DAG is assumed)."""
    deps = {s.id: s.depends_on for s in subs}
    level: dict[str, int] = {}

    def visit(sid: str, depth: int = 0) -> int:
        if sid not in level:
            if depth > len(deps):  # a cycle; reported by the structure check
                return 1
            level[sid] = 1 + max((visit(d, depth + 1) for d in deps[sid] if d in deps), default=0)
        return level[sid]

    for sid in deps:
        visit(sid)
    return level


def instance_from_answer(item: QAItem, answer: Mapping[str, Any]) -> QAInstance:
    """The decomposition as a ``QAInstance``; ``StepRejected`` when its structure is unsound."""
    raw = [
        SubQA(
            id=str(step["_uuid"]),
            question=_text(step["sub_question"]).strip(),
            answer=_text(step["sub_answer"]).strip(),
            depends_on=_ids(step.get("dependency")),
        )
        for step in answer["decomposition_trace"]
    ]
    as_tools = [SubQuestion(s.id, s.question, s.answer, s.depends_on) for s in raw]
    problems = decomposition_problems(as_tools)
    if problems:
        raise StepRejected("structure-invalid", "; ".join(problems))
    empty = [s.id for s in raw if not s.answer]
    if empty:
        raise StepRejected("empty-answer", f"sub-questions {', '.join(empty)} have no answer")
    scenario = str(answer["scenario_type"])
    declared = SCENARIO_TOPOLOGIES[scenario]
    actual = topology_of(as_tools)
    if actual != declared:
        raise StepRejected(
            "topology-mismatch",
            f"scenario_type {scenario!r} is {declared!r} but the dependencies form {actual!r}",
        )
    if len(raw) > item.max_hops or (declared != "single" and len(raw) < item.min_hops):
        raise StepRejected(
            "hop-budget",
            f"{len(raw)} sub-questions, the budget is {item.min_hops}-{item.max_hops}",
        )
    levels = hop_levels(raw)
    declared_levels = {
        str(step["_uuid"]): step.get("hop_level") for step in answer["decomposition_trace"]
    }
    subs = tuple(SubQA(s.id, s.question, s.answer, s.depends_on, hop=levels[s.id]) for s in raw)
    metadata: dict[str, Any] = {}
    if any(declared_levels[s.id] not in (None, levels[s.id]) for s in subs):
        metadata["declared_hop_levels"] = declared_levels
    return QAInstance(
        item_id=item.id,
        scenario=scenario,
        topology=actual,  # type: ignore[arg-type]
        # a given question and answer stay the item's; the LLM's are used when it wrote them
        question=item.question or _text(answer["main_question"]).strip(),
        answer=item.answer or _text(answer["final_answer"]).strip(),
        subquestions=subs,
        domain=item.domain,
        context=item.context,
        metadata=metadata,
    )


class LLMDecomposer:
    """``decompose(item, llm) -> QAInstance``; see the module docstring."""

    step = "decomposer"

    def __init__(self, options: None = None, builder: ComponentBuilder | None = None) -> None:
        pass

    def prompt(self, item: QAItem) -> str:
        context = item.context or "(none: synthesize specific, plausible data)"
        domain = item.domain or "general"
        if item.question:
            answer_line = (
                f"Reference answer (keep it as final_answer): {item.answer}\n"
                if item.answer
                else ""
            )
            return fill(
                DECOMPOSE_QUESTION,
                domain=domain,
                context=context,
                question=item.question,
                answer_line=answer_line,
            )
        return fill(
            DECOMPOSE_UNCONDITIONAL,
            domain=domain,
            context=context,
            min_hops=item.min_hops,
            max_hops=item.max_hops,
        )

    def decompose(self, item: QAItem, llm: LLMBackend) -> QAInstance:
        answer = ask_json(
            llm, messages(self.prompt(item)), schema=DECOMPOSE_SCHEMA, step=STEP, check=check_trace
        )
        return instance_from_answer(item, answer)
