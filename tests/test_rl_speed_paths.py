"""The RL trainer's fast paths give what the plain ones give: shared-prompt log-probs in the
update, sandbox sessions started in the background, key/value caches kept between turns,
episodes whose turns interleave in one decode loop."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import pytest
import torch
from astra_rl_algorithms.algorithms import GRPO
from astra_rl_algorithms.options import GRPOOptions
from astra_training import rl_trainer as trainer_module
from astra_training.chat_tokens import ChatTokens
from astra_training.forward_pass import ForwardArgs
from astra_training.generation import CachedPaddedGenerate, PaddedGenerate, Sampling
from astra_training.interleaved import InterleavedGenerate, sampling_scores
from astra_training.logprobs import completion_logprobs
from astra_training.lora import LoraOptions, with_lora
from astra_training.models import load_model_and_tokenizer
from astra_training.rl_options import RLOptions, RolloutOptions
from astra_training.rl_trainer import RLTrainer, make_engine, pad_batch, token_logprobs
from astra_training.rollout import Rollout, RolloutEngine
from astra_training.sft_options import TinyModelOptions
from astra_training.tiny_model import build_tiny_model

from astra_core.config import parse_config
from astra_core.errors import ConfigError
from astra_core.pipeline import prepare
from astra_core.plugins import load_plugins
from astra_core.protocols import ParsedTurn
from astra_core.records import Arena, Episode, Reward, ToolCallResult
from astra_core.registry import ComponentBuilder

TOOLS = (
    {
        "type": "function",
        "function": {
            "name": "lookup",
            "description": "Look a city up.",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
        },
    },
)
QUESTIONS = ("What is the population of Lyon?", "Which river runs through Cairo and Khartoum?")


def plugin_builder() -> ComponentBuilder:
    """A builder over the installed plugins, with their hooks (arena runtimes, verifiers...)."""
    plugins = prepare(parse_config({}))[1]
    return ComponentBuilder(plugins.registry, hook=plugins.hook)


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """A tiny model gains nothing from more threads, and on a loaded machine OpenMP's
    barriers made these tests ten times slower."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> Path:
    """A tiny Qwen3 model with a tokenizer of a few chat-like texts, its random weights made
    larger so that greedy decoding does not repeat one token (as an untrained model does)."""
    out = tmp_path_factory.mktemp("tiny") / "model"
    texts = [
        f"{q} lookup city population river answer tool_call {i}"
        for i in range(30)
        for q in QUESTIONS
    ]
    options = TinyModelOptions(
        vocab_size=400,
        hidden_size=64,
        num_layers=2,
        num_heads=2,
        num_kv_heads=1,
        intermediate_size=128,
    )
    build_tiny_model(texts, out, options, seed=0)
    model, _ = load_model_and_tokenizer(str(out))
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for p in model.parameters():
            if p.dim() > 1:
                p.add_(torch.randn(p.shape, generator=generator) * 0.3)
    model.save_pretrained(out)
    return out


def _arena(question: str) -> Arena:
    return Arena(
        question=question,
        answer="x",
        topology="single",
        subquestions=(),
        tools=TOOLS,
        tool_code={},
    )


def _rollouts(chat: ChatTokens, seed: int, *, identical: bool = False) -> list[list[Rollout]]:
    """Two groups of three rollouts: each group shares its prompt, then turns of sampled ids
    (mask 1) and tool responses (mask 0) of different lengths."""
    rng = torch.Generator().manual_seed(seed)
    vocab = len(chat.tokenizer)
    groups = []
    for question in QUESTIONS:
        messages = [{"role": "user", "content": question}]
        prompt = chat.prompt_ids(messages, list(TOOLS))
        group = []
        for row in range(3):
            ids, mask = list(prompt), [0] * len(prompt)
            for turn in range(2 + (0 if identical else row % 2)):
                n = 5 if identical else int(torch.randint(3, 12, (1,), generator=rng))
                ids += torch.randint(5, vocab, (n,), generator=rng).tolist()
                mask += [1] * n
                if turn < 1:
                    ids += torch.randint(5, vocab, (4,), generator=rng).tolist()
                    mask += [0] * 4
            episode = Episode(
                arena_id=question,
                messages=tuple(messages),
                token_ids=tuple(ids),
                loss_mask=tuple(mask),
                reward=Reward(float(row == 0)),
            )
            group.append(Rollout(episode, tuple(ids), tuple(mask), len(prompt)))
        # identical rows: the shared prefix then covers trained tokens too
        groups.append([group[0]] * 3 if identical else group)
    return groups


