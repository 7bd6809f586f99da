"""Checkpoints of a training run on Accelerate.

``<dir>/step-000050/`` holds ``model/`` (the weights and the tokenizer, loadable with
``from_pretrained``), ``trainer_state.json`` (step, data position, whatever the trainer adds) and,
for the latest ``keep_full_state`` checkpoints only, ``state/``: what
``Accelerator.save_state`` writes (model, optimizer, registered objects such as the LR scheduler,
the RNG states of every process). A checkpoint is written under a temporary name and renamed
when complete, so a run killed while saving resumes from the previous one. Every process must
call ``save`` and ``load`` (Accelerate gathers and writes per-process RNG states).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from astra_core.models import save_model

PREFIX = "step-"
STATE = "state"
TRAINER_STATE = "trainer_state.json"


class CheckpointManager:
    def __init__(
        self, directory: str | Path, accelerator: Any, *, keep_full_state: int, keep_weights: int
    ) -> None:
        self.directory = Path(directory)
        self.accelerator = accelerator
        self.keep_full_state = keep_full_state
        self.keep_weights = keep_weights

    def list(self) -> list[Path]:
        """Complete checkpoints, oldest first."""
        if not self.directory.is_dir():
            return []
        return sorted(
            p
            for p in self.directory.iterdir()
            if p.is_dir() and p.name.startswith(PREFIX) and (p / TRAINER_STATE).exists()
        )

    def latest_full(self) -> Path | None:
        """The newest checkpoint that can be resumed from (it has its full state)."""
        full = [p for p in self.list() if (p / STATE).is_dir()]
        return full[-1] if full else None

    def save(self, step: int, model: Any, tokenizer: Any, trainer_state: dict[str, Any]) -> Path:
        acc = self.accelerator
        final = self.directory / f"{PREFIX}{step:06d}"
        tmp = self.directory / f".tmp-{PREFIX}{step:06d}"
        if acc.is_main_process:
            for stale in self.directory.glob(f".tmp-{PREFIX}*"):  # saves a kill cut short
                shutil.rmtree(stale, ignore_errors=True)
            tmp.mkdir(parents=True)
        acc.wait_for_everyone()
        full = self.keep_full_state > 0
        if full:
            acc.save_state(str(tmp / STATE))
        state_dict = acc.get_state_dict(model)  # every process: gathers sharded weights
        if acc.is_main_process:
            save_model(acc.unwrap_model(model), tokenizer, tmp / "model", state_dict=state_dict)
            body = json.dumps({"step": step, **trainer_state}, indent=1)
            (tmp / TRAINER_STATE).write_text(body, encoding="utf-8")
            shutil.rmtree(final, ignore_errors=True)
            tmp.rename(final)
            self._prune()
        acc.wait_for_everyone()
        return final

    def _prune(self) -> None:
        found = self.list()
        if self.keep_weights > 0:
            for old in found[: -self.keep_weights]:
                shutil.rmtree(old, ignore_errors=True)
            found = found[-self.keep_weights :]
        with_state = [p for p in found if (p / STATE).is_dir()]
        for old in with_state[: -self.keep_full_state] if self.keep_full_state > 0 else with_state:
            shutil.rmtree(old / STATE, ignore_errors=True)

    def load(self, path: Path) -> dict[str, Any]:
        """Restore model, optimizer, registered objects and RNG; return the trainer state."""
        self.accelerator.load_state(str(path / STATE))
        return dict(json.loads((path / TRAINER_STATE).read_text(encoding="utf-8")))
