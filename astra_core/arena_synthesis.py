"""What the steps of an LLM-driven environment generator hand each other (paper §2.2).

A question-answer item (``QAItem``) is decomposed into a ``QAInstance``: a main question, its
answer and atomic sub-questions (``SubQA``) with their dependencies; tool-needing sub-questions
become ``ToolEnvironment`` s (a tool schema, its Python code and a call verified to print the
sub-answer). The records live in the core so that a third-party ``arena_step`` replaces one
step of a generator (``qa-llm``) importing nothing but ``astra_core``. They are frozen attrs
records with a JSON round-trip (``to_dict`` / ``from_dict``), like every record.
"""

from __future__ import annotations

from typing import Any, ClassVar

import attrs

from astra_core.records import JSONDict, Record, ToolCall, Topology, content_id

__all__ = [
    "ARENA_STEP_SLOTS",
    "QUALITY_SCORES",
    "SCENARIO_TOPOLOGIES",
    "QAInstance",
    "QAItem",
    "SubQA",
    "ToolEnvironment",
]

# The slots of ``qa-llm`` in the order they run; each is an ``arena_step`` chosen by name.
ARENA_STEP_SLOTS: tuple[str, ...] = (
    "qa_source",
    "decomposer",
    "necessity_checker",
    "quality_scorer",
    "tool_writer",
    "tool_merger",
)
# The paper's four instance-quality dimensions (Eq. 21 averages them).
QUALITY_SCORES: tuple[str, ...] = (
    "dependency_consistency",
    "atomicity",
    "sequential_rationality",
    "task_completeness",
)
# The paper's scenario types and the topology each names (``astra_core.records.TOPOLOGIES``).
SCENARIO_TOPOLOGIES: dict[str, str] = {
    "Single-Hop": "single",
    "Parallel Single-Hop": "parallel-single",
    "Multi-Hop": "multi",
    "Parallel Multi-Hop": "parallel-multi",
}


def _fill_id(record: Any, *parts: Any) -> None:
    if not record.id:
        object.__setattr__(record, "id", content_id(type(record).__name__, *parts))


@attrs.frozen
class QAItem(Record):
    """One input of the pipeline: a question (with or without its answer), or, when
    ``question`` is empty, a domain and a knowledge context to write a question from
    (unconditional mode) needing ``min_hops``..``max_hops`` hops. ``origin`` says where it was
    read (file and row) and is not part of the id."""

    kind: ClassVar[str] = "qa_item"
    unhashed: ClassVar[tuple[str, ...]] = ("origin",)

    question: str = ""
    answer: str = ""
    context: str = ""
    domain: str = ""
    min_hops: int = 1
    max_hops: int = 5
    origin: str = ""
    id: str = ""

    def __attrs_post_init__(self) -> None:
        body = (self.question, self.answer, self.context, self.domain)
        _fill_id(self, *body, self.min_hops, self.max_hops)


@attrs.frozen
class SubQA:
    """An atomic sub-question with its answer, the ids it depends on and its hop level;
    ``needs_tool`` is set by the necessity check (non-tool steps may only be leaves)."""

    id: str
    question: str
    answer: str
    depends_on: tuple[str, ...] = ()
    hop: int = 1
    needs_tool: bool = True
    reason: str = ""


@attrs.frozen
class QAInstance(Record):
    """A decomposed question: ``scenario`` is the LLM's scenario type, ``topology`` the one the
    dependencies form; ``scores`` holds the quality scores once scored."""

    kind: ClassVar[str] = "qa_instance"

    item_id: str
    scenario: str
    topology: Topology
    question: str
    answer: str
    subquestions: tuple[SubQA, ...]
    domain: str = ""
    context: str = ""
    scores: dict[str, float] = attrs.Factory(dict)
    metadata: JSONDict = attrs.Factory(dict)
    id: str = ""

    def __attrs_post_init__(self) -> None:
        _fill_id(self, self.item_id, self.question, [attrs.astuple(s) for s in self.subquestions])

    def sub(self, sub_id: str) -> SubQA:
        """The sub-question with id ``sub_id``."""
        for sq in self.subquestions:
            if sq.id == sub_id:
                return sq
        raise KeyError(f"instance {self.id} has no sub-question {sub_id!r}")


@attrs.frozen
class ToolEnvironment:
    """The verified tool of one sub-question: its OpenAI ``schema``, its ``code``, the call
    ``statement`` as written (``call`` decoded from it) and the ``output`` the sandbox printed,
    which contains the sub-answer; ``attempts`` counts the code versions tried."""

    sub_id: str
    schema: JSONDict
    code: str
    statement: str
    call: ToolCall
    output: str
    attempts: int = 1

    @property
    def name(self) -> str:
        return str(self.schema["function"]["name"])
