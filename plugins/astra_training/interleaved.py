"""A decode loop whose episodes take their turns independently (generation backend
``"interleaved"``).

With ``model.generate`` every turn of a batch waits for its longest row, and the next turn
prefills each conversation again. Here one key/value cache holds every live episode, and the
loop goes on token by token: when an episode's turn ends (a stop token or its budget), the
rollout engine runs its tool calls at once and the loop feeds the responses into that row in the
next forward pass, while the other rows keep decoding. A forward pass then carries one new token
for most rows and a tool response for a few; on a CPU, or with a small model, a forward pass
costs about the same either way, so a batch takes about as many passes as its longest episode
has tokens.

Rows fed fewer tokens than the widest in a pass are padded on the left of their chunk; the pads
stay in the cache as masked columns (positions are given explicitly, so they shift nothing).
Finished episodes leave the cache, and so do columns that no remaining row uses.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import attrs
import torch

from astra_training.episode_draws import EpisodeDraws
from astra_training.forward_pass import ForwardArgs, returned_cache
from astra_training.generation import (
    PaddedGenerate,
    Sampling,
    eval_mode,
    left_padded,
    padded_positions,
    plain_cache_layers,
)
from astra_training.growing_cache import grow_in_place

# on_turn(row, new_ids) -> (ids that follow the turn, next turn's budget), or None when the
# episode is over
TurnCallback = Callable[[int, list[int]], "tuple[Sequence[int], int] | None"]


@attrs.define
class _Row:
    index: int  # the row in the caller's prompts
    pending: list[int]  # fed in the next pass
    budget: int
    new: list[int] = attrs.Factory(list)
    drawn: int = 0  # tokens sampled so far: the episode's next draw


class InterleavedGenerate:
    """Generation backend ``"interleaved"``: see the module docstring.

    ``run(prompts, budgets, sampling, on_turn)`` decodes until every episode is over: after each
    turn it calls ``on_turn(row, new_ids)``, which returns the ids to append (tool responses and
    the next generation prompt) with the next turn's token budget, or None to end the episode.
    ``generate()`` is one turn per prompt, as the other backends give. Models whose cache is
    not a plain per-layer key/value cache (sliding-window, hybrid) take ``PaddedGenerate``'s
    turn-by-turn path instead (``interleaves_turns`` is then False).
    """

    def __init__(self, model: Any, pad_id: int, stop_ids: Sequence[int]) -> None:
        self.model = model
        self.pad_id = pad_id
        self.stop_ids = frozenset(stop_ids)
        args = ForwardArgs.of(model)
        self._cache_arg = args.cache
        self._logits_to_keep = args.logits_to_keep
        self.interleaves_turns = args.shareable_cache
        self._padded = PaddedGenerate(model, pad_id, stop_ids)

    def generate(
        self, prompts: Sequence[Sequence[int]], max_new_tokens: Sequence[int], sampling: Sampling
    ) -> list[list[int]]:
        if not self.interleaves_turns:
            return self._padded.generate(prompts, max_new_tokens, sampling)
        out: list[list[int]] = [[] for _ in prompts]

        def one_turn(row: int, new_ids: list[int]) -> None:
            out[row] = new_ids

        self.run(prompts, max_new_tokens, sampling, one_turn)
        return out

    @torch.no_grad()
    def run(
        self,
        prompts: Sequence[Sequence[int]],
        budgets: Sequence[int],
        sampling: Sampling,
        on_turn: TurnCallback,
    ) -> None:
        if not prompts:
            return
        device = next(self.model.parameters()).device
        rows = [
            _Row(i, list(p), max(1, b))
            for i, (p, b) in enumerate(zip(prompts, budgets, strict=True))
        ]
        if any(not r.pending for r in rows):
            raise ValueError("interleaved generation needs a non-empty prompt for every row")
        draws = EpisodeDraws() if sampling.do_sample else None
        with eval_mode(self.model):
            logits, cache, seen, positions = self._first_pass(rows, device)
            # later passes write into the cache in place instead of copying it every pass
            layers = grow_in_place(cache, self._layers(cache))
            while True:
                tokens = sample(logits, sampling, draws, rows).tolist()
                keep = []
                for j, (row, token) in enumerate(zip(rows, tokens, strict=True)):
                    row.drawn += 1
                    row.new.append(int(token))
                    row.pending = [int(token)]
                    if token not in self.stop_ids and len(row.new) < row.budget:
                        keep.append(j)
                        continue
                    follow = on_turn(row.index, row.new)
                    if follow is not None:
                        more, budget = follow
                        row.pending.extend(more)
                        row.new, row.budget = [], max(1, budget)
                        keep.append(j)
                if not keep:
                    return
                if len(keep) < len(rows):
                    rows = [rows[j] for j in keep]
                    seen, positions = self._drop(layers, seen, positions, keep)
                ids, chunk = self._chunk([r.pending for r in rows], device)
                seen = torch.cat([seen, chunk], dim=1)
                out = self._forward(ids, seen, positions[:, None] + padded_positions(chunk), cache)
                logits = out.logits[:, -1, :]
                positions = positions + chunk.sum(-1)

    def _first_pass(
        self, rows: Sequence[_Row], device: torch.device
    ) -> tuple[torch.Tensor, Any, torch.Tensor, torch.Tensor]:
        """The prompts' pass, each distinct prompt once (a GRPO group shares one), its cache
        then repeated for every row: the next-token logits, the cache, its mask and each row's
        next position."""
        distinct: dict[tuple[int, ...], int] = {}
        which = [distinct.setdefault(tuple(r.pending), len(distinct)) for r in rows]
        ids, mask = self._chunk(list(distinct), device)
        out = self._forward(ids, mask, padded_positions(mask), None)
        cache = returned_cache(out)
        index = torch.tensor(which, dtype=torch.long, device=device)
        if len(distinct) < len(rows):
            for layer in self._layers(cache):
                layer.keys, layer.values = layer.keys[index], layer.values[index]
        mask = mask[index]
        return out.logits[index, -1, :], cache, mask, mask.sum(-1)

    def _forward(
        self, ids: torch.Tensor, mask: torch.Tensor, positions: torch.Tensor, cache: Any
    ) -> Any:
        return self.model(
            input_ids=ids,
            attention_mask=mask,
            position_ids=positions,
            use_cache=True,
            **({self._cache_arg: cache} if cache is not None else {}),
            **({"logits_to_keep": 1} if self._logits_to_keep else {}),
        )

    @staticmethod
    def _layers(cache: Any) -> list[Any]:
        layers = plain_cache_layers(cache)
        # interleaves_turns is set only for models whose layers are all full attention
        assert layers is not None, "interleaved generation needs a plain key/value cache"
        return layers

    def _chunk(
        self, pending: Sequence[Sequence[int]], device: torch.device
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """A pass's ids, each row's pending tokens left-padded to the widest, and their mask."""
        if all(len(p) == 1 for p in pending):  # most passes: one sampled token a row
            ids = torch.tensor([[p[0]] for p in pending], dtype=torch.long, device=device)
            return ids, torch.ones_like(ids)
        ids, mask = left_padded(pending, self.pad_id)
        return ids.to(device), mask.to(device)

    @staticmethod
    def _drop(
        layers: list[Any], seen: torch.Tensor, positions: torch.Tensor, keep: list[int]
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Keeps the ``keep`` rows of the cache (in place) without the columns none of them
        attends to; returns their mask and positions."""
        rows = torch.tensor(keep, dtype=torch.long, device=seen.device)
        seen, positions = seen[rows], positions[rows]
        used = seen.bool().any(0)
        cols = None if bool(used.all()) else used.nonzero().squeeze(-1)
        if cols is not None:
            seen = seen[:, cols]
        for layer in layers:
            if hasattr(layer, "keep"):  # a GrowingLayer
                layer.keep(rows, cols)
                continue
            layer.keys, layer.values = layer.keys[rows], layer.values[rows]
            if cols is not None:
                layer.keys, layer.values = layer.keys[:, :, cols], layer.values[:, :, cols]
        return seen, positions


