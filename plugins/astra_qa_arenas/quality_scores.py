"""The ``llm-quality`` step and the selection by quality (paper §2.2.2, Eq. 21).

The LLM scores each sub-question 0/1 on dependency consistency, atomicity and sequential
rationality, and the instance 0/1 on task completeness; each per-step score is the mean over the
sub-questions, and the instance's quality is the mean of the four. ``selection_cutoff`` turns the
scores of a run into the score an instance needs: a fixed threshold, or the score at the top
``keep_top`` share (the authors keep the top 10%); ties at the cut are kept.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from astra_core.arena_synthesis import QUALITY_SCORES, QAInstance
from astra_core.llm_json import MalformedAnswer
from astra_core.protocols import LLMBackend
from astra_core.registry import ComponentBuilder
from astra_qa_arenas.llm_calls import ask_json
from astra_qa_arenas.prompts import QUALITY, QUALITY_SCHEMA, fill, messages
from astra_qa_arenas.tool_necessity import step_lines

STEP = "quality"
PER_STEP = QUALITY_SCORES[:3]


def quality(scores: dict[str, float]) -> float:
    """The mean of the four scores."""
    return sum(scores[k] for k in QUALITY_SCORES) / len(QUALITY_SCORES)


def selection_cutoff(scores: Sequence[float], *, keep_top: float, threshold: float | None) -> float:
    """The lowest mean score that is kept; see the module docstring."""
    if threshold is not None:
        return threshold
    if not scores or keep_top >= 1.0:
        return -math.inf
    if keep_top <= 0.0:
        return math.inf
    ranked = sorted(scores, reverse=True)
    keep = max(1, math.ceil(keep_top * len(ranked)))
    return ranked[keep - 1]


class LLMQualityScorer:
    """``score(instance, llm) -> dict`` of the four scores in [0, 1]; see the module
    docstring."""

    step = "quality_scorer"

    def __init__(self, options: None = None, builder: ComponentBuilder | None = None) -> None:
        pass

    def score(self, instance: QAInstance, llm: LLMBackend) -> dict[str, float]:
        ids = [s.id for s in instance.subquestions]

        def complete(answer: Any) -> None:
            for key in PER_STEP:
                missing = [i for i in ids if i not in answer[key]]
                if missing:
                    raise MalformedAnswer(f"{STEP}: {key} has no score for _uuid {missing[0]}")

        prompt = fill(
            QUALITY,
            question=instance.question,
            answer=instance.answer,
            steps=step_lines(instance),
        )
        answer = ask_json(llm, messages(prompt), schema=QUALITY_SCHEMA, step=STEP, check=complete)
        scores = {key: sum(int(answer[key][i]) for i in ids) / len(ids) for key in PER_STEP}
        scores["task_completeness"] = float(answer["task_completeness"])
        return scores