def _forward_inputs(model: Any) -> tuple[list[tuple[int, ...]], Any]:
    shapes: list[tuple[int, ...]] = []

    def hook(_module: Any, _args: Any, kwargs: dict[str, Any]) -> None:
        shapes.append(tuple(kwargs["input_ids"].shape))

    return shapes, model.register_forward_pre_hook(hook, with_kwargs=True)


@pytest.mark.parametrize(
    ("temperature", "identical", "lora"),
    [(1.0, False, False), (0.7, False, False), (1.0, True, False), (0.7, True, False),
     (0.7, False, True)],
)  # fmt: skip
def test_completion_logprobs_equal_the_full_pass_at_trained_tokens(
    model_dir, temperature, identical, lora
):
    model, tokenizer = load_model_and_tokenizer(str(model_dir))
    if lora:  # adapters away from their zero start, so they change the logits
        model = with_lora(model, LoraOptions(r=4))
        with torch.no_grad():
            for name, p in model.named_parameters():
                if "lora_B" in name:
                    p.copy_(torch.randn_like(p) * 0.1)
    model.train()
    chat = ChatTokens(tokenizer)
    rollouts = [r for g in _rollouts(chat, 1, identical=identical) for r in g]
    ids, attention, mask = pad_batch(rollouts, int(tokenizer.pad_token_id))
    labels = [0, 0, 0, 1, 1, 1]

    full = token_logprobs(model, ids, attention, temperature) * mask
    full.sum().backward()
    want = {n: p.grad.clone() for n, p in model.named_parameters() if p.requires_grad}
    model.zero_grad()
    shapes, handle = _forward_inputs(model)
    fast = completion_logprobs(model, ids, attention, mask, temperature, prompt_groups=labels)
    handle.remove()
    (fast * mask).sum().backward()
    # each group's shared prefix ran once (a batch of one row), then its rows' own tokens (none
    # left when the rows are identical)
    assert [s[0] for s in shapes] == ([1, 1] if identical else [1, 3, 1, 3]), shapes
    assert fast.shape == full.shape and fast.dtype == torch.float32
    fast = fast.detach()
    assert float((fast * mask - full.detach()).abs().max()) < 1e-4
    # nothing computed where no row of the group trains: the prompt predicts nothing trained
    for row, r in enumerate(rollouts):
        assert not fast[row, : r.prompt_len - 1].any()
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        scale = float(want[name].abs().max()) + 1e-6
        assert float((p.grad - want[name]).abs().max()) / scale < 1e-3, name

    # the fallback: no logits_to_keep, no shared cache (one plain pass per group)
    plain = completion_logprobs(
        model, ids, attention, mask, temperature, prompt_groups=labels, args=ForwardArgs()
    )
    assert float((plain * mask - full).detach().abs().max()) < 1e-4


def _reference_logprobs(model, ids, attention, mask, temperature, **_: Any) -> torch.Tensor:
    return token_logprobs(model, ids, attention, temperature)


