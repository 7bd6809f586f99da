"""The interchangeable steps of trajectory sampling, by the names options choose them with.

Each class is built as ``cls(options, builder)``. LLM-driven steps (vote/back-translation chain
checks, LLM task writing, an LLM agent, the paper's 7-score judge) are added here by name, by
this package or by another plugin at import time, and chosen in the config.
"""

from __future__ import annotations

from typing import Any

from astra_trajectories.chain_verification import ArgumentDependencyVerifier
from astra_trajectories.offline_agent import ChainExecutingAgent
from astra_trajectories.rule_judge import RuleBasedJudge
from astra_trajectories.task_templates import TemplateTaskGenerator

CHAIN_VERIFIERS: dict[str, type[Any]] = {
    ArgumentDependencyVerifier.name: ArgumentDependencyVerifier
}
TASK_GENERATORS: dict[str, type[Any]] = {TemplateTaskGenerator.name: TemplateTaskGenerator}
AGENTS: dict[str, type[Any]] = {ChainExecutingAgent.name: ChainExecutingAgent}
JUDGES: dict[str, type[Any]] = {RuleBasedJudge.name: RuleBasedJudge}
