"""Options of the trackers (entries of ``[tracking] trackers = [...]``)."""

from __future__ import annotations

from typing import Literal

import attrs

from astra_core.options import option

_MAIN_ONLY_HELP = "log only from the main process (RANK 0) when training runs on several processes"


@attrs.frozen
class JSONLOptions:
    """One JSON line per logged step."""

    path: str = option(
        "file to append to; a relative path is under the run directory", "metrics.jsonl"
    )
    timestamps: bool = option('add "time" (seconds since the epoch) to every line', True)
    main_process_only: bool = option(_MAIN_ONLY_HELP, True)


@attrs.frozen
class WandbOptions:
    """Weights & Biases; offline runs are uploaded later with ``wandb sync DIR``."""

    project: str = option("W&B project", "astra")
    name: str | None = option("run name (None: W&B picks one)", None)
    mode: Literal["online", "offline", "disabled"] | None = option(
        "W&B mode (None: the WANDB_MODE environment variable, else W&B's default)", None
    )
    dir: str | None = option(
        "directory W&B writes its wandb/ folder in; a relative path is under the run directory "
        "(None: WANDB_DIR, else the run directory)",
        None,
    )
    entity: str | None = option("W&B entity (team or user; None: the default one)", None)
    group: str | None = option("W&B run group (e.g. one per experiment)", None)
    tags: tuple[str, ...] = option("W&B run tags", ())
    capture_console: bool = option("let W&B capture stdout/stderr of the run", False)
    main_process_only: bool = option(_MAIN_ONLY_HELP, True)


@attrs.frozen
class ConsoleOptions:
    """A line of metrics on stderr every few steps."""

    every: int = option("print every N-th step", 1)
    keys: tuple[str, ...] = option("metrics to print, in this order (empty: all)", ())
    digits: int = option("significant digits of floats", 4)
    main_process_only: bool = option(_MAIN_ONLY_HELP, True)