@pytest.mark.parametrize("micro_batch_size", [0, 4])
@pytest.mark.parametrize("kl_coef", [0.0, 0.1])
def test_update_equals_the_update_with_full_log_softmax(
    model_dir, monkeypatch, micro_batch_size, kl_coef
):
    """Same loss, metrics and new weights as the update that ran the whole sequences and took
    a log-softmax everywhere; micro-batches of 4 split a group of 3."""
    from accelerate import Accelerator

    builder = plugin_builder()

    def update(fast: bool) -> tuple[dict[str, float], dict[str, torch.Tensor]]:
        trainer = RLTrainer(
            RLOptions(micro_batch_size=micro_batch_size, ppo_epochs=2, max_grad_norm=1.0),
            builder,
        )
        trainer.algorithm = GRPO(GRPOOptions(kl_coef=kl_coef))
        trainer._model_path = str(model_dir)
        model, tokenizer = load_model_and_tokenizer(str(model_dir))
        # SGD: the new weights move by the gradient itself (Adam's first step is its sign)
        optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda _: 1.0)
        acc = Accelerator(cpu=True)
        model, optimizer = acc.prepare(model, optimizer)
        batch = _rollouts(ChatTokens(tokenizer), 2)
        with monkeypatch.context() as patch:
            if not fast:
                patch.setattr(trainer_module, "completion_logprobs", _reference_logprobs)
            metrics = trainer._update(model, optimizer, scheduler, acc, batch, tokenizer)
        # the schedule steps once per RL step, not once per ppo_epochs update
        assert scheduler.last_epoch == 1
        return metrics, {k: v.detach().clone() for k, v in model.state_dict().items()}

    (want, want_w), (got, got_w) = update(False), update(True)
    assert want.keys() == got.keys()
    # a mean over both updates: 1 exactly on the first, near 1 on the second
    assert got["ratio_mean"] != 1.0 and abs(got["ratio_mean"] - 1.0) < 0.5, got["ratio_mean"]
    for key in want:
        assert got[key] == pytest.approx(want[key], rel=1e-4, abs=1e-6), key
    assert max(float((want_w[k] - got_w[k]).abs().max()) for k in want_w) < 1e-5


# -- the rollout engine ------------------------------------------------------------------------


class Runtime:
    """A fake arena runtime: a slow start, calls that answer an error observation."""

    def __init__(self, log: list[tuple[str, int, float]], index: int, fail: bool = False):
        self.log, self.index, self.fail = log, index, fail
        self.ready = False
        self.closed = 0

    def reset(self) -> None:
        time.sleep(0.2)
        self.log.append(("reset", self.index, time.perf_counter()))
        if self.fail:
            raise RuntimeError(f"session {self.index} did not start")
        self.ready = True

    def step(self, call: Any) -> ToolCallResult:
        assert self.ready, "step() before reset() finished"
        self.log.append(("step", self.index, time.perf_counter()))
        return ToolCallResult(str(call), {}, f"no such tool ({self.index})", True)

    def close(self) -> None:
        self.closed += 1


class ErrorsParser:
    """Every turn is a malformed call: episodes go on to the turn or length cap."""

    def parse(self, text: str) -> ParsedTurn:
        return ParsedTurn(text, (), ("malformed",))


class NoCalls:
    def parse(self, text: str) -> ParsedTurn:
        return ParsedTurn(text)


class ZeroVerifier:
    def score(self, arena: Arena, episode: Episode) -> Reward:
        return Reward(0.0, calls=len(episode.calls))


class Scripted:
    """Generates one stop token per turn, recording when it was called."""

    def __init__(self, stop: int, log: list[tuple[str, int, float]]) -> None:
        self.stop, self.log = stop, log

    def generate(self, prompts: Any, budgets: Any, sampling: Any) -> list[list[int]]:
        self.log.append(("generate", len(prompts), time.perf_counter()))
        return [[self.stop] for _ in prompts]


