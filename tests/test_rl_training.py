"""The RL trainer and the arena evaluator on real arenas, a real sandbox and a tiny model."""

from __future__ import annotations

import json
import math
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import attrs
import pytest
import tomllib
import torch
from astra_arenas.demonstrations import dependency_levels
from astra_training.accelerate_setup import make_accelerator
from astra_training.checkpoints import CheckpointManager
from astra_training.generation import Sampling
from astra_training.lora import LoraOptions, with_lora
from astra_training.models import load_model_and_tokenizer
from astra_training.rl_options import RLOptions, RolloutOptions
from astra_training.rl_trainer import RLTrainer, _episode_metrics, make_engine
from astra_training.tiny_model import build_tiny_model

from astra_core import hookimpl
from astra_core.config import parse_config
from astra_core.errors import AstraError, ConfigError
from astra_core.options import ComponentSpec
from astra_core.pipeline import prepare, run_stage
from astra_core.plugins import load_plugins
from astra_core.records import Arena, Reward
from astra_core.registry import ComponentBuilder, Registrar
from astra_core.store import RecordStore

SANDBOX = "bubblewrap" if shutil.which("bwrap") else "subprocess"


def plugin_builder() -> ComponentBuilder:
    """A builder over the installed plugins, with their hooks (arena runtimes, verifiers...)."""
    plugins = prepare(parse_config({}))[1]
    return ComponentBuilder(plugins.registry, hook=plugins.hook)


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    return make_rl_run(tmp_path_factory.mktemp("rl-run"))


def make_rl_run(out: Path, count: int = 24) -> Path:
    """``count`` arenas from the offline world and an untrained tiny model saved as train-sft's
    output."""
    config = parse_config(
        {
            "run": {"seed": 3},
            "synth-arenas": {
                "generator": {
                    "name": "offline-world",
                    "count": count,
                    "sandbox": SANDBOX,
                    "distractors_per_band": 1,
                }
            },
        }
    )
    config, plugins = prepare(config)
    run_stage("synth-arenas", config, plugins, out, quiet=True)
    arenas = list(RecordStore(out / "synth-arenas", Arena).iter_records())
    texts = [a.question + " " + json.dumps(a.tools) for a in arenas] * 3
    from astra_training.sft_options import TinyModelOptions

    build_tiny_model(
        texts,
        out / "train-sft" / "model",
        TinyModelOptions(
            vocab_size=600,
            hidden_size=64,
            num_layers=2,
            num_heads=2,
            num_kv_heads=1,
            intermediate_size=128,
        ),
        seed=0,
    )
    return out


class GoldPolicy:
    """Stands in for the model in the rollout engine: emits each arena's verified calls, one
    dependency level per turn, then a final answer, as token ids of the real tokenizer. It lets
    the test drive the engine through real multi-turn tool use (parse, sandbox, mask)."""

    def __init__(self, arenas, chat, parser):
        self.by_question = {a.question: a for a in arenas}
        self.chat, self.parser = chat, parser

    def generate(self, prompts, budgets, sampling):
        out = []
        for ids in prompts:
            text = self.chat.tokenizer.decode(ids)
            arena = next(a for q, a in self.by_question.items() if q in text)
            turn = text.count("<tool_response>") and text.count("<|im_start|>user") - 1
            levels = dependency_levels(arena)
            by_id = {sq.id: sq for sq in arena.subquestions}
            if turn < len(levels):
                body = self.parser.format([by_id[s].call for s in levels[turn]])
            else:
                body = f"The answer is {arena.answer}."
            out.append([*self.chat.encode(body), self.chat.end_of_turn_id])
        return out


def engine_for(run_dir, generator_factory=None):
    plugins = prepare(parse_config({}))[1]
    builder = ComponentBuilder(plugins.registry, hook=plugins.hook)
    model, tokenizer = load_model_and_tokenizer(str(run_dir / "train-sft" / "model"))
    parser = builder.build("tool_call_parser", "hermes")
    verifier = builder.build("verifier", "subtask-f1")
    sandbox = builder.build("sandbox", SANDBOX)
    engine = make_engine(
        model,
        tokenizer,
        RolloutOptions(max_turns=6, max_new_tokens=48),
        parser=parser,
        verifier=verifier,
        sandbox=sandbox,
        hook=plugins.hook,
    )
    return engine, parser


