"""Step 4b: augmentation, T̃(s) = T(s) ∪ A(T(s)), along the paper's three axes.

* ``paraphrase``: other wording, preferences or context; same intent and values;
* ``complexity``: added constraints, implicit references, follow-up needs; same core goal;
* ``persona``: the request as a given kind of user would write it (drawn, seeded, from the
  ``personas`` option; the authors read a persona dataset that is not shipped).

Every rewrite must keep the language of its source (checked by script, ``language.py``); one
that does not is rejected. The source task is kept as well; unlike the authors' code it is not
written again for every augmentation.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from typing import Any

from astra_core.protocols import LLMBackend
from astra_core.records import Task, content_id
from astra_trajectories import prompts
from astra_trajectories.language import dominant_script, same_script
from astra_trajectories.llm_answers import ask
from astra_trajectories.step_outcomes import Rejected, StepFailed

STEP = "task-augmentation"
LANGUAGE_CHANGED = "augmentation-language-changed"
UNCHANGED = "augmentation-unchanged"


class TaskAugmenter:
    def __init__(
        self,
        llm: LLMBackend,
        *,
        modes: Sequence[str],
        variations: int = 1,
        personas: Sequence[str] = (),
        sampling: Mapping[str, Any] | None = None,
    ) -> None:
        self.llm = llm
        self.modes = tuple(modes)
        self.variations = variations
        self.personas = tuple(personas)
        self.sampling = dict(sampling or {})

    def augment(self, task: Task, rng: random.Random) -> list[Task | Rejected]:
        """The rewrites of ``task`` (not ``task`` itself); a mode whose call failed gives one
        ``Rejected`` with the step's reason."""
        out: list[Task | Rejected] = []
        for mode in self.modes:
            persona = rng.choice(self.personas) if mode == "persona" else ""
            try:
                answer = ask(
                    self.llm,
                    prompts.augmentation_messages(
                        mode,
                        task.query,
                        self.variations,
                        tools=task.target_tools,
                        persona=persona,
                    ),
                    schema=prompts.VARIATIONS_SCHEMA,
                    step=STEP,
                    sampling=self.sampling,
                )
            except StepFailed as exc:
                out.append(Rejected(exc.reason, content_id(task.id, mode), exc.detail))
                continue
            for text in answer["variations"][: self.variations]:
                query = text.strip()
                extra: dict[str, Any] = {"source_task": task.id, "script": dominant_script(query)}
                if persona:
                    extra["persona"] = persona
                rewritten = Task(
                    query=query,
                    server_id=task.server_id,
                    target_tools=task.target_tools,
                    origin=task.origin,
                    chain_id=task.chain_id,
                    augmentation=mode,
                    metadata={**task.metadata, **extra},
                )
                if query == task.query.strip():
                    out.append(Rejected(UNCHANGED, rewritten.id, f"{mode}: same text as source"))
                elif not same_script(task.query, query):
                    out.append(
                        Rejected(
                            LANGUAGE_CHANGED,
                            rewritten.id,
                            f"{mode}: source in {dominant_script(task.query)} script, rewrite "
                            f"in {dominant_script(query)}",
                        )
                    )
                else:
                    out.append(rewritten)
        return out
