"""The summed negative log-likelihood of the assistant tokens of a micro-batch.

Logits are computed only at the positions that predict a trained token (``logits_to_keep`` with
an index tensor, which transformers' causal LMs accept): with long system prompts and tool
schemas most positions predict nothing, and the output head over the vocabulary is the largest
activation of a small model.

With ``shared_prefix``, the tokens every row of the micro-batch starts with (system prompt,
tool schemas) are run once; their key/value cache is repeated for every row and the rows' own
tokens attend to it. Gradients flow through the cache into the prefix, so the loss and its
gradient are those of the plain forward pass, at a fraction of the cost when the prefix is long.
"""

from __future__ import annotations

import inspect
from typing import Any

import attrs
import torch
import torch.nn.functional as F

from astra_core.lora import forward_module
from astra_training.batches import Batch

MIN_SHARED_PREFIX = 8  # shorter shared prefixes are not worth a second forward call


@attrs.frozen
class ForwardArgs:
    """What the model's ``forward`` accepts: ``logits_to_keep``, and the name of its key/value
    cache argument (``cache`` in transformers 5.2x, ``past_key_values`` before)."""

    logits_to_keep: bool = False
    cache: str = "past_key_values"

    @classmethod
    def of(cls, model: Any) -> ForwardArgs:
        inner = forward_module(model)
        try:
            params = inspect.signature(inner.forward).parameters
        except (TypeError, ValueError):
            return cls()
        return cls("logits_to_keep" in params, "cache" if "cache" in params else "past_key_values")


def _returned_cache(output: Any) -> Any:
    cache = getattr(output, "cache", None)
    return cache if cache is not None else output.past_key_values


def _nll(logits: torch.Tensor, labels: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """Sum of ``weights`` x cross-entropy; ``logits`` (..., V), ``labels`` and ``weights`` (...)."""
    losses = F.cross_entropy(
        logits.reshape(-1, logits.shape[-1]).float(), labels.reshape(-1), reduction="none"
    )
    return (losses * weights.reshape(-1)).sum()


def common_prefix_length(batch: Batch) -> int:
    """Tokens every row starts with, leaving each row at least one token of its own."""
    ids = batch.input_ids
    if ids.shape[0] < 2:
        return 0
    limit = min(batch.lengths) - 1
    same = (ids[:, :limit] == ids[:1, :limit]).all(dim=0)
    differs = (~same).nonzero()
    return int(differs[0]) if len(differs) else max(limit, 0)


def assistant_nll(
    model: Any,
    batch: Batch,
    *,
    args: ForwardArgs | None = None,
    shared_prefix: bool = False,
) -> torch.Tensor:
    """Sum over the batch of -log p(token) for every token with ``targets == 1``."""
    args = args or ForwardArgs.of(model)
    ids, targets = batch.input_ids, batch.targets
    if shared_prefix and batch.attention_mask is not None:
        prefix = common_prefix_length(batch)
        if prefix >= MIN_SHARED_PREFIX:
            return _shared_prefix_nll(model, batch, prefix, args)
    # position t predicts token t + 1
    weights = targets[:, 1:]
    inputs: dict[str, Any] = {"input_ids": ids, "position_ids": batch.position_ids}
    inputs["use_cache"] = False  # packed rows: no cache lets transformers see the restarts
    if batch.attention_mask is not None:
        inputs["attention_mask"] = batch.attention_mask
    if not args.logits_to_keep:
        return _nll(model(**inputs).logits[:, :-1], ids[:, 1:], weights)
    cols = weights.any(dim=0).nonzero().squeeze(-1)
    logits = model(**inputs, logits_to_keep=cols).logits
    return _nll(logits, ids[:, cols + 1], weights[:, cols])


def _shared_prefix_nll(model: Any, batch: Batch, prefix: int, args: ForwardArgs) -> torch.Tensor:
    ids, targets = batch.input_ids, batch.targets
    keep_logits = args.logits_to_keep
    rows, width = ids.shape
    weights = targets[:, 1:]  # weights[:, t]: the target at t + 1, predicted at position t
    # 1. the prefix, once; its positions 0..prefix-1 predict tokens 1..prefix
    pre_w = weights[:, :prefix]
    pre_cols = pre_w.any(dim=0).nonzero().squeeze(-1)
    out = model(
        input_ids=ids[:1, :prefix],
        use_cache=True,
        **({"logits_to_keep": pre_cols} if keep_logits else {}),
    )
    cache = _returned_cache(out)
    total = ids.new_zeros((), dtype=torch.float32)
    if len(pre_cols):
        pre_logits = out.logits if keep_logits else out.logits[:, pre_cols]
        # the same logits serve every row; each row weighs them with its own targets
        pre_logits = pre_logits.expand(rows, -1, -1)
        total = total + _nll(pre_logits, ids[:, pre_cols + 1], pre_w[:, pre_cols])
    # 2. every row's own tokens, attending to the repeated prefix cache
    cache.batch_repeat_interleave(rows)
    suf_w = weights[:, prefix:]
    suf_cols = suf_w.any(dim=0).nonzero().squeeze(-1)
    if not len(suf_cols):
        return total
    assert batch.attention_mask is not None  # packed rows never share a prefix
    attention = torch.cat([ids.new_ones((rows, prefix)), batch.attention_mask[:, prefix:]], dim=1)
    positions = torch.arange(prefix, width, device=ids.device).expand(rows, -1)
    logits = model(
        input_ids=ids[:, prefix:],
        attention_mask=attention,
        position_ids=positions,
        use_cache=True,
        **{args.cache: cache},
        **({"logits_to_keep": suf_cols} if keep_logits else {}),
    ).logits
    if not keep_logits:
        logits = logits[:, suf_cols]
    return total + _nll(logits, ids[:, prefix + suf_cols + 1], suf_w[:, suf_cols])