def test_gold_policy_rollouts_are_multi_turn_masked_and_score_one(run_dir):
    arenas = list(RecordStore(run_dir / "synth-arenas", Arena).iter_records())[:6]
    engine, parser = engine_for(run_dir)
    engine.generator = GoldPolicy(arenas, engine.chat, parser)
    rollouts, stats = engine.run(arenas, Sampling(do_sample=False))
    assert stats.episodes == 6
    for arena, r in zip(arenas, rollouts, strict=True):
        assert len(r.ids) == len(r.mask) and sum(r.mask[: r.prompt_len]) == 0
        assert r.episode.reward.value == pytest.approx(1.0), (arena.topology, r.episode.calls)
        assert r.episode.stop_reason == "no_call"
        assert r.episode.turns == len(dependency_levels(arena)) + 1
        # sampled spans end with the end-of-turn token; tool responses are never trained on
        text_masked = engine.chat.tokenizer.decode(
            [t for t, m in zip(r.ids, r.mask, strict=True) if m == 0]
        )
        text_trained = engine.chat.tokenizer.decode(
            [t for t, m in zip(r.ids, r.mask, strict=True) if m == 1]
        )
        assert "<tool_response>" in text_masked and "<tool_response>" not in text_trained
        assert text_trained.count("<|im_end|>") == r.episode.turns
        assert all(not c.error for c in r.episode.calls)
    # every gold argument is copied from the question or an earlier tool output
    assert _episode_metrics(rollouts)["copied_args"] == 1.0
    assert _episode_metrics(rollouts)["failed_calls_per_episode"] == 0.0


def test_malformed_and_unknown_calls_become_error_observations(run_dir):
    arenas = list(RecordStore(run_dir / "synth-arenas", Arena).iter_records())[:1]
    engine, parser = engine_for(run_dir)
    gold = arenas[0].needed[0].call
    assert gold is not None
    miscopied = attrs.evolve(gold, arguments=dict.fromkeys(gold.arguments, "Zzqx Nowhere"))

    class Bad:
        turns = 0

        def generate(self, prompts, budgets, sampling):
            Bad.turns += 1
            text = [
                '<tool_call>{"name": "nope", "arguments": {}}</tool_call>',
                "<tool_call>{not json</tool_call>",
                parser.format([miscopied]),
                "done",
            ][min(Bad.turns - 1, 3)]
            return [[*engine.chat.encode(text), engine.chat.end_of_turn_id] for _ in prompts]

    engine.generator = Bad()
    (r,), _ = engine.run(arenas, Sampling(do_sample=False))
    assert [c.error for c in r.episode.calls] == [True, True, False]
    assert "unknown tool" in r.episode.calls[0].output
    # the tool ran and answered that no such name exists: a failed call all the same
    assert json.loads(r.episode.calls[2].output).get("error")
    assert r.episode.reward.calls == 3 and r.episode.reward.value == 0.0
    assert r.episode.reward.parts["error_calls"] == 3
    assert _episode_metrics([r])["failed_calls_per_episode"] == 3.0


RL_CONFIG = """
[run]
seed = 5
[train-rl.trainer]
name = "rl"
sandbox = "{sandbox}"
steps = {steps}
groups_per_step = 2
group_size = 3
max_fill_rounds = 1
lr = 1e-3
temperature = 1.0
checkpoint_every = 1
[train-rl.trainer.rollout]
max_turns = 2
max_new_tokens = 24
"""


def _metrics(path: Path) -> list[dict]:
    rows = [json.loads(x) for x in path.read_text().splitlines() if x.strip()]
    drop = ("rollout_s", "train_s", "tokens_per_s")
    return [{k: v for k, v in r.items() if k not in drop} for r in rows]


