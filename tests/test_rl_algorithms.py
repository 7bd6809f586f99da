"""RL algorithms: advantages and losses against hand-computed values, masking, clipping, the
micro-batch normaliser, registration, and a toy bandit every algorithm must learn."""

from __future__ import annotations

import math

import pytest
import torch
from astra_rl_algorithms import DAPO, GRPO, GSPO, RLOO, DrGRPO, ReinforcePP
from astra_rl_algorithms.options import (
    DAPOOptions,
    DrGRPOOptions,
    GRPOOptions,
    GSPOOptions,
    ReinforcePPOptions,
)
from astra_rl_algorithms.overlong import overlong_mask, soft_overlong_penalty
from astra_training.batch_filling import AdaptiveBatchFiller

from astra_core.errors import ConfigError
from astra_core.options import ComponentSpec
from astra_core.plugins import load_plugins
from astra_core.protocols import RLAlgorithm
from astra_core.registry import ComponentBuilder

NAMES = ("grpo", "dr_grpo", "dapo", "gspo", "rloo", "reinforce_pp")

REWARDS = torch.tensor([[1.0, 0.0, 0.0, 1.0], [0.5, 0.5, 1.0, 0.0]])


@pytest.fixture(scope="module")
def builder() -> ComponentBuilder:
    return ComponentBuilder(load_plugins().registry)


def close(actual: torch.Tensor, expected: list, tol: float = 1e-5) -> None:
    assert torch.allclose(actual, torch.tensor(expected, dtype=actual.dtype), atol=tol), actual


# --- registration ------------------------------------------------------------------------------


def test_all_six_are_registered_and_satisfy_the_protocol(builder: ComponentBuilder) -> None:
    assert set(NAMES) <= set(builder.registry.names("rl_algorithm"))
    for name in NAMES:
        algo = builder.build("rl_algorithm", name)
        assert isinstance(algo, RLAlgorithm)
        assert algo.name == name
        assert builder.registry.get("rl_algorithm", name).plugin == "rl-algorithms"


def test_options_come_from_a_config_table_and_bad_values_are_config_errors(
    builder: ComponentBuilder,
) -> None:
    dapo = builder.build("rl_algorithm", ComponentSpec("dapo", {"clip_high": 0.3}))
    assert (dapo.clip_low, dapo.clip_high) == (0.2, 0.3)
    with pytest.raises(ConfigError, match="clip_eps must be >= 0"):
        builder.build("rl_algorithm", ComponentSpec("grpo", {"clip_eps": -0.1}))
    with pytest.raises(ConfigError, match="unknown option 'clip'"):
        builder.build("rl_algorithm", ComponentSpec("grpo", {"clip": 0.1}))


# --- advantages --------------------------------------------------------------------------------


def test_grpo_advantages_are_group_normalised_with_the_sample_std() -> None:
    a = GRPO(GRPOOptions(std_eps=0.0)).advantages(REWARDS)
    # group 1: mean .5, std sqrt(1/3); group 2: mean .5, std sqrt(1/6)
    close(a, [[0.866025, -0.866025, -0.866025, 0.866025], [0.0, 0.0, 1.224745, -1.224745]])
    # a group where all rewards are equal gets zero advantage, not NaN
    flat = GRPO().advantages(torch.tensor([[0.7, 0.7, 0.7]]))
    close(flat, [[0.0, 0.0, 0.0]])


def test_dr_grpo_advantages_only_subtract_the_group_mean() -> None:
    close(DrGRPO().advantages(REWARDS), [[0.5, -0.5, -0.5, 0.5], [0.0, 0.0, 0.5, -0.5]])


def test_dapo_and_gspo_use_group_normalised_advantages() -> None:
    expected = GRPO(GRPOOptions(std_eps=0.0)).advantages(REWARDS)
    assert torch.allclose(DAPO(DAPOOptions(std_eps=0.0)).advantages(REWARDS), expected)
    assert torch.allclose(GSPO(GSPOOptions(std_eps=0.0)).advantages(REWARDS), expected)


