"""Hook implementations of the bundled RL-algorithm plugin."""

from __future__ import annotations

from typing import Any

from astra_core import hookimpl
from astra_core.registry import Registrar
from astra_rl_algorithms.algorithms import ALGORITHMS

_DESCRIPTIONS = {
    "grpo": "GRPO as the paper: group-normalised advantages, PPO-clip, token-mean over the "
    "batch, no KL, no entropy bonus (optional k3 KL to a reference).",
    "dr_grpo": "Dr.GRPO: advantages without std normalisation, token losses summed and divided "
    "by a constant length.",
    "dapo": "DAPO: clip-higher (0.2/0.28), token-mean over the batch, optional overlong filtering "
    "and soft overlong punishment (applied by train-rl).",
    "gspo": "GSPO: sequence-level importance ratio (geometric mean of token ratios) clipped per "
    "sequence.",
    "rloo": "RLOO: leave-one-out baseline within each group, PPO-clip, token-mean.",
    "reinforce_pp": "REINFORCE++: rewards normalised over the whole batch, token-level "
    "PPO-clip loss.",
}


def _factory(cls: type) -> Any:
    def make(options: Any, builder: Any) -> Any:
        return cls(options)

    return make


@hookimpl
def astra_register_rl_algorithms(registry: Registrar) -> None:
    for name, (cls, options) in ALGORITHMS.items():
        registry.add(name, _factory(cls), options=options, description=_DESCRIPTIONS[name])
