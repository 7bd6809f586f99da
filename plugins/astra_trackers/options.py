"""Options of the trackers (entries of ``[tracking] trackers = [...]``)."""

from __future__ import annotations

from typing import Any, Literal

import attrs


def _opt(text: str, default: Any) -> Any:
    return attrs.field(default=default, metadata={"help": text})


_MAIN_ONLY_HELP = "log only from the main process (RANK 0) when training runs on several processes"


@attrs.frozen
class JSONLOptions:
    """One JSON line per logged step."""

    path: str = _opt(
        "file to append to; a relative path is under the run directory", "metrics.jsonl"
    )
    timestamps: bool = _opt('add "time" (seconds since the epoch) to every line', True)
    main_process_only: bool = _opt(_MAIN_ONLY_HELP, True)


@attrs.frozen
class WandbOptions:
    """Weights & Biases; offline runs are uploaded later with ``wandb sync DIR``."""

    project: str = _opt("W&B project", "astra")
    name: str | None = _opt("run name (None: W&B picks one)", None)
    mode: Literal["online", "offline", "disabled"] | None = _opt(
        "W&B mode (None: the WANDB_MODE environment variable, else W&B's default)", None
    )
    dir: str | None = _opt(
        "directory W&B writes its wandb/ folder in; a relative path is under the run directory "
        "(None: WANDB_DIR, else the run directory)",
        None,
    )
    entity: str | None = _opt("W&B entity (team or user; None: the default one)", None)
    group: str | None = _opt("W&B run group (e.g. one per experiment)", None)
    tags: tuple[str, ...] = _opt("W&B run tags", ())
    capture_console: bool = _opt("let W&B capture stdout/stderr of the run", False)
    main_process_only: bool = _opt(_MAIN_ONLY_HELP, True)


@attrs.frozen
class ConsoleOptions:
    """A line of metrics on stderr every few steps."""

    every: int = _opt("print every N-th step", 1)
    keys: tuple[str, ...] = _opt("metrics to print, in this order (empty: all)", ())
    digits: int = _opt("significant digits of floats", 4)
    main_process_only: bool = _opt(_MAIN_ONLY_HELP, True)