def _fake_engine(model_dir: Path, parser: Any, fail: int | None = None) -> tuple[Any, ...]:
    _, tokenizer = load_model_and_tokenizer(str(model_dir))
    chat = ChatTokens(tokenizer)
    log: list[tuple[str, int, float]] = []
    runtimes: list[Runtime] = []

    def factory(arena: Arena) -> Runtime:
        runtimes.append(Runtime(log, len(runtimes), fail == len(runtimes)))
        return runtimes[-1]

    engine = RolloutEngine(
        Scripted(chat.end_of_turn_id, log), chat, parser, ZeroVerifier(), factory, max_turns=2
    )
    return engine, log, runtimes


def _start_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("astra-episode-start")]


def test_sessions_start_in_the_background_and_steps_wait_for_them(model_dir):
    engine, log, runtimes = _fake_engine(model_dir, ErrorsParser())
    t0 = time.perf_counter()
    rollouts, stats = engine.run([_arena(q) for q in QUESTIONS for _ in range(3)], Sampling())
    assert stats.episodes == 6 and all(r.episode.stop_reason == "turn_cap" for r in rollouts)
    assert all(len(r.episode.calls) == 2 for r in rollouts)
    # six 0.2 s starts overlapped each other and the first generation
    first_generate = next(t for kind, _, t in log if kind == "generate")
    assert first_generate - t0 < 0.2
    assert time.perf_counter() - t0 < 6 * 0.2
    for runtime in runtimes:
        reset = next(t for kind, i, t in log if kind == "reset" and i == runtime.index)
        steps = [t for kind, i, t in log if kind == "step" and i == runtime.index]
        assert steps and min(steps) >= reset
        assert runtime.closed == 1
    assert not _start_threads()


@pytest.mark.parametrize("parser", [ErrorsParser(), NoCalls()], ids=["calls", "no-calls"])
def test_a_failed_start_raises_from_run_and_every_runtime_is_closed(model_dir, parser):
    engine, _, runtimes = _fake_engine(model_dir, parser, fail=4)
    with pytest.raises(RuntimeError, match="session 4 did not start"):
        engine.run([_arena(q) for q in QUESTIONS for _ in range(3)], Sampling())
    assert [r.closed for r in runtimes] == [1] * 6
    assert not _start_threads()


def _model_engine(
    model_dir: Path, reuse: bool, max_length: int, backend: str = "generate"
) -> RolloutEngine:
    model, tokenizer = load_model_and_tokenizer(str(model_dir))
    engine = make_engine(
        model,
        tokenizer,
        RolloutOptions(
            max_turns=4,
            max_new_tokens=10,
            max_length=max_length,
            reuse_kv_cache=reuse,
            generation_backend=backend,  # type: ignore[arg-type]
        ),
        parser=ErrorsParser(),
        verifier=ZeroVerifier(),
        sandbox=None,
        hook=load_plugins().hook,
    )
    # A random model ends no turn: a third of the vocabulary ends one, so turns differ in
    # length, and the malformed-call observations keep the episodes going.
    stop = [i for i in range(len(tokenizer)) if i % 3 == 0]
    engine.chat.stop_ids = stop
    engine.generator.stop_ids = stop
    log: list[tuple[str, int, float]] = []
    count = iter(range(1 << 30))
    # each episode's observations differ (they name its runtime): a group's episodes diverge
    engine.runtime_factory = lambda arena: Runtime(log, next(count))
    return engine


def _room_past_prompts(model_dir: Path, room: int) -> int:
    """A max_length ``room`` tokens past the longest prompt: 100 stops episodes at the length
    cap."""
    chat = ChatTokens(load_model_and_tokenizer(str(model_dir))[1])
    return room + max(
        len(chat.prompt_ids([{"role": "user", "content": q}], TOOLS)) for q in QUESTIONS
    )