def test_rloo_uses_the_mean_of_the_other_samples() -> None:
    close(
        RLOO().advantages(REWARDS),
        [[2 / 3, -2 / 3, -2 / 3, 2 / 3], [0.0, 0.0, 2 / 3, -2 / 3]],
    )


def test_reinforce_pp_normalises_over_the_whole_batch() -> None:
    rewards = torch.tensor([[1.0, 1.0, 1.0, 0.0], [0.0, 0.0, 0.0, 1.0]])
    plain = ReinforcePP(ReinforcePPOptions(std_eps=0.0)).advantages(rewards)
    # batch mean .5, every deviation +-.5, sample std over 8 = sqrt(2/7)
    close(plain, [[0.935414] * 3 + [-0.935414], [-0.935414] * 3 + [0.935414]])
    # per group normalisation would give +-1.5 / ... : the batch one differs
    assert not torch.allclose(plain, GRPO().advantages(rewards))
    baseline = ReinforcePP(ReinforcePPOptions(std_eps=0.0, group_baseline=True))
    # group means .75 and .25 subtracted first, then normalised by sqrt(1.5/7)
    close(
        baseline.advantages(rewards),
        [[0.540062] * 3 + [-1.620185], [-0.540062] * 3 + [1.620185]],
    )
    # a single sample per group is fine for REINFORCE++ (no group baseline needed)
    assert ReinforcePP().advantages(torch.tensor([[1.0], [0.0]])).shape == (2, 1)


@pytest.mark.parametrize("name", ["grpo", "dr_grpo", "dapo", "gspo", "rloo"])
def test_group_baselines_refuse_groups_of_one_and_bad_shapes(
    builder: ComponentBuilder, name: str
) -> None:
    algo = builder.build("rl_algorithm", name)
    with pytest.raises(ValueError, match=f"{name}.*group_size 1"):
        algo.advantages(torch.tensor([[1.0], [0.0]]))
    with pytest.raises(ValueError, match=f"{name}.*shape"):
        algo.advantages(torch.tensor([1.0, 0.0]))
    with pytest.raises(ValueError, match="NaN"):
        algo.advantages(torch.tensor([[1.0, float("nan")]]))


# --- losses ------------------------------------------------------------------------------------

# Two sequences, 3 token slots; the last slot of row 0 is padding holding garbage (-inf).
MASK = torch.tensor([[1.0, 1.0, 0.0], [1.0, 1.0, 1.0]])
RATIOS = [[1.5, 0.7, 1.0], [0.7, 1.1, 1.0]]
ADV = torch.tensor([1.0, -2.0])


def batch(ratios: list[list[float]] = RATIOS) -> tuple[torch.Tensor, torch.Tensor]:
    old = torch.tensor([[-1.0, -2.0, float("-inf")], [-0.5, -1.5, -2.5]])
    new = old + torch.log(torch.tensor(ratios))
    new[0, 2] = float("-inf")
    return new.requires_grad_(True), old


def grad_of(algo, ratios=RATIOS, adv=ADV, mask=MASK, **kw):
    logprobs, old = batch(ratios)
    loss, metrics = algo.policy_loss(logprobs, old, adv, mask, **kw)
    loss.backward()
    return loss, metrics, logprobs.grad


def test_grpo_loss_is_the_clipped_token_mean_over_the_batch() -> None:
    loss, metrics, grad = grad_of(GRPO())
    # per token: -1.2 (1.5 clipped to 1.2), -0.7, 1.6 (0.7 clipped to 0.8, A<0), 2.2, 2.0
    assert loss.item() == pytest.approx(3.9 / 5, abs=1e-6)
    assert metrics["clip_fraction"] == pytest.approx(2 / 5)
    assert metrics["pg_loss"] == pytest.approx(0.78, abs=1e-6)
    # d loss / d logp = -A * ratio / 5 where the unclipped term is used, 0 where clipped or masked
    close(grad, [[0.0, -0.14, 0.0], [0.0, 0.44, 0.4]])
    assert torch.isfinite(grad).all()


