"""Batched generation backends for rollouts: token ids in, sampled token ids out."""

from __future__ import annotations

import contextlib
from collections.abc import Hashable, Iterator, Sequence
from typing import Any

import attrs
import torch

from astra_training.forward_pass import ForwardArgs, returned_cache


@attrs.frozen
class Sampling:
    do_sample: bool = True
    temperature: float = 1.0
    top_p: float = 1.0
    top_k: int = 0


@attrs.frozen
class SampledTurn:
    """One generated turn with the sampler's log-probability of each of its tokens, from a
    generator that reports them (``returns_logprobs = True``: an inference server)."""

    ids: tuple[int, ...]
    logprobs: tuple[float, ...]


class PaddedGenerate:
    """``model.generate`` over a left-padded batch of every live episode.

    On CPU and for small batches this is the fastest path: transformers' continuous batching
    (``generate_batch``) took 12 s for 8 x 64 tokens on a 1 M-parameter model where padded
    ``generate`` took 0.26 s (measured on the development machine), so it is an option for GPUs.
    """

    def __init__(self, model: Any, pad_id: int, stop_ids: Sequence[int]) -> None:
        self.model = model
        self.pad_id = pad_id
        self.stop_ids = list(stop_ids)

    @torch.no_grad()
    def generate(
        self, prompts: Sequence[Sequence[int]], max_new_tokens: Sequence[int], sampling: Sampling
    ) -> list[list[int]]:
        if not prompts:
            return []
        ids, mask = left_padded(prompts, self.pad_id)
        sequences, _ = self._generate(ids, mask, max_new_tokens, sampling)
        return self._new_tokens(sequences, ids.shape[1], max_new_tokens)

    def _generate(
        self,
        ids: torch.Tensor,
        mask: torch.Tensor,
        max_new_tokens: Sequence[int],
        sampling: Sampling,
        **extra: Any,
    ) -> tuple[torch.Tensor, Any]:
        """``model.generate`` on the padded batch: the sequences, and the key/value cache when
        ``extra`` asks for it (``return_dict_in_generate``)."""
        device = next(self.model.parameters()).device
        kwargs: dict[str, Any] = {
            "max_new_tokens": max(1, max(max_new_tokens)),
            "do_sample": sampling.do_sample,
            "eos_token_id": self.stop_ids,
            "pad_token_id": self.pad_id,
        }
        if sampling.do_sample:
            kwargs.update(
                temperature=sampling.temperature, top_p=sampling.top_p, top_k=sampling.top_k or None
            )
        with eval_mode(self.model):
            out = self.model.generate(
                input_ids=ids.to(device), attention_mask=mask.to(device), **kwargs, **extra
            )
        if extra.get("return_dict_in_generate"):
            return out.sequences, returned_cache(out)
        return out, None

    def _new_tokens(
        self, sequences: torch.Tensor, width: int, max_new_tokens: Sequence[int]
    ) -> list[list[int]]:
        return [
            cut_turn(row, limit, self.stop_ids, self.pad_id)
            for row, limit in zip(sequences[:, width:].tolist(), max_new_tokens, strict=True)
        ]


