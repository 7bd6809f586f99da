"""Checkpoints of a training run on Accelerate: one format for the SFT and RL trainers.

``<dir>/step-000050/`` holds ``model/`` (the weights and the tokenizer, loadable with
``from_pretrained``; with LoRA the adapters only, loadable with peft), ``trainer_state.json``
(step and whatever the trainer adds: SFT's data position, RL's carry-over buffer) and, for the
latest ``keep_full_state`` checkpoints only, ``state/``: what ``Accelerator.save_state`` writes
(model, optimizer, registered objects such as the LR scheduler, the RNG states of every
process). With LoRA, ``state/`` too holds the adapters only: the base weights never change, and
the trainer loads them again from its start model. A checkpoint is written under a temporary
name and renamed when complete, so a run killed while saving resumes from the previous one.
Every process must call ``save`` and ``load`` (Accelerate gathers and writes per-process RNG
states).
"""

from __future__ import annotations

import json
import shutil
from collections.abc import MutableSequence
from pathlib import Path
from typing import Any

from astra_training.lora import is_adapted, load_adapter_state
from astra_training.models import save_model

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
        accelerator.register_save_state_pre_hook(self._adapters_only)
        accelerator.register_load_state_pre_hook(self._load_adapters)

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

    def _adapters_only(
        self, models: MutableSequence[Any], weights: MutableSequence[Any], output_dir: str
    ) -> None:
        """``save_state`` pre-hook: an adapted model's weights are its adapters (``weights`` is
        empty under FSDP and DeepSpeed, which save the model themselves)."""
        for i, model in enumerate(models[: len(weights)]):
            inner = self.accelerator.unwrap_model(model)
            if is_adapted(inner):
                from peft import get_peft_model_state_dict

                weights[i] = get_peft_model_state_dict(inner)

    def _load_adapters(self, models: MutableSequence[Any], input_dir: str) -> None:
        """``load_state`` pre-hook: load an adapted model's adapters here and take it off the
        list, so Accelerate does not load them as a whole state dict (which would miss the
        base). Accelerate names the files by list position: the trainers prepare one model."""
        from safetensors.torch import load_file

        for i in reversed(range(len(models))):
            inner = self.accelerator.unwrap_model(models[i])
            if not is_adapted(inner):
                continue
            path = Path(input_dir) / ("model.safetensors" if i == 0 else f"model_{i}.safetensors")
            state = load_file(str(path))
            unexpected = load_adapter_state(inner, state)
            if not state or unexpected:
                raise RuntimeError(
                    f"checkpoint {input_dir} does not fit the adapters: "
                    f"{'no adapter weights' if not state else f'unexpected {unexpected[:5]}'}"
                )
            del models[i]
