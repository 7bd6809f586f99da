"""RL algorithms (GRPO as the paper, Dr.GRPO, DAPO, GSPO, RLOO, REINFORCE++). The paper's
adaptive batch filling, usable with any of them, is the RL trainer's (bundled training plugin)."""

from astra_rl_algorithms.algorithms import (
    DAPO,
    GRPO,
    GSPO,
    RLOO,
    DrGRPO,
    PolicyGradientAlgorithm,
    ReinforcePP,
)

__all__ = [
    "DAPO",
    "GRPO",
    "GSPO",
    "RLOO",
    "DrGRPO",
    "PolicyGradientAlgorithm",
    "ReinforcePP",
]
