"""Hook implementations of the bundled training plugin."""

from __future__ import annotations

from typing import Any

from astra_core import hookimpl
from astra_training.options import SFTOptions
from astra_training.sft import SFTTrainer


@hookimpl
def astra_register_trainers(registry: Any) -> None:
    registry.add(
        "sft",
        SFTTrainer,
        options=SFTOptions,
        description="Supervised fine-tuning on tool-calling conversations (assistant tokens "
        "only), on Accelerate, with exact resume.",
    )
