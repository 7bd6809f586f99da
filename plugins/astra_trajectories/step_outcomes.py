"""How a step says that an item did not make it: a failure (the LLM call failed, its answer was
malformed) or a rejection (the item failed a check). Both carry the reason counted in the
manifest and a detail for the drop log."""

from __future__ import annotations

import attrs


class StepFailed(Exception):
    """An LLM step could not produce its result for one item: ``reason`` names the step and what
    went wrong (``task-generation-llm-failed``, ``judge-malformed``...)."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


@attrs.frozen
class Rejected:
    """An item a step turned down, to be counted with ``ctx.drop(reason, id, detail)``."""

    reason: str
    id: str
    detail: str = ""