@pytest.mark.parametrize("room", [4096, 100], ids=["long", "length-capped"])
def test_kept_key_value_caches_give_the_tokens_of_plain_generate(model_dir, room):
    arenas = [_arena(q) for q in QUESTIONS for _ in range(3)]
    max_length = _room_past_prompts(model_dir, room)
    plain, cached = (
        _model_engine(model_dir, False, max_length),
        _model_engine(model_dir, True, max_length),
    )
    assert type(plain.generator) is PaddedGenerate
    assert isinstance(cached.generator, CachedPaddedGenerate)
    generator = cached.generator
    reused: list[int] = []
    calls: list[int] = []
    padded_cache, generate = generator._padded_cache, generator.generate

    def spy_cache(prompts: Any, entries: Any, width: int, common: int) -> Any:
        reused.append(common)
        return padded_cache(prompts, entries, width, common)

    def spy_generate(prompts: Any, budgets: Any, sampling: Any, *, keys: Any = None) -> Any:
        out = generate(prompts, budgets, sampling, keys=keys)
        calls.append(len(prompts))
        assert set(generator._entries) <= set(keys)  # the caches of live episodes only
        return out

    generator._padded_cache = spy_cache  # type: ignore[method-assign]
    generator.generate = spy_generate  # type: ignore[method-assign]
    want, want_stats = plain.run(arenas, Sampling(do_sample=False))
    got, got_stats = cached.run(arenas, Sampling(do_sample=False))
    assert [r.ids for r in got] == [r.ids for r in want]
    assert [r.mask for r in got] == [r.mask for r in want]
    assert got_stats.stop_reasons == want_stats.stop_reasons
    assert got_stats.turns == want_stats.turns and want_stats.turns >= 2
    assert len({len(r.ids) for r in want}) > 2  # turns of different lengths
    # every call, the first too (its prompts prefilled once per group), reused caches
    assert len(calls) >= 2 and len(reused) == len(calls) and min(reused) > 0
    assert generator._entries == {}  # forgotten when the run ended


def test_cached_generate_with_new_and_returning_episodes(model_dir):
    """Episodes may join (no cache yet) or continue (cache) in one call; both give the tokens
    of plain generate."""
    model, tokenizer = load_model_and_tokenizer(str(model_dir))
    chat = ChatTokens(tokenizer)
    plain = PaddedGenerate(model, int(tokenizer.pad_token_id), chat.stop_ids)
    cached = CachedPaddedGenerate(model, int(tokenizer.pad_token_id), chat.stop_ids)
    greedy = Sampling(do_sample=False)
    prompts = [chat.prompt_ids([{"role": "user", "content": q}], list(TOOLS)) for q in QUESTIONS]
    prompts = [prompts[0], prompts[1], prompts[0]]
    first = cached.generate(prompts, [6, 9, 7], greedy, keys=[0, 1, 2])
    assert first == plain.generate(prompts, [6, 9, 7], greedy)
    follow = [p + out + [7, 8, 9] for p, out in zip(prompts, first, strict=True)]
    second = [follow[0], follow[2], prompts[1][:-3]]
    got = cached.generate(second, [8, 5, 8], greedy, keys=[0, 2, "new"])
    assert got == plain.generate(second, [8, 5, 8], greedy)
    assert set(cached._entries) <= {0, 2, "new"}
    cached.forget()
    assert cached._entries == {}


def test_reuse_kv_cache_needs_the_generate_backend(model_dir):
    model, tokenizer = load_model_and_tokenizer(str(model_dir))
    options = RolloutOptions(reuse_kv_cache=True, generation_backend="continuous-batching")
    with pytest.raises(ConfigError, match="reuse_kv_cache"):
        make_engine(
            model, tokenizer, options, parser=NoCalls(), verifier=None, sandbox=None, hook=None
        )


def _interleaved_engine(model_dir: Path, max_length: int) -> RolloutEngine:
    engine = _model_engine(model_dir, False, max_length, "interleaved")
    assert isinstance(engine.generator, InterleavedGenerate)
    return engine


