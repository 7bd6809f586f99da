"""Log-probabilities of the sampled tokens of a micro-batch of rollouts, for the RL update.

Three savings over one full forward pass with a log-softmax over every position, with the same
values at the trained tokens:

* rows with the same prompt (a GRPO group) run the tokens they all start with once; the key/value
  cache of that prefix is repeated for every row and each row's own tokens attend to it.
  Gradients flow through the cache into the prefix, so the gradient is the plain pass's too;
* logits are computed only at positions that predict a trained token (``logits_to_keep``): the
  prompt, tool schemas and tool responses predict nothing that is trained, and the output head
  over the vocabulary is the largest activation of a small model;
* ``log p = logit[token] - logsumexp(logits)`` instead of a log-softmax over the vocabulary.

Models whose forward lacks ``logits_to_keep`` or a reusable key/value cache (sliding-window or
hybrid caches, gradient checkpointing) take the plain pass.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from astra_training.forward_pass import (
    MIN_SHARED_PREFIX,
    ForwardArgs,
    common_prefix,
    prefix_pass,
    suffix_pass,
)


def completion_logprobs(
    model: Any,
    ids: torch.Tensor,
    attention: torch.Tensor,
    mask: torch.Tensor,
    temperature: float,
    *,
    prompt_groups: Sequence[int] | None = None,
    args: ForwardArgs | None = None,
) -> torch.Tensor:
    """``log p(ids[:, t + 1])`` (float32, shape ``(rows, width - 1)``) wherever ``mask[:, t]``
    is set in some row of the row's prompt group, 0 elsewhere.

    ``ids`` are right-padded (``attention`` 1 on real tokens). Rows with the same
    ``prompt_groups`` label are run together and share their common prefix; without labels all
    rows form one group.
    """
    args = args or ForwardArgs.of(model)
    rows, width = ids.shape
    labels = list(prompt_groups) if prompt_groups is not None else [0] * rows
    if len(labels) != rows:
        raise ValueError(f"prompt_groups has {len(labels)} labels for {rows} rows")
    members: dict[int, list[int]] = {}
    for row, label in enumerate(labels):
        members.setdefault(label, []).append(row)
    lengths = attention.sum(dim=1)
    out = torch.zeros((rows, width - 1), dtype=torch.float32, device=ids.device)
    for group in members.values():
        index = torch.tensor(group, device=ids.device)
        w = int(lengths[index].max())  # trim the padding every row of the group has
        g_ids, g_att, g_mask = ids[index, :w], attention[index, :w], mask[index, : w - 1]
        cols = g_mask.any(dim=0).nonzero().squeeze(-1)  # position t predicts token t + 1
        if not len(cols):
            continue
        prefix = common_prefix(g_ids, int(lengths[index].min())) if args.shareable_cache else 0
        logits = None
        if prefix >= MIN_SHARED_PREFIX:
            logits = _shared_prefix_logits(model, g_ids, g_att, cols, prefix, args)
        if logits is None:
            logits = _logits_at(model, g_ids, g_att, cols, args)
        lp = _gather_logprobs(logits, g_ids[:, cols + 1], temperature)
        out = out.index_put((index[:, None], cols[None, :]), lp)
    return out


def _logits_at(
    model: Any, ids: torch.Tensor, attention: torch.Tensor, cols: torch.Tensor, args: ForwardArgs
) -> torch.Tensor:
    """The plain pass: logits at positions ``cols`` only, shape (rows, len(cols), vocab)."""
    inputs: dict[str, Any] = {"input_ids": ids, "attention_mask": attention, "use_cache": False}
    if args.logits_to_keep:
        return model(**inputs, logits_to_keep=cols).logits
    return model(**inputs).logits[:, cols]


def _shared_prefix_logits(
    model: Any,
    ids: torch.Tensor,
    attention: torch.Tensor,
    cols: torch.Tensor,
    prefix: int,
    args: ForwardArgs,
) -> torch.Tensor | None:
    """Logits at ``cols`` with ``ids[:, :prefix]`` (the same in every row) run once; None when
    the model gives back no cache that can be repeated for the rows."""
    rows = ids.shape[0]
    pre_cols, suf_cols = cols[cols < prefix], cols[cols >= prefix] - prefix
    # 1. the prefix, once; its positions 0..prefix-1 predict tokens 1..prefix
    pre_logits, cache = prefix_pass(model, ids, prefix, pre_cols, args)
    if cache is None or not hasattr(cache, "batch_repeat_interleave"):
        return None
    pre_logits = pre_logits.expand(rows, -1, -1)
    if not len(suf_cols):
        return pre_logits
    # 2. every row's own tokens, attending to the prefix cache repeated for each row
    logits = suffix_pass(model, ids, attention, prefix, cache, suf_cols, args)
    # cols is sorted: the prefix's positions come first
    return torch.cat([pre_logits, logits], dim=1) if len(pre_cols) else logits


def _gather_logprobs(
    logits: torch.Tensor, targets: torch.Tensor, temperature: float
) -> torch.Tensor:
    logits = logits.float()
    if temperature != 1.0:
        logits = logits / temperature
    picked = logits.gather(-1, targets[..., None]).squeeze(-1)
    return picked - torch.logsumexp(logits, dim=-1)
