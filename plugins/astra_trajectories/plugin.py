"""Hook implementations of the trajectories plugin (the paper's pipeline 1): the offline
``offline-chain-walk`` sampler, the ``llm-pipeline`` sampler with an LLM, the ``mcp-probe``
sampler for live servers, and the ``llm-emulator`` tool executor."""

from __future__ import annotations

from typing import Any

from astra_core import hookimpl
from astra_core.registry import ComponentBuilder
from astra_trajectories.llm_options import LLMEmulatorOptions, LLMPipelineOptions
from astra_trajectories.options import OfflineChainWalkOptions
from astra_trajectories.probe_options import McpProbeOptions


def offline_chain_walk(options: OfflineChainWalkOptions, builder: ComponentBuilder) -> Any:
    from astra_trajectories.sampler import OfflineChainWalkSampler

    return OfflineChainWalkSampler(options, builder)


def llm_pipeline(options: LLMPipelineOptions, builder: ComponentBuilder) -> Any:
    from astra_trajectories.llm_sampler import LLMPipelineSampler

    return LLMPipelineSampler(options, builder)


def mcp_probe(options: McpProbeOptions, builder: ComponentBuilder) -> Any:
    from astra_trajectories.probe_sampler import McpProbeSampler

    return McpProbeSampler(options, builder)


def llm_emulator(options: LLMEmulatorOptions, builder: ComponentBuilder) -> Any:
    from astra_trajectories.tool_emulator import LLMToolEmulator

    llm = builder.build("llm_backend", options.llm, key="llm") if options.llm else None
    return LLMToolEmulator(options, builder, llm)


@hookimpl
def astra_register_trajectory_samplers(registry: Any) -> None:
    registry.add(
        "offline-chain-walk",
        offline_chain_walk,
        options=OfflineChainWalkOptions,
        description="Offline (no LLM): seeded random-walk chains of 2-5 tools per server, "
        "argument-dependency verification, template tasks, real execution through a tool "
        "executor, rule-based judge.",
    )
    registry.add(
        "llm-pipeline",
        llm_pipeline,
        options=LLMPipelineOptions,
        description="The paper's pipeline 1 with an LLM: proposed chains unioned into the "
        "graph, random walks, argument/vote/back-translation checks, chain and server tasks, "
        "augmentation and scoring, agent rollouts through a tool executor, 7-score judge.",
    )
    registry.add(
        "mcp-probe",
        mcp_probe,
        options=McpProbeOptions,
        description="Offline probe of live MCP servers (not the paper's LLM rollout): scripted "
        "calls with arguments from schema values, configured scenarios and earlier outputs; "
        "template requests; every tool output real.",
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