def sample(
    logits: torch.Tensor, sampling: Sampling, draws: EpisodeDraws | None, rows: Sequence[_Row]
) -> torch.Tensor:
    """One token per row: greedy, or drawn from ``sampling_scores`` with each episode's own
    next draw (so an episode samples the same whatever it is decoded with)."""
    if not sampling.do_sample or draws is None:
        return logits.argmax(-1)
    scores = sampling_scores(logits, sampling)
    return draws.tokens(scores, [r.index for r in rows], [r.drawn for r in rows])


def sampling_scores(logits: torch.Tensor, sampling: Sampling) -> torch.Tensor:
    """The logits after temperature, top-k and top-p, in transformers' order (what
    ``model.generate`` samples from): tokens cut off are ``-inf``."""
    scores = logits.float() / max(sampling.temperature, 1e-6)
    if sampling.top_k and sampling.top_k < scores.shape[-1]:
        kth = torch.topk(scores, sampling.top_k, dim=-1).values[:, -1:]
        scores = scores.masked_fill(scores < kth, float("-inf"))
    if sampling.top_p < 1.0:
        ordered, order = torch.sort(scores, descending=False, dim=-1)
        cumulative = ordered.softmax(-1).cumsum(-1)
        drop = cumulative <= 1 - sampling.top_p
        drop[:, -1] = False  # the most likely token always stays
        scores = scores.masked_fill(torch.zeros_like(drop).scatter(-1, order, drop), float("-inf"))
    return scores
