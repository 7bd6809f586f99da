"""The interchangeable steps of trajectory sampling, by the names options choose them with.

Each class is built as ``cls(options, builder)``. The names an option accepts are listed in
``options`` (which must not import the step modules); this module maps them to the classes and
checks at import that both agree.
"""

from __future__ import annotations

from typing import Any

from astra_trajectories import options
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

for _table in ("CHAIN_VERIFIERS", "TASK_GENERATORS", "AGENTS", "JUDGES"):
    # a step class renamed without its option, or the other way round, fails here, not mid-run
    assert tuple(globals()[_table]) == getattr(options, _table), _table
