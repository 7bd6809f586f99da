"""Hook implementations of the bundled RL-algorithm plugin."""

from __future__ import annotations

from typing import Any

from astra_core import hookimpl
from astra_core.registry import Registrar
from astra_rl_algorithms.options import (
    DAPOOptions,
    DrGRPOOptions,
    GRPOOptions,
    GSPOOptions,
    ReinforcePPOptions,
    RLOOOptions,
)

# name -> (its class in astra_rl_algorithms.algorithms, its options, what it is). The classes
# import torch, so each is imported when an algorithm is built, not when the plugin loads.
_ALGORITHMS: dict[str, tuple[str, type, str]] = {
    "grpo": (
        "GRPO",
        GRPOOptions,
        "GRPO as the paper: group-normalised advantages, PPO-clip, token-mean over the batch, "
        "no KL, no entropy bonus (optional k3 KL to a reference).",
    ),
    "dr_grpo": (
        "DrGRPO",
        DrGRPOOptions,
        "Dr.GRPO: advantages without std normalisation, token losses summed and divided by a "
        "constant length.",
    ),
    "dapo": (
        "DAPO",
        DAPOOptions,
        "DAPO: clip-higher (0.2/0.28), token-mean over the batch, optional overlong filtering "
        "and soft overlong punishment (applied by train-rl).",
    ),
    "gspo": (
        "GSPO",
        GSPOOptions,
        "GSPO: sequence-level importance ratio (geometric mean of token ratios) clipped per "
        "sequence.",
    ),
    "rloo": (
        "RLOO",
        RLOOOptions,
        "RLOO: leave-one-out baseline within each group, PPO-clip, token-mean.",
    ),
    "reinforce_pp": (
        "ReinforcePP",
        ReinforcePPOptions,
        "REINFORCE++: rewards normalised over the whole batch, token-level PPO-clip loss.",
    ),
}


def _factory(class_name: str) -> Any:
    def make(options: Any, builder: Any) -> Any:
        from astra_rl_algorithms import algorithms

        return getattr(algorithms, class_name)(options)

    return make


@hookimpl
def astra_register_rl_algorithms(registry: Registrar) -> None:
    for name, (class_name, options, description) in _ALGORITHMS.items():
        registry.add(name, _factory(class_name), options=options, description=description)
