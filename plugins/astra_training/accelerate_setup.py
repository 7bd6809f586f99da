"""The ``Accelerator`` every ASTRA trainer runs on (the SFT and RL trainers share it).

One process on a CPU or a GPU, or many under ``accelerate launch`` / ``torchrun`` (DDP, also
gloo on CPUs: ``ACCELERATE_USE_CPU=1 accelerate launch --multi_gpu --num_processes 2 ...``).
Trainers shard the work themselves (``process_index`` of ``num_processes``) and never let
Accelerate step schedulers or split data loaders, so a step means the same thing on one process
and on many.
"""

from __future__ import annotations

import os
from typing import Any

from astra_training.host_allocator import keep_freed_memory


def make_accelerator(mixed_precision: str = "no") -> Any:
    import torch
    from accelerate import Accelerator

    cpu = not torch.cuda.is_available() or os.environ.get("ACCELERATE_USE_CPU", "") in ("1", "true")
    # the option when it asks for autocast, else what `accelerate launch --mixed_precision` set
    mixed = mixed_precision
    if mixed == "no":
        mixed = os.environ.get("ACCELERATE_MIXED_PRECISION", "no")
    if cpu:
        keep_freed_memory()
    forget_accelerator_settings()
    return Accelerator(cpu=cpu, mixed_precision=mixed, step_scheduler_with_optimizer=False)


def uneven_forward_calls(model: Any) -> Any:
    """``model`` (as ``accelerator.prepare`` gave it) made ready for processes that run
    different numbers of forward calls before a backward: DDP broadcasts the module's buffers
    at every forward call, a collective that the others would wait on for ever. A causal LM's
    buffers (rotary frequencies) never change, so nothing is lost. Returns ``model``."""
    if hasattr(model, "broadcast_buffers"):  # DDP; FSDP and DeepSpeed have no such flag
        model.broadcast_buffers = False  # torch >= 2.13 names it forward_sync_buffers
    return model


def forget_accelerator_settings() -> None:
    """Accelerate keeps one process-wide state: the first ``Accelerator`` fixes the mixed
    precision of every later one, and asking for another raises. Each stage sets its own, so an
    earlier stage's (or an embedding program's earlier run's) settings are dropped here. The
    distributed state (process group, ranks) is kept."""
    from accelerate.state import AcceleratorState

    AcceleratorState._reset_state(reset_partial_state=False)


def seed_everything(seed: int) -> None:
    """Python, numpy and torch generators of this process (the same seed on every process, so
    models built from scratch start identical everywhere)."""
    from accelerate.utils import set_seed

    set_seed(seed)