def test_token_mean_is_over_all_tokens_of_the_batch_not_per_sequence() -> None:
    loss, _, _ = grad_of(GRPO())
    per_sequence_mean = ((-1.2 - 0.7) / 2 + (1.6 + 2.2 + 2.0) / 3) / 2
    assert loss.item() != pytest.approx(per_sequence_mean, abs=1e-3)


@pytest.mark.parametrize("algo", [RLOO(), ReinforcePP()])
def test_rloo_and_reinforce_pp_use_the_same_clipped_token_loss(algo) -> None:
    loss, _, grad = grad_of(algo)
    assert loss.item() == pytest.approx(0.78, abs=1e-6)
    close(grad, [[0.0, -0.14, 0.0], [0.0, 0.44, 0.4]])


def test_dapo_clips_higher_above_than_below() -> None:
    loss, _, _ = grad_of(DAPO())
    # the 1.5 ratio is now clipped to 1.28
    assert loss.item() == pytest.approx((-1.28 - 0.7 + 1.6 + 2.2 + 2.0) / 5, abs=1e-6)
    # a ratio of 1.25 with A > 0 is inside DAPO's range (gradient) but outside GRPO's (none)
    ratios = [[1.25, 1.0, 1.0], [1.0, 1.0, 1.0]]
    _, _, g_dapo = grad_of(DAPO(), ratios)
    _, _, g_grpo = grad_of(GRPO(), ratios)
    assert g_dapo[0, 0].item() == pytest.approx(-1.25 / 5, abs=1e-6)
    assert g_grpo[0, 0].item() == 0.0
    # the lower side is the same 0.2 for both: a ratio of 0.75 with A < 0 is clipped by both
    ratios = [[1.0, 1.0, 1.0], [0.75, 1.0, 1.0]]
    assert grad_of(DAPO(), ratios)[2][1, 0].item() == 0.0
    assert grad_of(GRPO(), ratios)[2][1, 0].item() == 0.0


def test_clipping_only_stops_the_gradient_for_the_matching_sign() -> None:
    # ratio 1.5: clipped (zero gradient) when A > 0, gradient when A < 0 (pessimistic bound)
    for adv, zero in ((1.0, True), (-1.0, False)):
        ratios = [[1.5, 1.0, 1.0], [1.0, 1.0, 1.0]]
        _, _, grad = grad_of(GRPO(), ratios, adv=torch.tensor([adv, 0.0]))
        assert (grad[0, 0].item() == 0.0) is zero
    # ratio 0.5: clipped when A < 0, gradient when A > 0
    for adv, zero in ((-1.0, True), (1.0, False)):
        ratios = [[0.5, 1.0, 1.0], [1.0, 1.0, 1.0]]
        _, _, grad = grad_of(GRPO(), ratios, adv=torch.tensor([adv, 0.0]))
        assert (grad[0, 0].item() == 0.0) is zero


def test_dr_grpo_divides_the_token_sum_by_a_constant() -> None:
    loss, _, grad = grad_of(DrGRPO(DrGRPOOptions(max_length=4)))
    assert loss.item() == pytest.approx(3.9 / (2 * 4), abs=1e-6)
    close(grad, [[0.0, -0.7 / 8, 0.0], [0.0, 2.2 / 8, 2.0 / 8]])
    # without max_length the width of the token dimension (3) is the constant
    assert grad_of(DrGRPO())[0].item() == pytest.approx(3.9 / 6, abs=1e-6)


