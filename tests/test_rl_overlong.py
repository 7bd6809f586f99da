"""DAPO's overlong options through the RL trainer: the soft overlong punishment changes the
rewards the update and the batch filler see, overlong filtering takes truncated responses out of
the loss, and short responses are left alone (a tiny local model, the real DAPO object)."""

from __future__ import annotations

from typing import Any

import attrs
import pytest
import torch
from astra_rl_algorithms.algorithms import DAPO
from astra_rl_algorithms.options import DAPOOptions
from astra_training.batch_filling import AdaptiveBatchFiller
from astra_training.chat_tokens import ChatTokens
from astra_training.models import load_model_and_tokenizer
from astra_training.response_shaping import ResponseShaping, response_length
from astra_training.rl_options import RLOptions
from astra_training.rl_trainer import RLTrainer
from astra_training.rollout import Rollout
from test_rl_speed_paths import _rollouts, model_dir, one_thread, plugin_builder

__all__ = ["model_dir", "one_thread"]  # fixtures shared with test_rl_speed_paths


def _cut(rollout: Rollout) -> Rollout:
    """The rollout as if the engine had stopped it at its length cap."""
    return attrs.evolve(rollout, episode=attrs.evolve(rollout.episode, stop_reason="length_cap"))


def _update(
    model_dir: Any, algorithm: DAPO, batch: list[list[Rollout]]
) -> tuple[torch.Tensor, dict[str, float], dict[str, torch.Tensor]]:
    """One trainer update; returns the rewards the algorithm's advantages got, the metrics and
    the new weights."""
    from accelerate import Accelerator

    trainer = RLTrainer(RLOptions(algorithm="dapo", max_grad_norm=0.0), plugin_builder())
    trainer.algorithm = algorithm
    trainer.shaping = ResponseShaping(algorithm)
    seen: list[torch.Tensor] = []
    real = algorithm.advantages

    def spy(rewards: torch.Tensor) -> torch.Tensor:
        seen.append(rewards.clone())
        return real(rewards)

    algorithm.advantages = spy  # type: ignore[method-assign]
    torch.manual_seed(0)
    model, tokenizer = load_model_and_tokenizer(str(model_dir))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda _: 1.0)
    acc = Accelerator(cpu=True)
    model, optimizer = acc.prepare(model, optimizer)
    metrics = trainer._update(model, optimizer, scheduler, acc, batch, tokenizer)
    weights = {k: v.detach().clone() for k, v in model.state_dict().items()}
    return seen[0], metrics, weights


@pytest.fixture(scope="module")
def batch(model_dir) -> list[list[Rollout]]:
    _, tokenizer = load_model_and_tokenizer(str(model_dir))
    return _rollouts(ChatTokens(tokenizer), 2)


def test_the_soft_overlong_penalty_reaches_the_update_for_long_responses_only(model_dir, batch):
    rollouts = [r for g in batch for r in g]
    lengths = [response_length(r) for r in rollouts]
    # the budget ends at the longest response; the buffer starts just above the shortest one's
    lmax, lcache, factor = max(lengths), max(lengths) - min(lengths) - 1, 0.5
    assert lcache > 0
    raw = torch.tensor([[r.reward for r in g] for g in batch])
    plain, plain_metrics, plain_w = _update(model_dir, DAPO(), batch)
    assert torch.equal(plain, raw)
    assert "overlong_penalty_mean" in plain_metrics and plain_metrics["overlong_penalty_mean"] == 0
    options = DAPOOptions(
        max_response_length=lmax, overlong_buffer=lcache, overlong_penalty_factor=factor
    )
    shaped, metrics, shaped_w = _update(model_dir, DAPO(options), batch)
    expected = [
        0.0 if n <= lmax - lcache else ((lmax - lcache) - n) / lcache * factor for n in lengths
    ]
    assert torch.allclose(shaped.reshape(-1) - raw.reshape(-1), torch.tensor(expected))
    short = [i for i, n in enumerate(lengths) if n <= lmax - lcache]
    long = [i for i, n in enumerate(lengths) if n > lmax - lcache]
    assert short and long  # both kinds are in the batch
    assert all(shaped.reshape(-1)[i] == raw.reshape(-1)[i] for i in short)
    assert all(shaped.reshape(-1)[i] < raw.reshape(-1)[i] for i in long)
    assert shaped.reshape(-1)[lengths.index(lmax)] == raw.reshape(-1)[lengths.index(lmax)] - factor
    assert metrics["overlong_penalty_mean"] == pytest.approx(sum(expected) / len(expected))
    # other rewards, other advantages: the update moved the weights elsewhere
    assert max(float((plain_w[k] - shaped_w[k]).abs().max()) for k in plain_w) > 1e-6


def test_overlong_filtering_leaves_truncated_responses_out_of_the_loss(model_dir, batch):
    cut = [[_cut(g[0]), *g[1:]] if i == 0 else list(g) for i, g in enumerate(batch)]
    filtering = DAPO(DAPOOptions(overlong_filter=True))
    rewards, metrics, filtered_w = _update(model_dir, filtering, cut)
    assert metrics["overlong_filtered"] == 1.0
    assert torch.equal(rewards, torch.tensor([[r.reward for r in g] for g in batch]))
    # the same update as one where the truncated response had no trained token at all: its
    # tokens add nothing and do not count in the token-mean's denominator
    silent = attrs.evolve(batch[0][0], mask=(0,) * len(batch[0][0].mask))
    _, _, want_w = _update(model_dir, DAPO(), [[silent, *batch[0][1:]], *batch[1:]])
    assert max(float((want_w[k] - filtered_w[k]).abs().max()) for k in want_w) < 1e-6
    # ...and not the update that trained on it
    _, _, unfiltered_w = _update(model_dir, DAPO(), cut)
    assert max(float((unfiltered_w[k] - filtered_w[k]).abs().max()) for k in want_w) > 1e-6


def test_the_batch_filler_judges_groups_on_the_shaped_rewards(batch):
    # a group whose verifier rewards are all equal teaches nothing, unless lengths set them apart
    group = [attrs.evolve(r, episode=attrs.evolve(r.episode, reward=batch[0][0].episode.reward))
             for r in batch[0]]  # fmt: skip
    lengths = [response_length(r) for r in group]
    assert len(set(lengths)) > 1
    lmax = max(lengths)
    shaping = ResponseShaping(
        DAPO(DAPOOptions(max_response_length=lmax, overlong_buffer=lmax - min(lengths)))
    )
    assert AdaptiveBatchFiller(delta=0.0).fill([group], 1)[0] is None  # dropped
    kept, _ = AdaptiveBatchFiller(delta=0.0, reward=shaping.reward).fill([group], 1)
    assert kept == [group]