@pytest.mark.parametrize("room", [4096, 100], ids=["long", "length-capped"])
def test_interleaved_turns_give_the_tokens_of_plain_generate(model_dir, room):
    arenas = [_arena(q) for q in QUESTIONS for _ in range(3)]
    max_length = _room_past_prompts(model_dir, room)
    plain, interleaved = (
        _model_engine(model_dir, False, max_length),
        _interleaved_engine(model_dir, max_length),
    )
    assert interleaved.generator.interleaves_turns
    plain_passes, plain_hook = _forward_inputs(plain.generator.model)
    passes, hook = _forward_inputs(interleaved.generator.model)
    try:
        want, want_stats = plain.run(arenas, Sampling(do_sample=False))
        got, got_stats = interleaved.run(arenas, Sampling(do_sample=False))
    finally:
        plain_hook.remove()
        hook.remove()
    assert [r.ids for r in got] == [r.ids for r in want]
    assert [r.mask for r in got] == [r.mask for r in want]
    assert [r.episode.messages for r in got] == [r.episode.messages for r in want]
    assert got_stats.stop_reasons == want_stats.stop_reasons
    assert got_stats.generated_tokens == want_stats.generated_tokens
    assert got_stats.tool_tokens == want_stats.tool_tokens
    assert want_stats.turns >= 2 and len({len(r.ids) for r in want}) > 2
    # the prompts' pass holds each group's prompt once; later passes mix a tool response fed
    # to one episode with single tokens of others, so they are fewer than turn by turn
    assert passes[0][0] == len(QUESTIONS)
    assert any(width > 1 for _, width in passes[1:])
    assert len(passes) < len(plain_passes)


def test_interleaved_generate_is_one_turn_per_prompt(model_dir):
    model, tokenizer = load_model_and_tokenizer(str(model_dir))
    chat = ChatTokens(tokenizer)
    plain = PaddedGenerate(model, int(tokenizer.pad_token_id), chat.stop_ids)
    interleaved = InterleavedGenerate(model, int(tokenizer.pad_token_id), chat.stop_ids)
    prompts = [chat.prompt_ids([{"role": "user", "content": q}], list(TOOLS)) for q in QUESTIONS]
    prompts = [prompts[0], prompts[1][:-2], prompts[0]]
    greedy = Sampling(do_sample=False)
    assert interleaved.generate(prompts, [6, 9, 3], greedy) == plain.generate(
        prompts, [6, 9, 3], greedy
    )


def test_interleaved_sampling_is_seeded_and_samples_what_generate_samples(model_dir):
    from transformers import (
        LogitsProcessorList,
        TemperatureLogitsWarper,
        TopKLogitsWarper,
        TopPLogitsWarper,
    )

    logits = torch.randn(4, 50, generator=torch.Generator().manual_seed(1)) * 3
    for sampling in (
        Sampling(temperature=0.7),
        Sampling(temperature=1.3, top_k=7),
        Sampling(temperature=0.9, top_p=0.8),
        Sampling(temperature=0.5, top_k=20, top_p=0.6),
    ):
        warpers = LogitsProcessorList([TemperatureLogitsWarper(sampling.temperature)])
        if sampling.top_k:
            warpers.append(TopKLogitsWarper(sampling.top_k))
        if sampling.top_p < 1.0:
            warpers.append(TopPLogitsWarper(sampling.top_p))
        want = warpers(torch.zeros((4, 1), dtype=torch.long), logits.clone())
        got = sampling_scores(logits, sampling)
        assert torch.equal(torch.isinf(got), torch.isinf(want))
        finite = ~torch.isinf(want)
        assert torch.allclose(got[finite], want[finite])
        assert (~torch.isinf(got)).sum(-1).min() >= 1

    arenas = [_arena(q) for q in QUESTIONS for _ in range(3)]
    runs = []
    for _ in range(2):
        engine = _interleaved_engine(model_dir, 4096)  # its runtimes numbered from 0 again
        torch.manual_seed(5)
        rollouts, _ = engine.run(arenas, Sampling(temperature=1.0))
        runs.append([r.ids for r in rollouts])
    assert runs[0] == runs[1]
    assert len(set(runs[0][:3])) > 1  # a group's episodes were sampled apart


