"""A key/value cache layer that grows in place, for the interleaved decode loop.

transformers' ``DynamicLayer`` concatenates every pass's keys and values onto the whole cache,
so each decoded token copies the cache once per layer: on two CPU cores with a 1 M-parameter
model that copy was a fifth of a decode pass (8 rows, 600 cached columns). This layer keeps its
keys and values in buffers with room to spare and writes each pass's columns into them; what
the model reads are views of the filled part. Buffers grow by a quarter (at least 256 columns)
when full, so the copies that remain are amortised.
"""

from __future__ import annotations

from typing import Any

import torch

MIN_ROOM = 256  # columns added when a buffer fills up, at the least


def growing_layer_type() -> type | None:
    """``GrowingLayer`` (a ``DynamicLayer``), or None with transformers before 4.55."""
    try:
        from transformers.cache_utils import DynamicLayer
    except ImportError:
        return None

    class GrowingLayer(DynamicLayer):  # type: ignore[misc, valid-type]
        """A ``DynamicLayer`` whose ``keys`` and ``values`` are views of larger buffers."""

        def __init__(self, keys: torch.Tensor, values: torch.Tensor) -> None:
            super().__init__()
            self.device = keys.device
            self.is_initialized = True
            self._fill(keys, values)

        def _fill(self, keys: torch.Tensor, values: torch.Tensor) -> None:
            length = keys.shape[-2]
            room = length + max(MIN_ROOM, length // 4)
            shape = (*keys.shape[:2], room, keys.shape[-1])
            self._k = keys.new_empty(shape)
            self._v = values.new_empty((*values.shape[:2], room, values.shape[-1]))
            self._k[:, :, :length] = keys
            self._v[:, :, :length] = values
            self.keys, self.values = self._k[:, :, :length], self._v[:, :, :length]

        def update(
            self, key_states: torch.Tensor, value_states: torch.Tensor, *args: Any, **kwargs: Any
        ) -> tuple[torch.Tensor, torch.Tensor]:
            start = self.keys.shape[-2]
            end = start + key_states.shape[-2]
            if end > self._k.shape[-2]:
                self._fill(self.keys, self.values)  # a larger buffer, then this pass
                return self.update(key_states, value_states)
            self._k[:, :, start:end] = key_states
            self._v[:, :, start:end] = value_states
            self.keys, self.values = self._k[:, :, :end], self._v[:, :, :end]
            return self.keys, self.values

        def keep(self, rows: torch.Tensor, cols: torch.Tensor | None) -> None:
            """Only the ``rows`` (and, when given, the ``cols``) of the cache."""
            keys, values = self.keys[rows], self.values[rows]
            if cols is not None:
                keys, values = keys[:, :, cols], values[:, :, cols]
            self._fill(keys, values)

        def batch_select_indices(self, indices: torch.Tensor) -> None:
            self.keep(indices, None)

    return GrowingLayer


_GROWING: type | None = growing_layer_type()


def grow_in_place(cache: Any, layers: list[Any]) -> list[Any]:
    """Replaces each of ``cache``'s ``layers`` (plain ``DynamicLayer``s) by a ``GrowingLayer``
    holding the same keys and values; returns the new layers (the old ones when there is no
    ``GrowingLayer`` in this transformers)."""
    if _GROWING is None:
        return layers
    grown = [_GROWING(layer.keys, layer.values) for layer in layers]
    cache.layers[: len(grown)] = grown
    return grown
