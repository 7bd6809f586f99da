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

import inspect
from collections.abc import Sequence
from typing import Any

import attrs
import torch

from astra_core.lora import forward_module

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
    cache = getattr(output, "cache", None)
    return cache if cache is not None else getattr(output, "past_key_values", None)


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
        prefix = _common_prefix(g_ids, lengths[index]) if args.shareable_cache else 0
        logits = None
        if prefix >= MIN_SHARED_PREFIX:
            logits = _shared_prefix_logits(model, g_ids, g_att, cols, prefix, args)
        if logits is None:
            logits = _logits_at(model, g_ids, g_att, cols, args)
        lp = _gather_logprobs(logits, g_ids[:, cols + 1], temperature)
        out = out.index_put((index[:, None], cols[None, :]), lp)
    return out


def _common_prefix(ids: torch.Tensor, lengths: torch.Tensor) -> int:
    """Tokens every row starts with, leaving each row at least one token of its own."""
    if ids.shape[0] < 2:
        return 0
    limit = int(lengths.min()) - 1
    same = (ids[:, :limit] == ids[:1, :limit]).all(dim=0)
    differs = (~same).nonzero()
    return int(differs[0]) if len(differs) else max(limit, 0)


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
    rows, width = ids.shape
    keep = args.logits_to_keep
    pre_cols, suf_cols = cols[cols < prefix], cols[cols >= prefix] - prefix
    # 1. the prefix, once; its positions 0..prefix-1 predict tokens 1..prefix
    out = model(
        input_ids=ids[:1, :prefix],
        use_cache=True,
        **({"logits_to_keep": pre_cols} if keep else {}),
    )
    cache = returned_cache(out)
    if cache is None or not hasattr(cache, "batch_repeat_interleave"):
        return None
    pre_logits = (out.logits if keep else out.logits[:, pre_cols]).expand(rows, -1, -1)
    if not len(suf_cols):
        return pre_logits
    # 2. every row's own tokens, attending to the prefix cache repeated for each row
    cache.batch_repeat_interleave(rows)
    suffix_attention = torch.cat([attention.new_ones((rows, prefix)), attention[:, prefix:]], 1)
    positions = torch.arange(prefix, width, device=ids.device).expand(rows, -1)
    logits = model(
        input_ids=ids[:, prefix:],
        attention_mask=suffix_attention,
        position_ids=positions,
        use_cache=True,
        **{args.cache: cache},
        **({"logits_to_keep": suf_cols} if keep else {}),
    ).logits
    if not keep:
        logits = logits[:, suf_cols]
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
