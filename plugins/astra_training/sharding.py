"""Training with sharded parameters (FSDP, DeepSpeed ZeRO-3) through Accelerate.

With sharded parameters every forward call is a collective (each layer's weights are gathered
from all processes), so all processes must run the same forward calls in step. Data-parallel
rollouts do not: each process generates its own episodes, of their own lengths. RL and eval
under sharding therefore sample on a rollout server (``generation_backend = "server"``), and
saving gathers the full weights on every process for the main one to write.
ZeRO-2 shards gradients and optimizer state only: each process holds the whole model, and local
rollouts work as without it.
"""

from __future__ import annotations

from typing import Any

from astra_core.errors import ConfigError


def parameters_sharded(distributed_type: str, zero_stage: int | None = None) -> bool:
    """Whether a run of this Accelerate ``distributed_type`` (its name: "FSDP", "DEEPSPEED",
    ...) splits the parameters themselves across processes."""
    name = str(distributed_type).rsplit(".", 1)[-1].upper()
    return name == "FSDP" or (name == "DEEPSPEED" and (zero_stage or 0) >= 3)


def accelerator_shards_parameters(accelerator: Any) -> bool:
    state = accelerator.state
    plugin = getattr(state, "deepspeed_plugin", None)
    stage = getattr(plugin, "zero_stage", None) if plugin is not None else None
    return parameters_sharded(str(state.distributed_type), stage)


def check_rollouts(stage: str, sharded: bool, generation_backend: str, *, lora: bool) -> None:
    """Refuse, before a model loads, local rollouts under sharded parameters (they would hang)
    and LoRA with them (its merged model and adapter files are written from whole weights)."""
    if sharded and lora:
        raise ConfigError(
            "LoRA with sharded parameters (FSDP, DeepSpeed ZeRO-3) is not supported by train-rl: "
            "a LoRA run's base model is frozen, so DDP or ZeRO-2 (examples/accelerate/) fit it",
            key=f"{stage}.lora",
        )
    if sharded and generation_backend != "server":
        raise ConfigError(
            f"generation_backend = {generation_backend!r} generates on every process, which "
            "cannot run with sharded parameters (FSDP, DeepSpeed ZeRO-3: every forward call is a "
            "collective, and processes generate episodes of different lengths); sample on a "
            'rollout server (generation_backend = "server", docs/training.md) or use DDP or '
            "ZeRO-2 (examples/accelerate/)",
            key=f"{stage}.rollout.generation_backend",
        )


def full_state_dict(accelerator: Any, model: Any) -> dict[str, Any] | None:
    """The whole model's weights for saving, gathered when the parameters are sharded (a
    collective: call it on every process); ``None`` when each process holds them already."""
    if accelerator_shards_parameters(accelerator):
        return accelerator.get_state_dict(model)
    return None
