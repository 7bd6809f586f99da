"""BFCL multi-turn arenas through the RL rollout engine (what ``train-rl`` and ``eval`` run):
the bfcl plugin's runtime is picked through the ``astra_arena_runtime`` hook, every user turn
is played in one episode, held-out functions are shown when their turn comes, and a policy that
makes each turn's ground-truth calls gets BFCL's full reward. Needs bfcl-eval; the tools run in
the real sandbox."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip(
    "bfcl_eval", reason="bfcl-eval is not installed: pip install --no-deps bfcl-eval mpmath"
)
pytest.importorskip("mpmath", reason="mpmath is not installed (bfcl-eval's MathAPI needs it)")

from astra_bfcl import data
from astra_training.arena_family import runtime_factory
from astra_training.generation import Sampling
from astra_training.models import load_model_and_tokenizer
from astra_training.rl_options import RolloutOptions
from astra_training.rl_trainer import make_engine
from astra_training.sft_options import TinyModelOptions
from astra_training.tiny_model import build_tiny_model
from test_bfcl import generate, ground_truth

import astra_core
from astra_core.config import parse_config
from astra_core.errors import AstraError
from astra_core.plugins import load_plugins
from astra_core.records import Arena, tool_name
from astra_core.registry import ComponentBuilder
from astra_core.store import RecordStore


@pytest.fixture(scope="module")
def arenas(tmp_path_factory: pytest.TempPathFactory) -> list[Arena]:
    """The first entry of each category (miss_func's offers a function from a later turn)."""
    made, _ = generate(tmp_path_factory.mktemp("bfcl-rollout"), limit=1)
    assert sorted(a.metadata["category"] for a in made) == sorted(data.CATEGORIES)
    return made


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory, arenas: list[Arena]) -> Path:
    """A tiny model whose tokenizer is trained on the arenas' text (its weights are not used)."""
    return tiny_model_for(arenas, tmp_path_factory.mktemp("bfcl-tiny") / "model")


def tiny_model_for(arenas: list[Arena], out: Path) -> Path:
    """A one-layer model at ``out`` whose tokenizer knows the arenas' questions and tools, with
    room for BFCL's long prompts."""
    texts = [a.question + " " + json.dumps(a.tools) for a in arenas] * 2
    options = TinyModelOptions(
        vocab_size=600,
        hidden_size=32,
        num_layers=1,
        num_heads=2,
        intermediate_size=64,
        max_position_embeddings=16384,  # BFCL prompts list many tools
    )
    build_tiny_model(texts, out, options, seed=0)
    return out


class TurnByTurnGold:
    """Stands in for the model: in each user turn, that turn's ground-truth calls in one
    assistant turn (when it has any), then an answer without a call. It reads the conversation
    so far from the prompt ids, as the model would, and knows its episode by the engine's keys."""

    keeps_episode_cache = True  # the engine then passes each episode's index as its key

    def __init__(self, arenas: list[Arena], chat: Any, parser: Any) -> None:
        self.arenas, self.chat, self.parser = arenas, chat, parser

    def generate(self, prompts, budgets, sampling, *, keys):
        out = []
        for ids, key in zip(prompts, keys, strict=True):
            # this template sends tool responses as user turns too: skip those
            segments = self.chat.tokenizer.decode(ids).split("<|im_start|>user\n")[1:]
            starts = [i for i, seg in enumerate(segments) if not seg.startswith("<tool_response>")]
            this_turn = "".join(segments[starts[-1] :])
            calls = ground_truth(self.arenas[key])[len(starts) - 1]
            if calls and "<tool_call>" not in this_turn:
                body = self.parser.format(calls)
            else:
                body = "Done."
            out.append([*self.chat.encode(body), self.chat.end_of_turn_id])
        return out

    def forget(self) -> None:
        pass


