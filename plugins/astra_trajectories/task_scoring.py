"""Step 4c: task scoring and filtering (paper Eq. 1, the authors' four-dimension rubric).

Each task, original or augmented, is rated 1-5 on question quality, scenario realism, tool
necessity (the paper's three) and difficulty and uniqueness (the authors' rubric). A task below
any threshold of ``task_thresholds`` is rejected; the paper and the code give no values, so the
defaults (3 on the paper's three, none on the others) are ours.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import attrs

from astra_core.protocols import LLMBackend
from astra_core.records import Task, ToolServer
from astra_trajectories import prompts
from astra_trajectories.llm_answers import ask
from astra_trajectories.llm_options import TASK_SCORE_DIMENSIONS
from astra_trajectories.step_outcomes import Rejected

STEP = "task-scoring"
BELOW = "task-below-threshold"


class TaskScorer:
    def __init__(
        self,
        llm: LLMBackend,
        *,
        thresholds: Mapping[str, float],
        sampling: Mapping[str, Any] | None = None,
    ) -> None:
        self.llm = llm
        self.thresholds = dict(thresholds)
        self.sampling = dict(sampling or {})

    def score(self, server: ToolServer, task: Task) -> Task | Rejected:
        """``task`` with its scores (same id), or why it fell short; ``StepFailed`` when the
        LLM could not rate it."""
        answer = ask(
            self.llm,
            prompts.task_score_messages(server, task.query, task.target_tools),
            schema=prompts.TASK_SCORE_SCHEMA,
            step=STEP,
            sampling=self.sampling,
        )
        scores = {dim: float(answer[dim]["score"]) for dim in TASK_SCORE_DIMENSIONS}
        reasons = {dim: str(answer[dim].get("reason", "")) for dim in TASK_SCORE_DIMENSIONS}
        below = [
            f"{dim} {scores[dim]:g} < {limit:g}"
            for dim, limit in self.thresholds.items()
            if scores[dim] < limit
        ]
        if below:
            return Rejected(BELOW, task.id, "; ".join(below))
        # evolve keeps the id: a task is the same task whatever its scores
        return attrs.evolve(
            task, scores=scores, metadata={**task.metadata, "score_reasons": reasons}
        )
