"""The ``wandb`` tracker: one W&B run per ASTRA run, started when the tracker is built (a
missing login fails before any stage runs, not after hours of training)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from astra_trackers.metric_values import is_main_process, plain_metrics
from astra_trackers.options import WandbOptions

# Every metric is plotted against ASTRA's step, not W&B's own counter: the stages of a run
# (train-sft, then train-rl) each count steps from 1, which W&B's monotonic step would reject.
STEP_KEY = "step"


def resolve_dir(options: WandbOptions, workdir: str | Path) -> Path:
    if options.dir is not None:
        path = Path(options.dir).expanduser()
        return path if path.is_absolute() else Path(workdir) / path
    env = os.environ.get("WANDB_DIR")
    return Path(env) if env else Path(workdir)


# Older spellings WANDB_MODE still accepts.
_LEGACY_MODES = {"dryrun": "offline", "run": "online"}


def resolve_mode(options: WandbOptions) -> Any:
    """The option, else WANDB_MODE read now (wandb caches its settings at its first init in a
    process, so a later change of the variable would go unseen), else wandb's default."""
    mode = options.mode or os.environ.get("WANDB_MODE") or None
    return _LEGACY_MODES.get(mode, mode) if mode else None


class WandbTracker:
    def __init__(self, options: WandbOptions, workdir: str | Path) -> None:
        self.options = options
        self.dir = resolve_dir(options, workdir)
        self.run: Any = None
        if options.main_process_only and not is_main_process():
            return
        import wandb

        self.dir.mkdir(parents=True, exist_ok=True)
        try:
            self.run = wandb.init(
                project=options.project,
                name=options.name,
                entity=options.entity,
                group=options.group,
                tags=list(options.tags) or None,
                mode=resolve_mode(options),
                dir=str(self.dir),
                reinit="create_new",
                settings=wandb.Settings(console="auto" if options.capture_console else "off"),
            )
        except Exception as exc:
            raise RuntimeError(
                f"tracker 'wandb': wandb.init failed: {exc}. To log without an account set "
                'WANDB_MODE=offline (or mode = "offline") and upload later with `wandb sync`'
            ) from exc
        self.run.define_metric(STEP_KEY)
        self.run.define_metric("*", step_metric=STEP_KEY)

    def log(self, metrics: Mapping[str, Any], step: int) -> None:
        if self.run is None:
            return
        self.run.log({**plain_metrics(metrics, finite=False), STEP_KEY: int(step)})

    def close(self) -> None:
        if self.run is not None:
            self.run.finish()
            self.run = None