def test_every_user_turn_is_played_and_the_ground_truth_gets_full_reward(arenas, model_dir):
    plugins = load_plugins()
    builder = ComponentBuilder(plugins.registry)
    parser = builder.build("tool_call_parser", "hermes")
    model, tokenizer = load_model_and_tokenizer(str(model_dir))
    engine = make_engine(
        model,
        tokenizer,
        RolloutOptions(max_turns=4, max_length=16384, system_prompt=None),
        parser=parser,
        verifier=builder.build("verifier", "bfcl-multi-turn"),
        sandbox=builder.build("sandbox", "subprocess"),
        hook=plugins.hook,
    )
    engine.generator = TurnByTurnGold(arenas, engine.chat, parser)
    rollouts, stats = engine.run(arenas, Sampling(do_sample=False))
    assert stats.stop_reasons == {"no_call": len(arenas)}
    for arena, rollout in zip(arenas, rollouts, strict=True):
        episode, turns = rollout.episode, arena.metadata["turns"]
        where = arena.metadata["entry_id"]
        assert episode.reward.value == 1.0, (where, episode.reward.parts)
        gold = ground_truth(arena)
        assert [getattr(c, "turn", None) for c in episode.calls] == [
            k for k, calls in enumerate(gold) for _ in calls
        ], where
        users = [m["content"] for m in episode.messages if m["role"] == "user"]
        assert len(users) == len(turns), where
        added = {int(k): v for k, v in (arena.metadata.get("added_functions") or {}).items()}
        for k, (shown, message) in enumerate(zip(users, turns, strict=True)):
            if k in added:  # the functions it offers from now on, then the turn's message
                schemas, rest = shown.split("\n", 1)
                assert [tool_name(t) for t in json.loads(schemas)] == added[k] and rest == message
            else:
                assert shown == message
        # the user turns are context, never trained on; every assistant turn is
        trained = engine.chat.tokenizer.decode(
            [t for t, m in zip(rollout.ids, rollout.mask, strict=True) if m]
        )
        assert "<|im_start|>user" not in trained
        assert trained.count("<|im_end|>") == episode.turns == len(turns) + sum(map(bool, gold))
    # the prompt offered only the tools of the first turn
    miss_func = next(a for a in arenas if a.metadata.get("added_functions"))
    held_out = next(iter(miss_func.metadata["added_functions"].values()))[0]
    prompt = engine.chat.tokenizer.decode(rollouts[arenas.index(miss_func)].ids)
    assert prompt.index(f'"{held_out}"') > prompt.index("<|im_start|>user")


def test_an_arena_no_plugin_can_play_is_an_error_naming_it(arenas):
    plugins = load_plugins(disable=["arenas", "bfcl"])
    make = runtime_factory(sandbox=None, hook=plugins.hook)
    with pytest.raises(AstraError, match=f"arena {arenas[0].id} .*'bfcl-eval'"):
        make(arenas[0])
    bfcl_only = runtime_factory(sandbox=None, hook=load_plugins(disable=["arenas"]).hook)
    assert type(bfcl_only(arenas[0])).__name__ == "BfclRuntime"


def test_eval_stage_plays_bfcl_arenas_with_their_runtime_and_verifier(tmp_path, model_dir):
    """From a run config, as a user would: the eval stage finds the bfcl runtime through the
    plugins, so the prompt of a miss_func arena offers only its first turn's tools."""
    config = parse_config(
        {
            "run": {"name": "bfcl-eval"},
            "synth-arenas": {
                "holdout_fraction": 1.0,  # every arena: there is no training here
                "generator": {"name": "bfcl-multi-turn", "limit": 1, "categories": ["miss_func"]},
            },
            "eval": {
                "evaluator": {
                    "name": "arena-eval",
                    "models": [str(model_dir)],
                    "sandbox": "subprocess",
                    "rollout": {"max_new_tokens": 8, "max_turns": 2, "max_length": 16384},
                }
            },
        }
    )
    out = tmp_path / "out"
    report = astra_core.run(config, out, quiet=True)
    assert report.stage("eval").status == "complete"
    assert json.loads((out / "eval" / "eval.json").read_text())["arenas"] == 1
    (arena,) = RecordStore(out / "synth-arenas", Arena).iter_records()
    (episodes,) = (out / "eval").glob("episodes-*.jsonl")
    (row,) = [json.loads(line) for line in episodes.read_text().splitlines()]
    _, tokenizer = load_model_and_tokenizer(str(model_dir))
    assert 1 in row["loss_mask"]  # the prompt fit and the model generated
    prompt = tokenizer.decode(row["token_ids"][: row["loss_mask"].index(1)])
    held_out = next(iter(arena.metadata["added_functions"].values()))
    offered = [tool_name(t) for t in arena.tools if tool_name(t) not in held_out]
    assert all(f'"{name}"' in prompt for name in offered)
    assert not any(f'"{name}"' in prompt for name in held_out)
