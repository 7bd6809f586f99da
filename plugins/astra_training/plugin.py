"""Hook implementations of the bundled training plugin: the ``sft`` and ``rl`` trainers, the
``arena-eval`` evaluator and the eval report's sections."""

from __future__ import annotations

from typing import Any

from astra_core import hookimpl
from astra_core.registry import Registrar
from astra_training.arena_eval import ArenaEvaluator
from astra_training.preflight import lora_problems, rl_problems
from astra_training.rl_options import EvalOptions, RLOptions
from astra_training.rl_trainer import RLTrainer
from astra_training.sft import SFTTrainer
from astra_training.sft_options import SFTOptions


@hookimpl
def astra_register_trainers(registry: Registrar) -> None:
    registry.add(
        "sft",
        SFTTrainer,
        options=SFTOptions,
        description="Supervised fine-tuning on tool-calling conversations (assistant tokens "
        "only), on Accelerate, with exact resume.",
        preflight=lora_problems,
    )
    registry.add(
        "rl",
        RLTrainer,
        options=RLOptions,
        description="Online multi-turn RL in arenas (GRPO and other algorithm plugins).",
        preflight=rl_problems,
    )


@hookimpl
def astra_register_evaluators(registry: Registrar) -> None:
    registry.add(
        "arena-eval",
        ArenaEvaluator,
        options=EvalOptions,
        description="Models side by side on held-out arenas: success rate, reward and its parts.",
    )


@hookimpl
def astra_report_sections(out_dir: str, summaries: list[Any]) -> list[str]:
    from pathlib import Path

    from astra_training.report_sections import eval_table, reward_curve

    sections = [eval_table(summaries), reward_curve(Path(out_dir))]
    return [s for s in sections if s]