def test_interleaved_falls_back_to_turns_for_sliding_window_models(model_dir):
    """A model with a sliding-window layer keeps no plain cache to interleave in: the backend
    says so, and the engine runs it turn by turn through padded generate."""
    from transformers import AutoConfig, AutoModelForCausalLM

    model, tokenizer = load_model_and_tokenizer(str(model_dir))
    config = AutoConfig.from_pretrained(str(model_dir))
    config.use_sliding_window, config.sliding_window = True, 16
    config.layer_types = ["sliding_attention", "full_attention"]
    sliding = AutoModelForCausalLM.from_config(config)
    sliding.load_state_dict(model.state_dict())
    chat = ChatTokens(tokenizer)
    backend = InterleavedGenerate(sliding, int(tokenizer.pad_token_id), chat.stop_ids)
    assert not backend.interleaves_turns
    assert InterleavedGenerate(model, int(tokenizer.pad_token_id), chat.stop_ids).interleaves_turns
    prompts = [chat.prompt_ids([{"role": "user", "content": q}], list(TOOLS)) for q in QUESTIONS]
    greedy = Sampling(do_sample=False)
    plain = PaddedGenerate(sliding, int(tokenizer.pad_token_id), chat.stop_ids)
    assert backend.generate(prompts, [5, 8], greedy) == plain.generate(prompts, [5, 8], greedy)


# -- the default backend: per-episode draws, user turns, LoRA ----------------------------------


def test_episode_draws_sample_the_distribution_and_never_a_cut_token():
    from astra_training.episode_draws import EpisodeDraws

    probs = torch.tensor([0.5, 0.0, 0.2, 0.3, 0.0])
    scores = probs.log()[None].expand(4, -1)  # cut tokens are -inf, as sampling_scores gives
    draws = EpisodeDraws(seed=11)
    counts = torch.zeros(5)
    for n in range(2000):
        picked = draws.tokens(scores, [0, 1, 2, 3], [n] * 4)
        counts += torch.bincount(picked, minlength=5)
    assert counts[1] == counts[4] == 0
    assert torch.allclose(counts / counts.sum(), probs, atol=0.02)
    # a draw is the episode's own: the same whatever rows share the pass, in any order
    alone = EpisodeDraws(seed=11).tokens(scores[:1], [2], [7])
    mixed = EpisodeDraws(seed=11).tokens(scores[:3], [5, 2, 0], [0, 7, 3])
    assert int(alone[0]) == int(mixed[1])
    assert EpisodeDraws(seed=11).uniform(2, 7) != EpisodeDraws(seed=12).uniform(2, 7)


def test_an_episode_samples_the_same_whatever_it_is_decoded_with(model_dir):
    """With sampling, each episode draws from its own stream: rolled out with another group
    (whose turns end at other passes) or alone, a group's episodes are the same."""
    both = [_arena(q) for q in QUESTIONS for _ in range(3)]
    runs = []
    for arenas in (both, both[:3]):
        engine = _interleaved_engine(model_dir, 4096)  # its runtimes numbered from 0 again
        torch.manual_seed(9)
        rollouts, _ = engine.run(arenas, Sampling(temperature=1.0, top_p=0.95))
        runs.append([r.ids for r in rollouts][:3])
    assert runs[0] == runs[1]
    assert len(set(runs[0])) > 1


class UserTurnsRuntime(Runtime):
    """A runtime with later user turns, as BFCL multi-turn arenas have (``next_turn``)."""

    def __init__(self, log: list[tuple[str, int, float]], index: int) -> None:
        super().__init__(log, index)
        self.turns = [f"Now the next city, please ({index}).", "And the last one?"]

    def reset(self) -> None:
        self.ready = True

    def next_turn(self) -> str | None:
        return self.turns.pop(0) if self.turns else None


