"""Hook implementations of the qa-arenas plugin (the paper's pipeline 2 with an LLM): the
``qa-llm`` environment generator and its steps as ``arena_step`` components, each replaceable
by name in the generator's options."""

from __future__ import annotations

from typing import Any

from astra_core import hookimpl
from astra_core.registry import ComponentBuilder, Registrar
from astra_qa_arenas.options import (
    KnowledgeCorpusOptions,
    QAFileOptions,
    QALLMOptions,
    ToolMergerOptions,
    ToolWriterOptions,
)


def qa_llm(options: QALLMOptions, builder: ComponentBuilder) -> Any:
    from astra_qa_arenas.generator import QALLMGenerator

    return QALLMGenerator(options, builder)


def qa_file(options: QAFileOptions, builder: ComponentBuilder) -> Any:
    from astra_qa_arenas.sources import QAFileSource

    return QAFileSource(options, builder)


def knowledge_corpus(options: KnowledgeCorpusOptions, builder: ComponentBuilder) -> Any:
    from astra_qa_arenas.sources import KnowledgeCorpusSource

    return KnowledgeCorpusSource(options, builder)


def llm_decomposer(options: None, builder: ComponentBuilder) -> Any:
    from astra_qa_arenas.decomposition import LLMDecomposer

    return LLMDecomposer()


def llm_necessity(options: None, builder: ComponentBuilder) -> Any:
    from astra_qa_arenas.tool_necessity import LLMNecessityChecker

    return LLMNecessityChecker()


def llm_quality(options: None, builder: ComponentBuilder) -> Any:
    from astra_qa_arenas.quality_scores import LLMQualityScorer

    return LLMQualityScorer()


def llm_tool_writer(options: ToolWriterOptions, builder: ComponentBuilder) -> Any:
    from astra_qa_arenas.tool_writing import LLMToolWriter

    return LLMToolWriter(options)


def llm_merger(options: ToolMergerOptions, builder: ComponentBuilder) -> Any:
    from astra_qa_arenas.tool_merging import LLMToolMerger

    return LLMToolMerger(options)


@hookimpl
def astra_register_environment_generators(registry: Registrar) -> None:
    registry.add(
        "qa-llm",
        qa_llm,
        options=QALLMOptions,
        description="The paper's pipeline 2 with an LLM: your questions (or domain corpora) "
        "decomposed, checked and scored, a Python tool per sub-question written and verified "
        "in the sandbox, tools of one intent merged, banded distractors.",
    )


@hookimpl
def astra_register_arena_steps(registry: Registrar) -> None:
    registry.add(
        "qa-file",
        qa_file,
        options=QAFileOptions,
        description="qa_source: questions (with or without answers, context, domain) from "
        "JSONL, JSON, CSV, Parquet or a datasets directory.",
    )
    registry.add(
        "knowledge-corpus",
        knowledge_corpus,
        options=KnowledgeCorpusOptions,
        description="qa_source: per domain of a domains.jsonl, items to write a question from "
        "one of its contexts (context.jsonl) within a hop budget.",
    )
    registry.add(
        "llm-decomposer",
        llm_decomposer,
        description="decomposer: the LLM decomposes (or writes and decomposes) a question into "
        "sub-questions with dependencies; structure, scenario type and hop budget checked.",
    )
    registry.add(
        "llm-necessity",
        llm_necessity,
        description="necessity_checker: the LLM marks the steps that need a tool; non-tool "
        "steps only at leaves.",
    )
    registry.add(
        "llm-quality",
        llm_quality,
        description="quality_scorer: the LLM scores dependency consistency, atomicity, "
        "sequential rationality and task completeness.",
    )
    registry.add(
        "llm-tool-writer",
        llm_tool_writer,
        options=ToolWriterOptions,
        description="tool_writer: document, complexity scaling, call and standard-library code "
        "by the LLM, accepted when the call prints the sub-answer in the sandbox; repaired "
        "from the sandbox output.",
    )
    registry.add(
        "llm-merger",
        llm_merger,
        options=ToolMergerOptions,
        description="tool_merger: the LLM groups tools of one intent and merges each group by "
        "extending the data, every call re-run after each insertion.",
    )
