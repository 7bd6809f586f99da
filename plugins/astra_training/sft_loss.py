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

from typing import Any

import torch
import torch.nn.functional as F

from astra_training.batches import Batch
from astra_training.forward_pass import (
    MIN_SHARED_PREFIX,
    ForwardArgs,
    common_prefix,
    prefix_pass,
    suffix_pass,
)


def _nll(logits: torch.Tensor, labels: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """Sum of ``weights`` x cross-entropy; ``logits`` (..., V), ``labels`` and ``weights`` (...)."""
    losses = F.cross_entropy(
        logits.reshape(-1, logits.shape[-1]).float(), labels.reshape(-1), reduction="none"
    )
    return (losses * weights.reshape(-1)).sum()


def common_prefix_length(batch: Batch) -> int:
    """Tokens every row starts with, leaving each row at least one token of its own."""
    return common_prefix(batch.input_ids, min(batch.lengths))


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
    rows = ids.shape[0]
    weights = targets[:, 1:]  # weights[:, t]: the target at t + 1, predicted at position t
    # 1. the prefix, once; its positions 0..prefix-1 predict tokens 1..prefix
    pre_w = weights[:, :prefix]
    pre_cols = pre_w.any(dim=0).nonzero().squeeze(-1)
    pre_logits, cache = prefix_pass(model, ids, prefix, pre_cols, args)
    total = ids.new_zeros((), dtype=torch.float32)
    if len(pre_cols):
        # the same logits serve every row; each row weighs them with its own targets
        pre_logits = pre_logits.expand(rows, -1, -1)
        total = total + _nll(pre_logits, ids[:, pre_cols + 1], pre_w[:, pre_cols])
    # 2. every row's own tokens, attending to the repeated prefix cache
    suf_w = weights[:, prefix:]
    suf_cols = suf_w.any(dim=0).nonzero().squeeze(-1)
    if not len(suf_cols):
        return total
    assert batch.attention_mask is not None  # packed rows never share a prefix
    logits = suffix_pass(model, ids, batch.attention_mask, prefix, cache, suf_cols, args)
    return total + _nll(logits, ids[:, prefix + suf_cols + 1], suf_w[:, suf_cols])
