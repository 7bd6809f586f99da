"""Low-rank adapters (peft) for the RL policy: only the adapters train, the final model is saved
with them merged, so eval and later stages load it like any other."""

from __future__ import annotations

from typing import Any

from astra_core.errors import ConfigError
from astra_rl_training.options import LoraOptions


def is_adapted(model: Any) -> bool:
    return hasattr(model, "peft_config")


def with_lora(model: Any, options: LoraOptions) -> Any:
    """``model`` with fresh adapters (a peft ``PeftModel``), or ``model`` itself when ``r`` is 0."""
    if not options.r:
        return model
    try:
        from peft import LoraConfig, get_peft_model
    except ImportError:
        raise ConfigError(
            "rl: lora.r > 0 needs peft: pip install 'astra-agents[peft]'", key="train-rl.lora"
        ) from None
    config = LoraConfig(
        r=options.r,
        lora_alpha=options.alpha,
        lora_dropout=options.dropout,
        target_modules=list(options.target_modules) or "all-linear",
        task_type="CAUSAL_LM",
    )
    return get_peft_model(model, config)


def merged(model: Any) -> Any:
    """The plain model with the adapters folded into its weights (``model`` if it has none)."""
    return model.merge_and_unload() if is_adapted(model) else model


def load_adapter_state(model: Any, state: dict[str, Any]) -> list[str]:
    """Load a checkpoint's adapter weights into ``model``; return the keys that did not fit."""
    from peft import set_peft_model_state_dict

    result: Any = set_peft_model_state_dict(model, state)
    return list(result.unexpected_keys)
