"""Hook implementations of the bundled training plugin: the ``sft`` and ``rl`` trainers, the
``arena-eval`` evaluator and the eval report's sections."""

from __future__ import annotations

from typing import Any

from astra_core import hookimpl
from astra_core.registry import ComponentBuilder, Registrar
from astra_training.preflight import lora_problems, rl_problems
from astra_training.rl_options import EvalOptions, RLOptions
from astra_training.sft_options import SFTOptions

# The components import torch and transformers (~2 s) when one is built, not when the plugin
# loads: `astra plugins`, `config check` and `--help` do not wait for them.


def _sft(options: SFTOptions | None, builder: ComponentBuilder) -> Any:
    from astra_training.sft import SFTTrainer

    return SFTTrainer(options, builder)


def _rl(options: RLOptions, builder: ComponentBuilder) -> Any:
    from astra_training.rl_trainer import RLTrainer

    return RLTrainer(options, builder)


def _arena_eval(options: EvalOptions, builder: ComponentBuilder) -> Any:
    from astra_training.arena_eval import ArenaEvaluator

    return ArenaEvaluator(options, builder)


@hookimpl
def astra_register_trainers(registry: Registrar) -> None:
    registry.add(
        "sft",
        _sft,
        options=SFTOptions,
        description="Supervised fine-tuning on tool-calling conversations (assistant tokens "
        "only), on Accelerate, with exact resume.",
        preflight=lora_problems,
    )
    registry.add(
        "rl",
        _rl,
        options=RLOptions,
        description="Online multi-turn RL in arenas (GRPO and other algorithm plugins).",
        preflight=rl_problems,
    )


@hookimpl
def astra_register_evaluators(registry: Registrar) -> None:
    registry.add(
        "arena-eval",
        _arena_eval,
        options=EvalOptions,
        description="Models side by side on held-out arenas: success rate, reward and its parts.",
    )


@hookimpl
def astra_report_sections(out_dir: str, summaries: list[Any]) -> list[str]:
    from pathlib import Path

    from astra_training.report_sections import eval_table, reward_curve

    sections = [eval_table(summaries), reward_curve(Path(out_dir))]
    return [s for s in sections if s]