def left_padded(rows: Sequence[Sequence[int]], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The rows left-padded to the longest with ``pad_id``, and their attention mask."""
    width = max(len(r) for r in rows)
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, row in enumerate(rows):
        ids[i, width - len(row) :] = torch.tensor(list(row), dtype=torch.long)
        mask[i, width - len(row) :] = 1
    return ids, mask


def padded_positions(mask: torch.Tensor) -> torch.Tensor:
    """Each column's position among its row's real tokens, as ``generate`` numbers a
    left-padded batch (pads get 0: they are masked)."""
    return (mask.cumsum(-1) - 1).clamp_min(0)


@contextlib.contextmanager
def eval_mode(model: Any) -> Iterator[None]:
    was_training = model.training
    model.eval()
    try:
        yield
    finally:
        if was_training:
            model.train()


@attrs.frozen
class _EpisodeCache:
    """An episode's key/value cache: ``ids`` (what was fed) and per layer (keys, values), each
    (heads, len(ids), head_dim), views into the cache of the call that produced them."""

    ids: tuple[int, ...]
    layers: tuple[tuple[torch.Tensor, torch.Tensor], ...]


class CachedPaddedGenerate(PaddedGenerate):
    """``PaddedGenerate`` that keeps each live episode's key/value cache between turns, so a
    turn prefills only what was added since the last one (the tool responses and the next
    generation prompt) instead of the whole conversation.

    The rollout engine passes ``keys`` (one per episode) and calls ``forget()`` when its run
    ends. A call keeps the caches of its own rows only (an episode missing from a call is done),
    so at most one batch's cache is held. A cache is used only when the episode's stored ids
    are a prefix of its new prompt. An episode without one (its first turn) has its prompt
    prefilled first, once for all the rows that have the same prompt (a GRPO group). Models
    whose cache is not a plain per-layer key/value cache (sliding-window, hybrid) generate as
    ``PaddedGenerate`` does.
    """

    keeps_episode_cache = True

    def __init__(self, model: Any, pad_id: int, stop_ids: Sequence[int]) -> None:
        super().__init__(model, pad_id, stop_ids)
        args = ForwardArgs.of(model)
        self._cache_arg = args.cache
        self._logits_to_keep = args.logits_to_keep
        self._enabled = args.shareable_cache
        self._entries: dict[Hashable, _EpisodeCache] = {}

    def forget(self) -> None:
        self._entries = {}

    @torch.no_grad()
    def generate(
        self,
        prompts: Sequence[Sequence[int]],
        max_new_tokens: Sequence[int],
        sampling: Sampling,
        *,
        keys: Sequence[Hashable] | None = None,
    ) -> list[list[int]]:
        if not prompts or keys is None or not self._enabled:
            self.forget()
            return super().generate(prompts, max_new_tokens, sampling)
        entries = [self._usable(key, prompt) for key, prompt in zip(keys, prompts, strict=True)]
        self.forget()  # replaced below by this call's rows: the others are done
        entries = self._prefill_missing(prompts, entries)
        ids, mask = left_padded(prompts, self.pad_id)
        width = ids.shape[1]
        # the columns every row has cached (left-padded rows end at `width`)
        common = width - max(
            len(p) - (len(e.ids) if e else 0) for p, e in zip(prompts, entries, strict=True)
        )
        extra: dict[str, Any] = {"return_dict_in_generate": True}
        if common > 0:
            extra[self._cache_arg] = self._padded_cache(prompts, entries, width, common)
        del entries  # the previous call's cache: free it before this one grows
        sequences, cache = self._generate(ids, mask, max_new_tokens, sampling, **extra)
        new = self._new_tokens(sequences, width, max_new_tokens)
        self._keep(cache, keys, prompts, new, width)
        return new

    def _usable(self, key: Hashable, prompt: Sequence[int]) -> _EpisodeCache | None:
        entry = self._entries.get(key)
        n = len(entry.ids) if entry else 0
        if entry is None or n >= len(prompt) or tuple(prompt[:n]) != entry.ids:
            return None
        return entry

    def _prefill_missing(
        self, prompts: Sequence[Sequence[int]], entries: list[_EpisodeCache | None]
    ) -> list[_EpisodeCache | None]:
        """Caches of the prompts of the rows without one (all but their last token, which
        ``generate`` feeds), each distinct prompt once, in one left-padded forward pass."""
        heads: dict[tuple[int, ...], list[int]] = {}
        for row, (prompt, entry) in enumerate(zip(prompts, entries, strict=True)):
            if entry is None and len(prompt) > 1:
                heads.setdefault(tuple(prompt[:-1]), []).append(row)
        if not heads:
            return entries
        ids, mask = left_padded(list(heads), self.pad_id)
        width = ids.shape[1]
        device = next(self.model.parameters()).device
        ids, mask = ids.to(device), mask.to(device)
        positions = padded_positions(mask)
        with eval_mode(self.model):
            out = self.model(
                input_ids=ids,
                attention_mask=mask,
                position_ids=positions,
                use_cache=True,
                **({"logits_to_keep": 1} if self._logits_to_keep else {}),
            )
        layers = plain_cache_layers(returned_cache(out))
        if layers is None:
            return entries
        filled = list(entries)
        for j, (head, rows) in enumerate(heads.items()):
            start = width - len(head)
            entry = _EpisodeCache(
                head, tuple((lay.keys[j, :, start:], lay.values[j, :, start:]) for lay in layers)
            )
            for row in rows:
                filled[row] = entry
        return filled

    def _padded_cache(
        self,
        prompts: Sequence[Sequence[int]],
        entries: Sequence[_EpisodeCache | None],
        width: int,
        common: int,
    ) -> Any:
        """A cache of the first ``common`` columns of the left-padded batch: each row's cached
        tokens in place, zeros (masked out) in its padding."""
        from transformers import DynamicCache

        ref = next(e for e in entries if e is not None)
        cache = DynamicCache()
        for layer, (k0, v0) in enumerate(ref.layers):
            keys = k0.new_zeros((len(prompts), k0.shape[0], common, k0.shape[-1]))
            values = v0.new_zeros((len(prompts), v0.shape[0], common, v0.shape[-1]))
            for row, (prompt, entry) in enumerate(zip(prompts, entries, strict=True)):
                take = common - (width - len(prompt))  # the row's real tokens among them
                if take > 0 and entry is not None:
                    k, v = entry.layers[layer]
                    keys[row, :, common - take :] = k[:, :take]
                    values[row, :, common - take :] = v[:, :take]
            cache.update(keys, values, layer)
        return cache

    def _keep(
        self,
        cache: Any,
        keys: Sequence[Hashable],
        prompts: Sequence[Sequence[int]],
        new: Sequence[Sequence[int]],
        width: int,
    ) -> None:
        layers = plain_cache_layers(cache)
        if layers is None:
            return
        for row, (key, prompt, tokens) in enumerate(zip(keys, prompts, new, strict=True)):
            if not tokens:
                continue
            # the last sampled token was never fed: its keys and values do not exist yet
            start, end = width - len(prompt), width + len(tokens) - 1
            self._entries[key] = _EpisodeCache(
                (*prompt, *tokens[:-1]),
                tuple(
                    (layer.keys[row, :, start:end], layer.values[row, :, start:end])
                    for layer in layers
                ),
            )


def plain_cache_layers(cache: Any) -> list[Any] | None:
    """The layers of a ``DynamicCache`` of full-attention layers (each holding ``keys`` and
    ``values`` of shape (batch, heads, length, head_dim)); None for any other cache."""
    try:
        from transformers.cache_utils import DynamicCache, DynamicLayer
    except ImportError:  # transformers before the per-layer caches (4.55)
        return None
    layers = getattr(cache, "layers", None)
    if not isinstance(cache, DynamicCache) or not layers:
        return None
    if any(type(layer) is not DynamicLayer for layer in layers):
        return None
    return list(layers)


class ContinuousBatchingGenerate:
    """transformers' continuous batching (``model.generate_batch``), for GPUs."""

    def __init__(self, model: Any, pad_id: int, stop_ids: Sequence[int]) -> None:
        self.model = model
        self.pad_id = pad_id
        self.stop_ids = list(stop_ids)

    @torch.no_grad()
    def generate(
        self, prompts: Sequence[Sequence[int]], max_new_tokens: Sequence[int], sampling: Sampling
    ) -> list[list[int]]:
        from transformers.generation import GenerationConfig

        if not prompts:
            return []
        config = GenerationConfig(
            max_new_tokens=max(1, max(max_new_tokens)),
            do_sample=sampling.do_sample,
            temperature=sampling.temperature if sampling.do_sample else None,
            top_p=sampling.top_p if sampling.do_sample else None,
            eos_token_id=self.stop_ids,
            pad_token_id=self.pad_id,
        )
        results = self.model.generate_batch(
            inputs=[list(p) for p in prompts], generation_config=config, progress_bar=False
        )
        ordered = sorted(results.values(), key=lambda r: int(str(r.request_id).split("_")[-1]))
        return [
            cut_turn(list(r.generated_tokens), limit, self.stop_ids, self.pad_id)
            for r, limit in zip(ordered, max_new_tokens, strict=True)
        ]


def cut_turn(row: list[int], limit: int, stop_ids: Sequence[int], pad_id: int) -> list[int]:
    """Keep the tokens up to and including the first stop token, at most ``limit`` of them."""
    out: list[int] = []
    for token in row[:limit]:
        out.append(int(token))
        if token in stop_ids:
            break
    while out and out[-1] == pad_id and pad_id not in stop_ids:
        out.pop()
    return out


GENERATORS = {"generate": PaddedGenerate, "continuous-batching": ContinuousBatchingGenerate}
