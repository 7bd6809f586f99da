"""What the trainers need on this machine, checked before a run starts: peft when low-rank
adapters are on, and matplotlib for the report's reward curve (a warning: the run works
without it, the picture is missing)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from astra_core.preflight import Problem, missing_module


def lora_problems(options: Any, base_dir: Path) -> list[Problem]:
    """``lora.r > 0`` and peft is not installed."""
    if not options.lora.r:
        return []
    return missing_module(
        "peft", fix="pip install 'astra-agents[peft]'", why=f"lora.r = {options.lora.r}"
    )


def rl_problems(options: Any, base_dir: Path) -> list[Problem]:
    """The SFT needs, and matplotlib for ``reward-curve.png`` in the run's report."""
    return [
        *lora_problems(options, base_dir),
        *missing_module(
            "matplotlib",
            fix="pip install 'astra-agents[plots]'",
            why="the reward curve of report.md; without it the run has no reward-curve.png",
            severity="warning",
        ),
    ]
