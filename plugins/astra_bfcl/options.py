"""Options of the BFCL components (TOML tables under a component choice)."""

from __future__ import annotations

from typing import Any

import attrs

from astra_core.options import ComponentSpec, at_least, component, option

# Kept here (not imported from astra_bfcl.data) so that options validate without bfcl-eval.
CATEGORIES: tuple[str, ...] = ("base", "miss_func", "miss_param", "long_context")


def _categories(_: Any, attribute: attrs.Attribute, value: tuple[str, ...]) -> None:
    if not value:
        raise ValueError(f"{attribute.name} needs at least one of {', '.join(CATEGORIES)}")
    unknown = [c for c in value if c not in CATEGORIES]
    if unknown:
        raise ValueError(
            f"{attribute.name} has unknown BFCL multi-turn category {unknown[0]!r}; "
            f"known: {', '.join(CATEGORIES)}"
        )


@attrs.frozen
class BfclMultiTurnOptions:
    """Options of the ``bfcl-multi-turn`` environment generator."""

    categories: tuple[str, ...] = attrs.field(
        default=CATEGORIES,
        converter=tuple,
        validator=_categories,
        metadata={
            "help": "BFCL multi-turn categories to wrap: base, miss_func, miss_param, "
            "long_context (200 entries each)"
        },
    )
    limit: int = option(
        "entries per category, the first ones in BFCL's order (0 = all)",
        0,
        validator=at_least(0),
    )
    ids: tuple[str, ...] = attrs.field(
        default=(),
        converter=tuple,
        metadata={"help": "only these BFCL entry ids (e.g. multi_turn_base_0); empty = all"},
    )
    # The sandbox component that replays the ground truth (``component`` fields carry no help).
    sandbox: ComponentSpec = component("sandbox", default="bubblewrap")
    batch_size: int = option(
        "entries replayed per sandbox run while generating", 20, validator=at_least(1)
    )
    timeout_s: float = option(
        "wall-clock limit of one replay run in the sandbox", 120.0, validator=at_least(0.001)
    )


@attrs.frozen
class BfclVerifierOptions:
    """Options of the ``bfcl-multi-turn`` verifier."""

    sandbox: ComponentSpec = component("sandbox", default="bubblewrap")
    check_irrelevance: bool = option(
        "judge turns whose ground truth is empty (miss_func, miss_param): they pass only when "
        "the agent made no call (bfcl-eval's multi_turn_irrelevance_checker); false skips "
        "them, as bfcl-eval 2026.3.23's runner does",
        True,
    )
    infer_turns: bool = option(
        "when the calls carry no turn (no turn_ends, no .turn attribute), find the turn "
        "boundaries that pass the most turns; false puts every call in the first turn",
        True,
    )
    timeout_s: float = option(
        "wall-clock limit of one verification replay in the sandbox",
        60.0,
        validator=at_least(0.001),
    )
