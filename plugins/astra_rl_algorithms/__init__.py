"""RL algorithms (GRPO as the paper, Dr.GRPO, DAPO, GSPO, RLOO, REINFORCE++) and the paper's
adaptive batch filling, usable with any of them."""

from astra_rl_algorithms.algorithms import (
    DAPO,
    GRPO,
    GSPO,
    RLOO,
    DrGRPO,
    PolicyGradientAlgorithm,
    ReinforcePP,
)
from astra_rl_algorithms.batch_filling import AdaptiveBatchFiller

__all__ = [
    "DAPO",
    "GRPO",
    "GSPO",
    "RLOO",
    "AdaptiveBatchFiller",
    "DrGRPO",
    "PolicyGradientAlgorithm",
    "ReinforcePP",
]
