"""One run whose arenas mix offline-world and BFCL entries (two generators in one synth-arenas
stage): train-rl and eval play each arena with its own runtime and score it with its own
verifier (subtask-f1 / bfcl-multi-turn), chosen per arena through ``astra_arena_verifier``.
Needs bfcl-eval; the tools run in the real sandbox."""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip(
    "bfcl_eval", reason="bfcl-eval is not installed: pip install --no-deps bfcl-eval mpmath"
)
pytest.importorskip("mpmath", reason="mpmath is not installed (bfcl-eval's MathAPI needs it)")

from test_bfcl_rollout import tiny_model_for

import astra_core
from astra_core import hookimpl
from astra_core.config import parse_config
from astra_core.plugins import load_plugins
from astra_core.records import Arena
from astra_core.store import RecordStore

ROLLOUT = {"max_new_tokens": 8, "max_turns": 1, "max_length": 16384, "system_prompt": ""}


class VerifierChoices:
    """Observes, without changing it, which verifier each arena gets, per stage."""

    def __init__(self) -> None:
        self.stage = ""
        self.seen: dict[str, dict[str, set[str]]] = defaultdict(lambda: defaultdict(set))

    @hookimpl
    def astra_stage_start(self, stage: str) -> None:
        self.stage = stage

    @hookimpl(wrapper=True)
    def astra_arena_verifier(self, arena: Arena) -> Any:
        name = yield
        self.seen[self.stage][str(arena.metadata.get("source", "offline-world"))].add(name)
        return name


def kind(arena: Arena) -> str:
    return "bfcl" if arena.metadata.get("source") == "bfcl-eval" else "offline-world"


@pytest.mark.slow
def test_bfcl_and_offline_world_arenas_mix_each_scored_by_its_own_verifier(tmp_path: Path):
    out = tmp_path / "run"
    data: dict[str, Any] = {
        "run": {"name": "mixed", "seed": 0},
        "synth-arenas": {
            "holdout_fraction": 0.5,
            "generator": [
                {"name": "offline-world", "count": 8, "sandbox": "subprocess"},
                {"name": "bfcl-multi-turn", "limit": 2, "categories": ["base", "long_context"]},
            ],
        },
    }
    astra_core.run(parse_config(data), out, quiet=True)
    arenas = list(RecordStore(out / "synth-arenas", Arena).iter_records())
    sides = {(kind(a), a.split) for a in arenas}
    assert sides == {(k, s) for k in ("bfcl", "offline-world") for s in ("train", "holdout")}

    model = tiny_model_for(arenas, tmp_path / "model")
    data["train-rl"] = {
        "trainer": {
            "name": "rl",
            "model": str(model),
            "sandbox": "subprocess",
            "steps": 1,
            "groups_per_step": 6,
            "group_size": 2,
            "max_fill_rounds": 1,
            "checkpoint_every": 0,
            "rollout": ROLLOUT,
        }
    }
    data["eval"] = {
        "evaluator": {
            "name": "arena-eval",
            "models": ["train-rl"],
            "sandbox": "subprocess",
            "batch_size": 16,
            "rollout": ROLLOUT,
        }
    }
    choices = VerifierChoices()
    report = astra_core.run(
        parse_config(data),
        out,
        quiet=True,
        stages=["train-rl", "eval"],
        plugins=load_plugins(objects=[("verifier-choices", choices)]),
    )
    assert all(s.status == "complete" for s in report.stages), report.to_dict()
    expected = {"offline-world": {"subtask-f1"}, "bfcl-eval": {"bfcl-multi-turn"}}
    assert choices.seen["train-rl"] == expected
    assert choices.seen["eval"] == expected
    # eval played every held-out arena of both kinds, each scored by its own rules
    held_out = {a.id: a for a in arenas if a.held_out}
    (episodes,) = (out / "eval").glob("episodes-*.jsonl")
    rows = [json.loads(line) for line in episodes.read_text().splitlines()]
    assert sorted(r["arena_id"] for r in rows) == sorted(held_out)
    for row in rows:
        parts = row["reward"]["parts"]
        if kind(held_out[row["arena_id"]]) == "bfcl":
            assert "bfcl_valid" in parts and "needed" not in parts, parts
        else:
            assert "needed" in parts and "bfcl_valid" not in parts, parts