def test_gspo_uses_the_geometric_mean_ratio_per_sequence() -> None:
    logprobs, old = batch()
    seq = GSPO.sequence_log_ratio(logprobs, old, MASK).exp()
    close(seq.detach(), [math.sqrt(1.5 * 0.7), (0.7 * 1.1 * 1.0) ** (1 / 3)])
    # both sequence ratios are far outside [1 - 3e-4, 1 + 4e-4] in the advantage's favour:
    # the clipped terms win, the loss is the mean of the clipped sequence terms, no gradient
    loss, metrics, grad = grad_of(GSPO())
    assert loss.item() == pytest.approx((-1.0004 + 2 * 0.9997) / 2, abs=1e-6)
    assert metrics["clip_fraction"] == 1.0
    assert torch.count_nonzero(grad) == 0
    # row 0 ratio below 1 with A > 0: unclipped; every token of the row gets -A * s / |o| / 2
    ratios = [[0.9, 1.0, 1.0], [0.7, 1.1, 1.0]]
    loss, _, grad = grad_of(GSPO(), ratios)
    s0 = math.sqrt(0.9)
    assert loss.item() == pytest.approx((-s0 + 2 * 0.9997) / 2, abs=1e-6)
    close(grad, [[-s0 / 4, -s0 / 4, 0.0], [0.0, 0.0, 0.0]])


def test_kl_to_a_reference_uses_the_k3_estimator() -> None:
    d = [[0.1, -0.2, 0.0], [0.0, 0.3, -0.4]]  # log pi_ref - log pi on each token
    logprobs, old = batch()
    ref = (logprobs.detach() + torch.tensor(d)).nan_to_num(neginf=-5.0)
    k3 = [math.exp(x) - x - 1 for x in (0.1, -0.2, 0.0, 0.3, -0.4)]
    base, _ = GRPO().policy_loss(logprobs, old, ADV, MASK)
    loss, metrics = GRPO(GRPOOptions(kl_coef=0.1)).policy_loss(
        logprobs, old, ADV, MASK, ref_logprobs=ref
    )
    assert metrics["kl_ref"] == pytest.approx(sum(k3) / 5, abs=1e-6)
    assert (loss - base).item() == pytest.approx(0.1 * sum(k3) / 5, abs=1e-6)
    # by default (paper) there is no KL: the reference only shows up as a metric
    loss0, metrics0 = GRPO().policy_loss(logprobs, old, ADV, MASK, ref_logprobs=ref)
    assert loss0.item() == pytest.approx(base.item())
    assert metrics0["kl_ref"] > 0
    # asking for KL without reference log-probs is an error, not a silent no-op
    assert GRPO(GRPOOptions(kl_coef=0.1)).needs_reference
    with pytest.raises(ValueError, match="needs ref_logprobs"):
        GRPO(GRPOOptions(kl_coef=0.1)).policy_loss(logprobs, old, ADV, MASK)


@pytest.mark.parametrize("name", NAMES)
def test_gradients_flow_only_through_sampled_tokens(builder: ComponentBuilder, name: str) -> None:
    algo = builder.build("rl_algorithm", name)
    torch.manual_seed(0)
    logits = torch.randn(3, 5, 7, requires_grad=True)
    tokens = torch.randint(0, 7, (3, 5))
    logprobs = torch.log_softmax(logits, -1).gather(-1, tokens[..., None]).squeeze(-1)
    old = logprobs.detach() + 0.01 * torch.randn(3, 5)
    mask = torch.tensor([[0, 1, 1, 0, 0], [1, 1, 1, 1, 1], [0, 0, 0, 1, 0]], dtype=torch.float32)
    ref = logprobs.detach() - 0.1
    kw = {"ref_logprobs": ref}
    loss, metrics = algo.policy_loss(logprobs, old, torch.tensor([1.0, -0.5, 2.0]), mask, **kw)
    loss.backward()
    per_position = logits.grad.abs().sum(-1)
    assert (per_position[mask == 0] == 0).all()
    assert (per_position[mask == 1] > 0).any()
    assert all(isinstance(v, float) and math.isfinite(v) for v in metrics.values())