@pytest.mark.slow
@pytest.mark.parametrize("lora", [False, True], ids=["full", "lora"])
def test_sigkill_then_resume_reproduces_the_unbroken_run(run_dir, tmp_path, lora):
    steps = 4
    cfg = tmp_path / "rl.toml"
    config = RL_CONFIG.format(sandbox=SANDBOX, steps=steps)
    if lora:  # a checkpoint holds the adapters only; the base is the SFT model again
        config += "[train-rl.trainer.lora]\nr = 4\n"
    cfg.write_text(config)

    def fresh(name: str) -> Path:
        out = tmp_path / name
        shutil.copytree(run_dir / "synth-arenas", out / "synth-arenas")
        shutil.copytree(run_dir / "train-sft", out / "train-sft")
        return out

    cmd = [
        sys.executable,
        "-m",
        "astra_core.cli",
        "-q",
        "run",
        str(cfg),
        "--stages",
        "train-rl",
        "--out",
    ]
    whole = fresh("whole")
    done = subprocess.run([*cmd, str(whole)], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]

    broken = fresh("broken")
    proc = subprocess.Popen(
        [*cmd, str(broken)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    ckpt = broken / "train-rl" / "checkpoints" / "step-000002"
    deadline = time.monotonic() + 300
    while not ckpt.exists() and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert ckpt.exists()
    resumed = subprocess.run([*cmd, str(broken)], capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    a, b = (
        _metrics(whole / "train-rl" / "metrics.jsonl"),
        _metrics(broken / "train-rl" / "metrics.jsonl"),
    )
    assert [r["step"] for r in b] == list(range(1, steps + 1))
    assert a == b
    wa = load_model_and_tokenizer(str(whole / "train-rl" / "model"))[0].state_dict()
    wb = load_model_and_tokenizer(str(broken / "train-rl" / "model"))[0].state_dict()
    assert all(torch.equal(wa[k], wb[k]) for k in wa)


class CoinVerifier:
    """Rewards drawn at random (seeded): the untrained test model never earns a real one, and
    an update needs rewards that differ within a group. The test is about what LoRA trains."""

    def __init__(self) -> None:
        self.rng = random.Random(0)

    def score(self, arena: Arena, episode: object) -> Reward:
        return Reward(value=float(self.rng.random() < 0.5))


class CoinPlugin:
    @hookimpl
    def astra_register_verifiers(self, registry: Registrar) -> None:
        registry.add("coin", lambda options, builder: CoinVerifier())


def coin_run(run_dir: Path, out: Path) -> dict:
    """RL_CONFIG for two steps with the coin verifier, in a copy of the run's arenas and model."""
    shutil.copytree(run_dir / "synth-arenas", out / "synth-arenas")
    shutil.copytree(run_dir / "train-sft", out / "train-sft")
    config = tomllib.loads(RL_CONFIG.format(sandbox=SANDBOX, steps=2))
    config["train-rl"]["trainer"]["verifier"] = "coin"
    return config


def test_lora_trains_only_adapters_and_saves_a_merged_model(run_dir, tmp_path):
    out = tmp_path / "out"
    config = coin_run(run_dir, out)
    config["train-rl"]["trainer"]["lora"] = {"r": 4, "target_modules": ["q_proj", "v_proj"]}
    plugins = load_plugins(objects=[("coin", CoinPlugin())])
    config, plugins = prepare(parse_config(config), plugins=plugins)
    summary = run_stage("train-rl", config, plugins, out, quiet=True)
    assert summary.metrics["trained_sequences"] > 0
    assert 0 < summary.metrics["trainable_parameters"] < summary.metrics["parameters"] / 5
    base = load_model_and_tokenizer(str(out / "train-sft" / "model"))[0].state_dict()
    tuned = load_model_and_tokenizer(str(out / "train-rl" / "model"))[0].state_dict()
    assert tuned.keys() == base.keys()  # a plain model: the adapters are merged in
    changed = {k for k in base if not torch.equal(base[k], tuned[k])}
    assert changed and all(k.endswith(("q_proj.weight", "v_proj.weight")) for k in changed)


def test_a_bfloat16_policy_rolls_out_trains_and_is_evaluated(run_dir, tmp_path):
    """The GPU dtype, on the CPU: rollouts, the update and eval in bfloat16 (LoRA on too)."""
    out = tmp_path / "out"
    config = coin_run(run_dir, out)
    trainer = config["train-rl"]["trainer"]
    trainer["rollout"]["dtype"] = "bfloat16"
    trainer["rollout"]["generation_backend"] = "interleaved"
    trainer["lora"] = {"r": 4}
    config["eval"] = {
        "evaluator": {
            "name": "arena-eval",
            "models": ["train-rl"],
            "sandbox": SANDBOX,
            "limit": 4,
            "rollout": {"dtype": "bfloat16", "max_new_tokens": 24, "max_turns": 2},
        }
    }
    plugins = load_plugins(objects=[("coin", CoinPlugin())])
    config, plugins = prepare(parse_config(config), plugins=plugins)
    rl = run_stage("train-rl", config, plugins, out, quiet=True).metrics
    assert rl["trained_sequences"] > 0 and math.isfinite(rl["loss"]) and rl["grad_norm"] > 0
    model, _ = load_model_and_tokenizer(str(out / "train-rl" / "model"), dtype="auto")
    assert next(model.parameters()).dtype == torch.bfloat16
    ev = run_stage("eval", config, plugins, out, quiet=True).metrics
    assert ev["train-rl/episodes"] == 4 and 0.0 <= ev["train-rl/reward"] <= 1.0


def test_a_checkpoint_of_adapters_restores_them_exactly(run_dir, tmp_path):
    def adapted() -> tuple[torch.nn.Module, object, CheckpointManager]:
        model, tokenizer = load_model_and_tokenizer(str(run_dir / "train-sft" / "model"))
        model = with_lora(model, LoraOptions(r=4))
        params = [p for p in model.parameters() if p.requires_grad]
        optimizer = torch.optim.AdamW(params, lr=1e-3)
        accelerator = make_accelerator()
        model, optimizer = accelerator.prepare(model, optimizer)
        accelerator.register_for_checkpointing(
            torch.optim.lr_scheduler.LambdaLR(optimizer, lambda _: 1)
        )
        ckpts = CheckpointManager(tmp_path, accelerator, keep_full_state=1, keep_weights=1)
        return model, tokenizer, ckpts

    model, tokenizer, ckpts = adapted()
    with torch.no_grad():  # as after training: adapters away from their zero start
        for name, p in model.named_parameters():
            if "lora_" in name:
                p.copy_(torch.randn_like(p))
    saved = ckpts.save(3, model, tokenizer, {})
    assert not list((saved / "model").glob("model*.safetensors"))  # adapters only
    fresh, _, ckpts2 = adapted()
    assert ckpts2.load(saved)["step"] == 3
    want, got = model.state_dict(), fresh.state_dict()
    assert want.keys() == got.keys() and all(torch.equal(want[k], got[k]) for k in want)


@pytest.mark.parametrize(
    ("table", "message"),
    [
        # the filler refused it only when train-rl started, after SFT had run
        ({"filter_std_delta": -0.5}, r"filter_std_delta must be >= 0, got -0\.5"),
        # one episode a group has no group to compare with: every group was filtered, silently
        ({"group_size": 1}, "group_size must be >= 2, got 1"),
        ({"rollout": {"max_new_tokens": 0}}, "max_new_tokens must be >= 1, got 0"),
        ({"temperature": 0.0}, r"temperature must be > 0, got 0\.0"),
    ],
)
def test_bad_rl_options_are_refused_when_the_config_is_read(table, message):
    config = parse_config({"train-rl": {"trainer": {"name": "rl", **table}}})
    with pytest.raises(ConfigError, match=message):
        prepare(config)


@pytest.mark.parametrize("turn_credit", [0.0, 1.0])
def test_update_moves_the_policy_towards_rewarded_episodes(run_dir, turn_credit):
    """One GRPO update on gold rollouts (reward 1) against corrupted ones (reward 0) raises the
    log-probability of the gold tokens (with turn-level credit too)."""
    arenas = list(RecordStore(run_dir / "synth-arenas", Arena).iter_records())[:2]
    engine, parser = engine_for(run_dir)
    engine.generator = GoldPolicy(arenas, engine.chat, parser)
    gold, _ = engine.run([a for a in arenas for _ in range(2)], Sampling(do_sample=False))

    from astra_training.rl_trainer import pad_batch, token_logprobs

    builder = plugin_builder()
    trainer = RLTrainer(RLOptions(lr=5e-3, max_grad_norm=0.0, turn_credit=turn_credit), builder)
    model, tokenizer = load_model_and_tokenizer(str(run_dir / "train-sft" / "model"))
    optimizer = torch.optim.AdamW(model.parameters(), lr=5e-3)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda _: 1.0)
    from accelerate import Accelerator

    acc = Accelerator(cpu=True)
    model, optimizer = acc.prepare(model, optimizer)

    class Shrug:
        def generate(self, prompts, budgets, sampling):
            return [
                [*engine.chat.encode("I do not know."), engine.chat.end_of_turn_id] for _ in prompts
            ]

    engine.generator = Shrug()
    zero, _ = engine.run([a for a in arenas for _ in range(2)], Sampling(do_sample=False))
    assert all(r.reward == 0.0 for r in zero)
    assert all(r.reward == pytest.approx(1.0) for r in gold), [r.reward for r in gold]
    batch = [[gold[0], zero[1]], [gold[2], zero[3]]]
    ids, att, mask = pad_batch([gold[0], gold[2]], int(tokenizer.pad_token_id))
    before = (token_logprobs(model, ids, att, 1.0) * mask).sum().item()
    metrics = trainer._update(model, optimizer, scheduler, acc, batch, tokenizer)
    after = (token_logprobs(model, ids, att, 1.0) * mask).sum().item()
    assert metrics["grad_norm"] > 0 and after > before


def test_renamed_arenas_are_rolled_out_over_fresh_names_and_still_verify(run_dir):
    """rename_arenas: the picked arenas reach the engine renamed (new question, new id), and
    their renamed verified calls, run against the renamed tool code, still score 1."""
    from astra_training.batch_filling import AdaptiveBatchFiller

    arenas = list(RecordStore(run_dir / "synth-arenas", Arena).iter_records())[:4]
    engine, parser = engine_for(run_dir)
    gold = GoldPolicy([], engine.chat, parser)
    engine.generator = gold
    seen: list[Arena] = []
    real_run = engine.run

    def run_renamed(picked, sampling):
        seen.extend(picked)
        gold.by_question.update({a.question: a for a in picked})  # the gold policy's answers
        return real_run(picked, sampling)

    engine.run = run_renamed
    builder = plugin_builder()
    options = RLOptions(rename_arenas=True, groups_per_step=2, group_size=2, max_fill_rounds=1)
    trainer = RLTrainer(options, builder)
    _, fill = trainer._fill(
        engine, arenas, AdaptiveBatchFiller(), random.Random(0), Sampling(do_sample=False)
    )
    originals = {a.id: a for a in arenas}
    assert seen and all(a.metadata["renamed_from"] in originals for a in seen)
    for a in seen:
        before = originals[a.metadata["renamed_from"]]
        assert a.id != before.id and a.question != before.question
        assert not set(before.metadata["names"]) & set(a.metadata["names"])
    rewards = [r.episode.reward.value for g in fill["all_groups"] for r in g]
    assert rewards and all(x == pytest.approx(1.0) for x in rewards)


def test_rename_arenas_refuses_arenas_without_names_before_any_rollout(run_dir, tmp_path):
    out = tmp_path / "run"
    shutil.copytree(run_dir / "train-sft", out / "train-sft")
    arenas = list(RecordStore(run_dir / "synth-arenas", Arena).iter_records())
    store = RecordStore(out / "synth-arenas", Arena).open()
    for arena in arenas:  # as another generator's arenas: no names recorded
        store.write(attrs.evolve(arena, metadata={}))
    store.close()
    data = tomllib.loads(RL_CONFIG.format(sandbox=SANDBOX, steps=1))
    data["train-rl"]["trainer"]["rename_arenas"] = True
    config, plugins = prepare(parse_config(data))
    with pytest.raises(AstraError, match=r"record no entity names to rename \(e\.g\. \w+"):
        run_stage("train-rl", config, plugins, out, quiet=True)
    assert not (out / "train-rl" / "metrics.jsonl").exists()


class MiscopyingPolicy(GoldPolicy):
    """The gold policy, but its last turn of calls names an entity that does not exist."""

    def generate(self, prompts, budgets, sampling):
        out = []
        for ids, gold in zip(prompts, super().generate(prompts, budgets, sampling), strict=True):
            text = self.chat.tokenizer.decode(ids)
            arena = next(a for q, a in self.by_question.items() if q in text)
            levels = dependency_levels(arena)
            if (
                text.count("<tool_response>")
                and text.count("<|im_start|>user") - 1 == len(levels) - 1
            ):
                calls = [
                    attrs.evolve(sq.call, arguments=dict.fromkeys(sq.call.arguments, "Nobody"))
                    for sq in arena.subquestions
                    if sq.id in levels[-1]
                ]
                gold = [*self.chat.encode(self.parser.format(calls)), self.chat.end_of_turn_id]
            out.append(gold)
        return out


def test_turn_credit_puts_each_turns_own_advantage_on_its_tokens(run_dir):
    """turn_credit: the tokens of a turn whose calls solved sub-questions get more than the
    episode's advantage, those of a turn whose calls failed get less, the final answer gets
    the episode's advantage alone."""
    from astra_training.turn_credit import padded_advantages, token_advantages, turn_spans

    arenas = list(RecordStore(run_dir / "synth-arenas", Arena).iter_records())
    arena = next(a for a in arenas if len(dependency_levels(a)) >= 2)
    engine, parser = engine_for(run_dir)
    engine.generator = GoldPolicy([arena], engine.chat, parser)
    (gold,), _ = engine.run([arena], Sampling(do_sample=False))
    engine.generator = MiscopyingPolicy([arena], engine.chat, parser)
    (bad,), _ = engine.run([arena], Sampling(do_sample=False))
    assert gold.call_credit and all(c == 1.0 for c in gold.call_credit)
    assert bad.call_credit[-1] == 0.0 and bad.reward < gold.reward
    spans = turn_spans(gold)
    assert len(spans) == gold.episode.turns and spans[-1][2] == 0  # the answer: no calls
    assert sum(n for _, _, n in spans) == len(gold.episode.calls)
    assert [gold.ids[s:e] for s, e, _ in spans] == [
        tuple(t for t, m in zip(gold.ids[s:e], gold.mask[s:e], strict=True) if m)
        for s, e, _ in spans
    ]

    episode_adv = torch.tensor([1.0, -1.0])
    (g_adv, b_adv) = token_advantages([[gold, bad]], episode_adv, 0.5)
    first_g, answer_g = turn_spans(gold)[0], turn_spans(gold)[-1]
    first_b, miscopied_b = turn_spans(bad)[0], turn_spans(bad)[-2]
    assert (g_adv[first_g[0] : first_g[1]] > 1.0).all()
    assert (g_adv[answer_g[0] : answer_g[1]] == 1.0).all()
    # the worse episode's good first turn is pushed down less than its miscopied turn
    assert (b_adv[first_b[0] : first_b[1]] > -1.0).all()
    assert (b_adv[miscopied_b[0] : miscopied_b[1]] < -1.0).all()
    # coefficient 0, or a group whose turns all did alike: the episode's advantage everywhere
    (g0, b0) = token_advantages([[gold, bad]], episode_adv, 0.0)
    assert (g0 == 1.0).all() and (b0 == -1.0).all()
    (g1, g2) = token_advantages([[gold, gold]], episode_adv, 0.5)
    assert (g1 == 1.0).all() and (g2 == -1.0).all()
    # shifted and padded as the log-probs are
    padded = padded_advantages([g_adv, b_adv], max(len(gold.ids), len(bad.ids)) + 3)
    assert padded.shape == (2, max(len(gold.ids), len(bad.ids)) + 2)
    assert torch.equal(padded[0, : len(gold.ids) - 1], g_adv[1:])

    # the carry-over buffer's checkpoint keeps the credit
    from astra_training.rl_trainer import _buffer_decoder, _decode, _encode

    assert _decode(json.loads(json.dumps(_encode(bad)))) == bad
    # a checkpoint of a version that kept no credit resumes without turn credit, not with it
    old = {k: v for k, v in _encode(bad).items() if k != "call_credit"}
    ckpt = Path("runs/x/train-rl/checkpoints/step-000004")
    assert _buffer_decoder(ckpt, 0.0)(old).call_credit == ()
    with pytest.raises(ConfigError, match="step-000004 holds buffered episodes without call"):
        _buffer_decoder(ckpt, 1.0)(old)

    with pytest.raises(ValueError, match=f"arena {gold.episode.arena_id}: .* call credits"):
        turn_spans(attrs.evolve(gold, call_credit=gold.call_credit[:-1]))


def test_turn_credit_needs_a_verifier_with_call_credit_and_token_advantages():
    builder = plugin_builder()
    Registrar(builder.registry, "verifier", "my-plugin", None).add(
        "episode-only", lambda options, builder: EpisodeOnly()
    )
    with pytest.raises(
        ConfigError, match=r"turn_credit = 0.5 needs .* 'episode-only' \(plugin my-plugin\)"
    ):
        RLTrainer(RLOptions(turn_credit=0.5, verifier=ComponentSpec("episode-only")), builder)
    with pytest.raises(ConfigError, match=r"rl_algorithm 'gspo' \(plugin [\w-]+\) takes one per"):
        RLTrainer(RLOptions(turn_credit=0.5, algorithm=ComponentSpec("gspo")), builder)
    assert RLTrainer(RLOptions(turn_credit=0.5, algorithm=ComponentSpec("dapo")), builder)


class EpisodeOnly:
    def score(self, arena, episode):
        return Reward(value=0.0, recall=0.0, precision=0.0)
