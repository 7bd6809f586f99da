"""RL algorithms (GRPO as the paper, Dr.GRPO, DAPO, GSPO, RLOO, REINFORCE++). The paper's
adaptive batch filling, usable with any of them, is the RL trainer's (bundled training plugin)."""

from typing import Any

__all__ = [
    "DAPO",
    "GRPO",
    "GSPO",
    "RLOO",
    "DrGRPO",
    "PolicyGradientAlgorithm",
    "ReinforcePP",
]


def __getattr__(name: str) -> Any:
    # the algorithms import torch: loaded on first use, not when the plugin registers them
    if name in __all__:
        from astra_rl_algorithms import algorithms

        return getattr(algorithms, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
