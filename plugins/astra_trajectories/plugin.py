"""Hook implementations of the trajectories plugin (the paper's pipeline 1): the offline
``offline-chain-walk`` sampler, the ``llm-pipeline`` sampler with an LLM, the ``mcp-probe``
sampler for live servers, the four steps of ``offline-chain-walk`` as ``trajectory_step``
components, and the ``llm-emulator`` tool executor."""

from __future__ import annotations

from typing import Any

from astra_core import hookimpl
from astra_core.registry import ComponentBuilder, Registrar
from astra_trajectories.llm_options import LLMEmulatorOptions, LLMPipelineOptions
from astra_trajectories.options import (
    ArgumentDependencyOptions,
    ChainExecutorOptions,
    OfflineChainWalkOptions,
    TemplateTaskOptions,
)
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


def argument_dependency(options: ArgumentDependencyOptions, builder: ComponentBuilder) -> Any:
    from astra_trajectories.chain_verification import ArgumentDependencyVerifier

    return ArgumentDependencyVerifier(options, builder)


def offline_template(options: TemplateTaskOptions, builder: ComponentBuilder) -> Any:
    from astra_trajectories.task_templates import TemplateTaskGenerator

    return TemplateTaskGenerator(options, builder)


def offline_chain_executor(options: ChainExecutorOptions, builder: ComponentBuilder) -> Any:
    from astra_trajectories.offline_agent import ChainExecutingAgent

    return ChainExecutingAgent(options, builder)


def offline_rules(options: None, builder: ComponentBuilder) -> Any:
    from astra_trajectories.rule_judge import RuleBasedJudge

    return RuleBasedJudge()


def llm_emulator(options: LLMEmulatorOptions, builder: ComponentBuilder) -> Any:
    from astra_trajectories.tool_emulator import LLMToolEmulator

    llm = builder.build("llm_backend", options.llm, key="llm") if options.llm else None
    return LLMToolEmulator(options, builder, llm)


@hookimpl
def astra_register_trajectory_samplers(registry: Registrar) -> None:
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
def astra_register_trajectory_steps(registry: Registrar) -> None:
    # the four steps of offline-chain-walk, each replaceable by name in its options
    registry.add(
        "argument-dependency",
        argument_dependency,
        options=ArgumentDependencyOptions,
        description="chain_verifier: every required argument comes from the task or an "
        "earlier output (the hand-offs the graph's edges declare, else schema matching).",
    )
    registry.add(
        "offline-template",
        offline_template,
        options=TemplateTaskOptions,
        description="task_generator: a request built from the chain, the tools' phrases and "
        "real values from the server's scenarios.",
    )
    registry.add(
        "offline-chain-executor",
        offline_chain_executor,
        options=ChainExecutorOptions,
        description="agent: runs the verified chain through a tool executor, every output real.",
    )
    registry.add(
        "offline-rules",
        offline_rules,
        description="judge: rule-based checks (offered tools, valid arguments, answered calls, "
        "no errors, follows the chain, final answer); not the paper's LLM judge.",
    )


@hookimpl
def astra_register_tool_executors(registry: Registrar) -> None:
    registry.add(
        "llm-emulator",
        llm_emulator,
        options=LLMEmulatorOptions,
        description="An LLM plays tools that have no implementation: per-session call "
        "history, schema-checked calls, seeded failure injection (0.2 by default).",
    )
