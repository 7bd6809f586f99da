"""Hook implementations of the bundled trackers plugin."""

from __future__ import annotations

from typing import Any

from astra_core import hookimpl
from astra_core.registry import Registrar
from astra_trackers.console import ConsoleTracker
from astra_trackers.jsonl import JSONLTracker
from astra_trackers.options import ConsoleOptions, JSONLOptions, WandbOptions


def jsonl(options: JSONLOptions, builder: Any) -> JSONLTracker:
    return JSONLTracker(options, builder.workdir)


def wandb(options: WandbOptions, builder: Any) -> Any:
    from astra_trackers.wandb_run import WandbTracker  # imports wandb only when chosen

    return WandbTracker(options, builder.workdir)


def console(options: ConsoleOptions, builder: Any) -> ConsoleTracker:
    return ConsoleTracker(options)


@hookimpl
def astra_register_trackers(registry: Registrar) -> None:
    registry.add(
        "jsonl",
        jsonl,
        options=JSONLOptions,
        description="Appends one JSON line per step (metrics, step, time) to a file under the "
        "run directory.",
    )
    registry.add(
        "wandb",
        wandb,
        options=WandbOptions,
        description="Weights & Biases run; respects WANDB_MODE/WANDB_DIR (offline runs sync "
        "later with `wandb sync`).",
    )
    registry.add(
        "console",
        console,
        options=ConsoleOptions,
        description="Prints 'step N | metric value | ...' on stderr every few steps.",
    )
