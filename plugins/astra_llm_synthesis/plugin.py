"""Hook implementations of the LLM synthesis plugin: the ``llm-pipeline`` trajectory sampler
(the paper's pipeline 1 with an LLM) and the ``llm-emulator`` tool executor."""

from __future__ import annotations

from typing import Any

from astra_core import hookimpl
from astra_core.registry import ComponentBuilder
from astra_llm_synthesis.options import LLMEmulatorOptions, LLMPipelineOptions


def llm_pipeline(options: LLMPipelineOptions, builder: ComponentBuilder) -> Any:
    from astra_llm_synthesis.sampler import LLMPipelineSampler

    return LLMPipelineSampler(options, builder)


def llm_emulator(options: LLMEmulatorOptions, builder: ComponentBuilder) -> Any:
    from astra_llm_synthesis.tool_emulator import LLMToolEmulator

    llm = builder.build("llm_backend", options.llm, key="llm") if options.llm else None
    return LLMToolEmulator(options, builder, llm)


@hookimpl
def astra_register_trajectory_samplers(registry: Any) -> None:
    registry.add(
        "llm-pipeline",
        llm_pipeline,
        options=LLMPipelineOptions,
        description="The paper's pipeline 1 with an LLM: proposed chains unioned into the "
        "graph, random walks, argument/vote/back-translation checks, chain and server tasks, "
        "augmentation and scoring, agent rollouts through a tool executor, 7-score judge.",
    )


@hookimpl
def astra_register_tool_executors(registry: Any) -> None:
    registry.add(
        "llm-emulator",
        llm_emulator,
        options=LLMEmulatorOptions,
        description="An LLM plays tools that have no implementation: per-session call "
        "history, schema-checked calls, seeded failure injection (0.2 by default).",
    )
