"""Sharded parameters (FSDP, DeepSpeed ZeRO-3): which Accelerate set-ups shard them, and what
train-rl refuses under them before a model loads. FSDP and DeepSpeed need GPUs (on CPU
Accelerate falls back to DDP), so the refusal is tested on the decision, from the shipped
configs, and the unsharded path on a real CPU Accelerator."""

from __future__ import annotations

from pathlib import Path

import pytest
from accelerate.commands.config.config_args import load_config_from_file
from astra_training.accelerate_setup import make_accelerator
from astra_training.sharding import (
    accelerator_shards_parameters,
    check_rollouts,
    full_state_dict,
    parameters_sharded,
)

from astra_core.errors import ConfigError

CONFIGS = Path(__file__).resolve().parent.parent / "examples" / "accelerate"


@pytest.mark.parametrize(
    ("name", "sharded"),
    [
        ("cpu-gloo.yaml", False),
        ("ddp.yaml", False),
        ("deepspeed-zero2.yaml", False),
        ("deepspeed-zero3.yaml", True),
        ("fsdp2.yaml", True),
    ],
)
def test_shipped_configs_shard_parameters_or_not(name: str, sharded: bool) -> None:
    config = load_config_from_file(str(CONFIGS / name))
    stage = (config.deepspeed_config or {}).get("zero_stage")
    assert parameters_sharded(str(config.distributed_type), stage) is sharded


def test_local_rollouts_and_lora_are_refused_under_sharding() -> None:
    with pytest.raises(ConfigError, match=r"\[train-rl\.rollout\.generation_backend\].*server"):
        check_rollouts("train-rl", True, "interleaved", lora=False)
    with pytest.raises(ConfigError, match=r"\[train-rl\.lora\] LoRA with sharded parameters"):
        check_rollouts("train-rl", True, "server", lora=True)
    check_rollouts("train-rl", True, "server", lora=False)  # the rollout server: allowed
    check_rollouts("train-rl", False, "interleaved", lora=True)  # DDP, ZeRO-2: anything


def test_an_unsharded_accelerator_saves_its_own_weights() -> None:
    import torch

    accelerator = make_accelerator()
    assert not accelerator_shards_parameters(accelerator)
    model = accelerator.prepare(torch.nn.Linear(2, 2))
    assert full_state_dict(accelerator, model) is None
