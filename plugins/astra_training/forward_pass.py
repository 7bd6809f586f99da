"""The forward passes both trainers make: what a model's ``forward`` accepts, and the
shared-prefix pass (the tokens every row starts with run once, their key/value cache repeated
for every row).

Rows that start alike (a GRPO group's prompt; SFT rows with the same system prompt and tool
schemas) run that prefix once; each row's own tokens then attend to its cache. Gradients flow
through the cache into the prefix, so values and gradients are those of the plain pass. Logits
are computed only at the positions asked for (``logits_to_keep`` with an index tensor, which
transformers' causal LMs accept): the output head over the vocabulary is the largest activation
of a small model.
"""

from __future__ import annotations

import inspect
from typing import Any

import attrs
import torch

from astra_training.lora import forward_module

MIN_SHARED_PREFIX = 8  # shorter shared prefixes are not worth a second forward call


@attrs.frozen
class ForwardArgs:
    """What a causal LM's ``forward`` accepts: ``logits_to_keep``, the name of its key/value
    cache argument (``cache`` in transformers 5.2x, ``past_key_values`` before), and whether
    a prefix cache may be shared (every layer is full attention)."""

    logits_to_keep: bool = False
    cache: str = "past_key_values"
    shareable_cache: bool = False

    @classmethod
    def of(cls, model: Any) -> ForwardArgs:
        inner = forward_module(model)
        try:
            params = inspect.signature(inner.forward).parameters
        except (TypeError, ValueError):
            return cls()
        config = getattr(inner, "config", None)
        layer_types = getattr(config, "layer_types", None) or ()
        # transformers 5 renamed is_gradient_checkpointing (the old name warns)
        checkpointing = getattr(inner, "is_activation_checkpointing", None)
        if checkpointing is None:
            checkpointing = getattr(inner, "is_gradient_checkpointing", False)
        shareable = (
            "use_cache" in params
            and all(t == "full_attention" for t in layer_types)
            and not checkpointing
        )
        return cls(
            "logits_to_keep" in params,
            "cache" if "cache" in params else "past_key_values",
            shareable,
        )


def returned_cache(output: Any) -> Any:
    """The key/value cache a forward call gave back (None when it gave none)."""
    cache = getattr(output, "cache", None)
    return cache if cache is not None else getattr(output, "past_key_values", None)


def common_prefix(ids: torch.Tensor, shortest: int) -> int:
    """Tokens every row of ``ids`` starts with, leaving each row (the shortest has ``shortest``
    real tokens) at least one token of its own."""
    if ids.shape[0] < 2:
        return 0
    limit = shortest - 1
    same = (ids[:, :limit] == ids[:1, :limit]).all(dim=0)
    differs = (~same).nonzero()
    return int(differs[0]) if len(differs) else max(limit, 0)


def prefix_pass(
    model: Any, ids: torch.Tensor, prefix: int, cols: torch.Tensor, args: ForwardArgs
) -> tuple[torch.Tensor, Any]:
    """``ids[:1, :prefix]`` (the same in every row) run once: its logits at positions ``cols``
    (shape (1, len(cols), vocab); position t predicts token t + 1) and its key/value cache."""
    out = model(
        input_ids=ids[:1, :prefix],
        use_cache=True,
        **({"logits_to_keep": cols} if args.logits_to_keep else {}),
    )
    logits = out.logits if args.logits_to_keep else out.logits[:, cols]
    return logits, returned_cache(out)


def suffix_pass(
    model: Any,
    ids: torch.Tensor,
    attention: torch.Tensor,
    prefix: int,
    cache: Any,
    cols: torch.Tensor,
    args: ForwardArgs,
) -> torch.Tensor:
    """Every row's tokens after ``prefix``, attending to the prefix's ``cache`` repeated for
    each row: logits at positions ``prefix + cols``, shape (rows, len(cols), vocab)."""
    rows, width = ids.shape
    cache.batch_repeat_interleave(rows)
    suffix_attention = torch.cat([attention.new_ones((rows, prefix)), attention[:, prefix:]], 1)
    positions = torch.arange(prefix, width, device=ids.device).expand(rows, -1)
    logits = model(
        input_ids=ids[:, prefix:],
        attention_mask=suffix_attention,
        position_ids=positions,
        use_cache=True,
        **{args.cache: cache},
        **({"logits_to_keep": cols} if args.logits_to_keep else {}),
    ).logits
    return logits if args.logits_to_keep else logits[:, cols]
