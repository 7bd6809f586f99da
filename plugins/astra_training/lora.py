"""Low-rank adapters (peft) for the training stages: the options both trainers take, and what they
do with a model. Only the adapters train; a stage saves its final model with them merged, so
eval and later stages load it like any other. peft is imported only when ``r > 0``."""

from __future__ import annotations

import logging
from typing import Any

import attrs

from astra_core.errors import ConfigError
from astra_core.options import at_least, option, within

log = logging.getLogger("astra")


@attrs.frozen
class LoraOptions:
    """Low-rank adapters instead of training every weight: ``r = 0`` is off."""

    r: int = option("adapter rank (0: train every weight)", 0, validator=at_least(0))
    alpha: int = option("adapter scale numerator: updates are scaled by alpha / r", 16)
    dropout: float = option("dropout on the adapters' input", 0.0, validator=within(0, 1))
    target_modules: tuple[str, ...] = option(
        "module names to adapt (e.g. q_proj, v_proj); empty: every linear layer but the "
        "output head",
        (),
    )


def is_adapted(model: Any) -> bool:
    return hasattr(model, "peft_config")


def with_lora(model: Any, options: LoraOptions, *, stage: str = "") -> Any:
    """``model`` with fresh adapters (a peft ``PeftModel``), or ``model`` itself when ``r`` is 0."""
    if not options.r:
        return model
    try:
        from peft import LoraConfig, get_peft_model
    except ImportError:
        raise ConfigError(
            "lora.r > 0 needs peft: pip install 'astra-agents[peft]'", key=f"{stage}.lora"
        ) from None
    config = LoraConfig(
        r=options.r,
        lora_alpha=options.alpha,
        lora_dropout=options.dropout,
        target_modules=list(options.target_modules) or "all-linear",
        task_type="CAUSAL_LM",
    )
    adapted = get_peft_model(model, config)
    total = sum(p.numel() for p in adapted.parameters())
    trained = sum(p.numel() for p in trainable_parameters(adapted))
    log.getChild(stage).info("lora r=%d: training %d of %d parameters", options.r, trained, total)
    return adapted


def trainable_parameters(model: Any) -> list[Any]:
    """What the optimizer gets: the adapters of an adapted model, else every parameter."""
    return [p for p in model.parameters() if p.requires_grad]


def forward_module(model: Any) -> Any:
    """The module whose ``forward`` a call reaches through the wrappers (DDP's ``module``,
    peft's base model, whose forward hands its keywords on): what decides which keywords a
    call may pass."""
    inner = getattr(model, "module", model)
    return inner.get_base_model() if hasattr(inner, "get_base_model") else inner


def merged(model: Any) -> Any:
    """The plain model with the adapters folded into its weights (``model`` if it has none)."""
    return model.merge_and_unload() if is_adapted(model) else model


def load_adapter_state(model: Any, state: dict[str, Any]) -> list[str]:
    """Load a checkpoint's adapter weights into ``model``; return the keys that did not fit."""
    from peft import set_peft_model_state_dict

    result: Any = set_peft_model_state_dict(model, state)
    return list(result.unexpected_keys)