@pytest.mark.parametrize("name", NAMES)
def test_micro_batches_with_the_batch_normalizer_sum_to_the_full_batch_loss(
    builder: ComponentBuilder, name: str
) -> None:
    algo = builder.build("rl_algorithm", name)
    torch.manual_seed(1)
    logprobs = (-torch.rand(4, 6) * 3).requires_grad_(True)
    old = logprobs.detach() + 0.05 * torch.randn(4, 6)
    mask = (torch.rand(4, 6) > 0.3).float()
    mask[2] = 0  # a sequence with no sampled token
    adv = torch.tensor([1.0, -1.0, 0.5, 2.0])
    full, _ = algo.policy_loss(logprobs, old, adv, mask)
    norm = algo.loss_normalizer(mask.sum(1).tolist())
    parts = [
        algo.policy_loss(logprobs[i : i + 2], old[i : i + 2], adv[i : i + 2], mask[i : i + 2],
                         normalizer=norm)[0]
        for i in (0, 2)
    ]  # fmt: skip
    if name == "dr_grpo":  # its default constant is the batch width, here the same for both
        full, _ = algo.policy_loss(logprobs, old, adv, mask, normalizer=norm)
    assert sum(parts).item() == pytest.approx(full.item(), abs=1e-6)


def test_shape_errors_name_the_algorithm() -> None:
    logprobs, old = batch()
    with pytest.raises(ValueError, match=r"'grpo'.*mask has shape"):
        GRPO().policy_loss(logprobs, old, ADV, MASK[:, :2])
    with pytest.raises(ValueError, match=r"'dapo'.*advantages must have shape"):
        DAPO().policy_loss(logprobs, old, torch.ones(3), MASK)


def test_half_precision_log_probs_are_computed_in_float32() -> None:
    logprobs, old = batch([[1.0003, 1.0, 1.0], [1.0, 1.0, 1.0]])
    half = logprobs.detach().nan_to_num(neginf=-30.0).bfloat16().requires_grad_(True)
    old_half = old.nan_to_num(neginf=-30.0).bfloat16()
    loss, _ = GSPO().policy_loss(half, old_half, ADV, MASK)
    loss.backward()
    assert loss.dtype == torch.float32 and half.grad is not None
    assert half.grad.dtype == torch.bfloat16 and torch.isfinite(half.grad.float()).all()


def test_per_token_advantages_are_accepted_by_token_level_losses() -> None:
    logprobs, old = batch()
    a = GRPO().policy_loss(logprobs, old, ADV, MASK)[0]
    b = GRPO().policy_loss(logprobs, old, ADV[:, None].expand(2, 3), MASK)[0]
    assert a.item() == pytest.approx(b.item())


# --- DAPO overlong shaping ---------------------------------------------------------------------


def test_overlong_mask_and_soft_penalty() -> None:
    close(overlong_mask([10, 99, 100, 120], 100), [1.0, 1.0, 0.0, 0.0])
    # no penalty up to 100 - 20 = 80 tokens, linear to -1 at 100
    close(soft_overlong_penalty([50, 80, 90, 100, 130], 100, 20), [0.0, 0.0, -0.5, -1.0, -1.0])
    close(soft_overlong_penalty([90], 100, 20, factor=0.5), [-0.25])
    close(soft_overlong_penalty([100], 100, 0), [0.0])
    dapo = DAPO(DAPOOptions(max_response_length=100, overlong_buffer=20))
    close(dapo.overlong_penalty([85]), [-0.25])
    close(dapo.overlong_mask([85, 100]), [1.0, 0.0])
    with pytest.raises(ValueError, match="max_response_length"):
        DAPO().overlong_mask([1])


