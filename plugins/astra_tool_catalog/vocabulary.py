"""The words the bundled worlds are made of (names, products, cities, books...), shipped as
package data in ``vocabulary.json``; states pick from them with a seeded generator."""

from __future__ import annotations

import functools
import json
import random
from importlib import resources
from typing import Any


@functools.lru_cache(maxsize=1)
def vocabulary() -> dict[str, Any]:
    text = (
        resources.files("astra_tool_catalog")
        .joinpath("vocabulary.json")
        .read_text(encoding="utf-8")
    )
    data: dict[str, Any] = json.loads(text)
    return data


def people(rng: random.Random, count: int) -> list[tuple[str, str]]:
    """``count`` distinct (first, last) names."""
    vocab = vocabulary()
    pairs = [(f, last) for f in vocab["first_names"] for last in vocab["last_names"]]
    chosen = rng.sample(pairs, count)
    # distinct first names keep the generated emails and searches unambiguous
    seen: set[str] = set()
    out = []
    for first, last in chosen:
        if first in seen:
            first = next(f for f in vocab["first_names"] if f not in seen)
        seen.add(first)
        out.append((first, last))
    return out


def email(first: str, last: str, domain: str = "example.com") -> str:
    return f"{first.lower()}.{last.lower()}@{domain}"


def day(offset: int) -> str:
    """The date ``offset`` days after the worlds' fixed 'today' (2025-06-02, a Monday)."""
    import datetime as dt

    return (dt.date(2025, 6, 2) + dt.timedelta(days=offset)).isoformat()


TODAY = "2025-06-02"