class SomeCalls:
    """A turn whose text has an even length answers without a call (the runtime's next user
    turn follows); any other is a malformed call."""

    def parse(self, text: str) -> ParsedTurn:
        return ParsedTurn(text) if len(text) % 2 == 0 else ParsedTurn(text, (), ("malformed",))


def test_interleaved_user_turns_give_the_tokens_of_plain_generate(model_dir):
    arenas = [_arena(q) for q in QUESTIONS for _ in range(3)]
    engines = [_model_engine(model_dir, False, 4096, backend) for backend in GREEDY_BACKENDS]
    runs = []
    for engine in engines:
        count = iter(range(1 << 30))
        engine.runtime_factory = lambda arena, count=count: UserTurnsRuntime([], next(count))
        engine.parser = SomeCalls()
        runs.append(engine.run(arenas, Sampling(do_sample=False)))
    (want, want_stats), (got, got_stats) = runs
    assert isinstance(engines[1].generator, InterleavedGenerate)
    assert [r.ids for r in got] == [r.ids for r in want]
    assert [r.mask for r in got] == [r.mask for r in want]
    assert [r.episode.messages for r in got] == [r.episode.messages for r in want]
    assert got_stats.stop_reasons == want_stats.stop_reasons
    users = [sum(m["role"] == "user" for m in r.episode.messages) for r in got]
    assert max(users) == 3  # some episodes played every user turn


GREEDY_BACKENDS = ("generate", "interleaved")


def test_interleaved_rollouts_through_lora_adapters_give_the_tokens_of_plain_generate(
    model_dir,
):
    """The default backend decodes a LoRA policy (a peft model) as ``generate`` does, and
    the adapters' weights count."""
    arenas = [_arena(q) for q in QUESTIONS for _ in range(2)]
    runs = []
    for backend, trained in (("generate", True), ("interleaved", True), ("interleaved", False)):
        engine = _model_engine(model_dir, False, 4096, backend)
        adapted = with_lora(engine.generator.model, LoraOptions(r=4, alpha=8, dropout=0.0))
        if trained:  # adapters as training leaves them: not zero (peft starts lora_B at 0)
            generator = torch.Generator().manual_seed(3)
            with torch.no_grad():
                for name, p in adapted.named_parameters():
                    if "lora_B" in name:
                        p.add_(torch.randn(p.shape, generator=generator) * 0.5)
        engine.generator = type(engine.generator)(
            adapted, engine.generator.pad_id, engine.generator.stop_ids
        )
        runs.append([r.ids for r in engine.run(arenas, Sampling(do_sample=False))[0]])
    assert runs[2] != runs[1]  # adapters left at zero: the base model's tokens


def test_a_growing_cache_layer_holds_what_concatenation_holds():
    from astra_training.growing_cache import MIN_ROOM, growing_layer_type

    growing = growing_layer_type()
    assert growing is not None
    gen = torch.Generator().manual_seed(0)
    keys, values = torch.randn(3, 2, 5, 4, generator=gen), torch.randn(3, 2, 5, 4, generator=gen)
    layer = growing(keys, values)
    for width in (1, 7, MIN_ROOM, 1, 30):  # past its first buffer and its second
        k, v = (
            torch.randn(3, 2, width, 4, generator=gen),
            torch.randn(3, 2, width, 4, generator=gen),
        )
        got = layer.update(k, v)
        keys, values = torch.cat([keys, k], dim=2), torch.cat([values, v], dim=2)
        assert torch.equal(got[0], keys) and torch.equal(got[1], values)
        assert layer.get_seq_length() == keys.shape[2]
    rows, cols = torch.tensor([0, 2]), torch.tensor([1, 4, 9, 299])
    layer.keep(rows, cols)
    assert torch.equal(layer.keys, keys[rows][:, :, cols])
    assert torch.equal(layer.values, values[rows][:, :, cols])
    k = torch.randn(2, 2, 1, 4, generator=gen)
    assert torch.equal(layer.update(k, k)[0], torch.cat([keys[rows][:, :, cols], k], dim=2))