def test_dapo_shapes_rewards_and_weights_only_of_overlong_responses(builder) -> None:
    # Lmax 100, Lcache 20, factor 0.5: 0 up to 80 tokens, ((100 - 20) - L) / 20 * 0.5 to 100
    dapo = builder.build(
        "rl_algorithm",
        ComponentSpec(
            "dapo",
            {
                "max_response_length": 100,
                "overlong_buffer": 20,
                "overlong_penalty_factor": 0.5,
                "overlong_filter": True,
            },
        ),
    )
    lengths, truncated = [40, 80, 90, 100, 60], [False, False, False, False, True]
    close(dapo.reward_shaping(lengths, truncated), [0.0, 0.0, -0.25, -0.5, 0.0])
    # filtered: the one that reached Lmax, and the one the rollout cut at its length cap
    close(dapo.sequence_weights(lengths, truncated), [1.0, 1.0, 1.0, 0.0, 0.0])
    # without the options nothing changes (and the filter alone needs no budget)
    plain = DAPO()
    close(plain.reward_shaping(lengths, truncated), [0.0] * 5)
    close(plain.sequence_weights(lengths, truncated), [1.0] * 5)
    only_filter = DAPO(DAPOOptions(overlong_filter=True))
    close(only_filter.sequence_weights(lengths, truncated), [1.0, 1.0, 1.0, 1.0, 0.0])
    close(only_filter.reward_shaping(lengths, truncated), [0.0] * 5)


def test_dapo_overlong_options_are_checked(builder) -> None:
    with pytest.raises(ConfigError, match="overlong_buffer needs max_response_length"):
        builder.build("rl_algorithm", ComponentSpec("dapo", {"overlong_buffer": 8}))
    with pytest.raises(ConfigError, match=r"overlong_buffer \(50\) must be <= max_response"):
        builder.build(
            "rl_algorithm",
            ComponentSpec("dapo", {"overlong_buffer": 50, "max_response_length": 40}),
        )


# --- a toy bandit every algorithm must learn ---------------------------------------------------


def _expected_reward(logits: torch.Tensor) -> float:
    return float(torch.softmax(logits.detach(), -1)[2])


@pytest.mark.parametrize("name", NAMES)
def test_every_algorithm_learns_a_four_armed_bandit(builder: ComponentBuilder, name: str) -> None:
    """Sequences of 1-3 actions over 4 arms; reward = share of sampled actions that are arm 2.
    A few steps of each algorithm (with adaptive batch filling) must raise P(arm 2) from 0.25."""
    torch.manual_seed(0)
    algo = builder.build("rl_algorithm", name)
    logits = torch.zeros(4, requires_grad=True)
    opt = torch.optim.Adam([logits], lr=0.1)
    filler: AdaptiveBatchFiller[float] = AdaptiveBatchFiller(delta=0.0)
    groups, group_size, width = 4, 8, 3
    before = _expected_reward(logits)
    for _ in range(8):
        batch_groups = None
        while batch_groups is None:
            with torch.no_grad():
                actions = torch.multinomial(
                    torch.softmax(logits, -1), groups * group_size * width, replacement=True
                ).view(groups * group_size, width)
                lengths = torch.randint(1, width + 1, (groups * group_size,))
                mask = (torch.arange(width)[None, :] < lengths[:, None]).float()
                rewards = ((actions == 2).float() * mask).sum(1) / lengths
            rollouts = [
                {"reward": float(rewards[i]), "actions": actions[i], "mask": mask[i]}
                for i in range(groups * group_size)
            ]
            new = [rollouts[g * group_size : (g + 1) * group_size] for g in range(groups)]
            batch_groups, _ = filler.fill(new, groups)
        flat = [r for g in batch_groups for r in g]
        acts = torch.stack([r["actions"] for r in flat])
        mask = torch.stack([r["mask"] for r in flat])
        adv = algo.advantages(torch.tensor([[r["reward"] for r in g] for g in batch_groups]))
        old = None
        for _epoch in range(2):
            logprobs = torch.log_softmax(logits, -1)[acts]
            old = logprobs.detach() if old is None else old
            loss, _ = algo.policy_loss(logprobs, old, adv.reshape(-1), mask)
            opt.zero_grad()
            loss.backward()
            opt.step()
    after = _expected_reward(logits)
    assert after > before + 0.3, (name, before, after)
