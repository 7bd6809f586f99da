"""Where the model a stage trains or evaluates comes from."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from astra_core.config import STAGES
from astra_core.context import StageContext
from astra_core.errors import ConfigError


def resolve_model(ctx: StageContext, ref: str) -> str:
    """``"train-sft"`` -> that stage's final model; ``"train-sft/base"`` -> a sub-directory of a
    stage (the untrained model an SFT run started from); anything else is a local path or a hub
    id passed to ``from_pretrained`` as it is."""
    stage, _, sub = ref.partition("/")
    if stage in STAGES:
        path = ctx.stage_dir(stage) / (sub or "model")
        if not (path / "config.json").exists():
            raise ConfigError(
                f"model {ref!r}: {path} holds no model; run the {stage} stage first "
                "(or name a local path or a hub id)",
                key=f"{ctx.stage}",
            )
        return str(path)
    return ref


def load_policy(path: str, *, dtype: str = "auto") -> tuple[Any, Any]:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(path, padding_side="left")
    torch_dtype = {
        "auto": "auto",
        "float32": torch.float32,
        "bfloat16": torch.bfloat16,
        "float16": torch.float16,
    }[dtype]
    model = AutoModelForCausalLM.from_pretrained(path, dtype=torch_dtype)
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    return model, tokenizer


def save_policy(model: Any, tokenizer: Any, path: Path) -> None:
    path.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
