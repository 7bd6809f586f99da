"""Metric values made plain: numbers (tensors, numpy scalars), strings and booleans."""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from typing import Any


def plain_value(value: Any, *, finite: bool = True) -> float | int | str | bool | None:
    """A JSON-ready scalar; with ``finite``, NaN and infinities become None (strict JSON has no
    such numbers)."""
    if isinstance(value, (bool, str)) or value is None:
        return value
    if hasattr(value, "item"):  # torch tensors, numpy scalars
        try:
            value = value.item()
        except (ValueError, RuntimeError):  # more than one element: not a scalar metric
            return str(value)
    if isinstance(value, int):
        return value
    try:
        number = float(value)
    except (TypeError, ValueError):
        return str(value)
    return number if math.isfinite(number) or not finite else None


def plain_metrics(metrics: Mapping[str, Any], *, finite: bool = True) -> dict[str, Any]:
    return {str(key): plain_value(value, finite=finite) for key, value in metrics.items()}


def is_main_process() -> bool:
    """False on the non-zero ranks of a torchrun / accelerate launch (they set RANK)."""
    return os.environ.get("RANK", "0") in ("", "0")
