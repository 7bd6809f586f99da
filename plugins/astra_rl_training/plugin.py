"""Hook implementations of the bundled RL-training plugin."""

from __future__ import annotations

from typing import Any

from astra_core import hookimpl
from astra_rl_training.evaluator import ArenaEvaluator
from astra_rl_training.options import EvalOptions, RLOptions
from astra_rl_training.trainer import RLTrainer


@hookimpl
def astra_register_trainers(registry: Any) -> None:
    registry.add(
        "rl",
        RLTrainer,
        options=RLOptions,
        description="Online multi-turn RL in arenas (GRPO and other algorithm plugins).",
    )
    registry.add(
        "arena-eval",
        ArenaEvaluator,
        options=EvalOptions,
        description="Models side by side on held-out arenas: success rate, reward and its parts.",
    )


@hookimpl
def astra_report_sections(out_dir: str, summaries: list[Any]) -> list[str]:
    from pathlib import Path

    from astra_rl_training.report_sections import eval_table, reward_curve

    sections = [eval_table(summaries), reward_curve(Path(out_dir))]
    return [s for s in sections if s]
