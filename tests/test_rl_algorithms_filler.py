"""The paper's adaptive batch filling: drop low-variance groups, carry surplus valid groups over,
refill from the buffer first, and save/restore the buffer for exact resume."""

from __future__ import annotations

import json

import attrs
import pytest
import torch
from astra_training.batch_filling import AdaptiveBatchFiller, default_reward, population_std

from astra_core.records import Reward


def group(tag: str, *rewards: float) -> list[dict]:
    return [{"id": f"{tag}{i}", "reward": r} for i, r in enumerate(rewards)]


def ids(groups: list[list[dict]] | None) -> list[str]:
    assert groups is not None
    return [g[0]["id"][:-1] for g in groups]


def test_low_variance_groups_are_dropped() -> None:
    filler = AdaptiveBatchFiller(delta=0.1)
    # std 0, std 0.05 (<= 0.1), std 0.5, std 0.25
    new = [group("a", 1, 1, 1), group("b", 0.5, 0.6), group("c", 0, 1), group("d", 0.5, 1)]
    batch, stats = filler.fill(new, 2)
    assert ids(batch) == ["c", "d"]
    assert stats["filtered_groups"] == 2.0
    assert stats["valid_groups"] == 2.0
    assert stats["batch_ready"] == 1.0
    assert len(filler) == 0


def test_std_equal_to_delta_is_dropped_and_delta_zero_drops_only_uniform_groups() -> None:
    assert population_std([0.0, 1.0]) == 0.5
    assert not AdaptiveBatchFiller(delta=0.5).is_valid(group("x", 0, 1))
    zero = AdaptiveBatchFiller()
    assert zero.is_valid(group("x", 0.0, 1e-9))
    assert not zero.is_valid(group("x", 0.7, 0.7, 0.7))
    assert not zero.is_valid(group("x", 1.0))  # one sample has no variance


def test_surplus_is_buffered_and_used_first_on_the_next_call() -> None:
    filler = AdaptiveBatchFiller(delta=0.0, capacity=4)
    new = [group(t, 0, 1) for t in "abcde"] + [group("z", 1, 1)]
    batch, stats = filler.fill(new, 2)
    assert ids(batch) == ["a", "b"]
    assert [g[0]["id"][0] for g in filler.buffer] == ["c", "d", "e"]
    assert stats["buffer_size"] == 3.0
    # next step: the buffer alone fills the batch before any new group
    batch, stats = filler.fill([group("f", 0, 1)], 2)
    assert ids(batch) == ["c", "d"]
    assert stats["groups_from_buffer"] == 2.0
    assert [g[0]["id"][0] for g in filler.buffer] == ["e", "f"]


def test_an_incomplete_batch_waits_for_more_rollouts_and_keeps_its_groups() -> None:
    filler = AdaptiveBatchFiller(delta=0.0)
    batch, stats = filler.fill([group("a", 0, 1), group("b", 1, 1)], 3)
    assert batch is None and stats["batch_ready"] == 0.0 and len(filler) == 1
    batch, _ = filler.fill([group("c", 1, 1), group("d", 0, 1)], 3)
    assert batch is None and len(filler) == 2
    batch, stats = filler.fill([group("e", 0, 1), group("f", 0, 1)], 3)
    assert ids(batch) == ["a", "d", "e"]
    assert stats["groups_from_buffer"] == 2.0
    assert ids(list(filler.buffer)) == ["f"]
    # giving up: flush trains on whatever is buffered
    assert ids(filler.flush(3)) == ["f"] and len(filler) == 0


def test_the_buffer_holds_fewer_than_one_batch_by_default() -> None:
    filler = AdaptiveBatchFiller(delta=0.0)
    batch, stats = filler.fill([group(t, 0, 1) for t in "abcdefg"], 3)
    assert ids(batch) == ["a", "b", "c"]
    assert ids(list(filler.buffer)) == ["d", "e"]  # |buffer| < n, as in the paper
    assert stats["overflow_groups"] == 2.0
    assert filler.totals["groups_overflowed"] == 2


def test_state_round_trips_through_json_for_exact_resume() -> None:
    @attrs.frozen
    class Item:
        name: str
        reward: float
        ids: torch.Tensor = attrs.field(eq=False)

    def make(tag: str, *rewards: float) -> list[Item]:
        return [Item(f"{tag}{i}", r, torch.arange(i + 2)) for i, r in enumerate(rewards)]

    def encode(item: Item) -> dict:
        return {"name": item.name, "reward": item.reward, "ids": item.ids.tolist()}

    def decode(data: dict) -> Item:
        return Item(data["name"], data["reward"], torch.tensor(data["ids"]))

    stream = [[make(f"s{s}g{g}", *(torch.rand(4) > 0.5).float().tolist()) for g in range(3)]
              for s in range(6)]  # fmt: skip
    torch.manual_seed(0)
    unbroken = AdaptiveBatchFiller[Item](delta=0.0)
    resumed = AdaptiveBatchFiller[Item](delta=0.0)
    for step, new in enumerate(stream):
        a, stats_a = unbroken.fill(new, 2)
        b, stats_b = resumed.fill(new, 2)
        assert stats_a == stats_b
        assert [[i.name for i in g] for g in a or []] == [[i.name for i in g] for g in b or []]
        if step == 2:  # "kill" the second filler: save, serialise, restore into a fresh one
            text = json.dumps(resumed.state_dict(encode))
            resumed = AdaptiveBatchFiller[Item](delta=0.0)
            resumed.load_state_dict(json.loads(text), decode)
            assert [[i.name for i in g] for g in resumed.buffer] == [
                [i.name for i in g] for g in unbroken.buffer
            ]
            assert torch.equal(resumed.buffer[0][1].ids, unbroken.buffer[0][1].ids)
    assert unbroken.totals == resumed.totals
    assert unbroken.totals["groups_seen"] == 18


def test_bad_state_and_arguments_are_clear_errors() -> None:
    filler = AdaptiveBatchFiller()
    with pytest.raises(ValueError, match="state version"):
        filler.load_state_dict({"version": 99, "groups": []})
    with pytest.raises(ValueError, match="delta must be >= 0"):
        AdaptiveBatchFiller(delta=-1)
    with pytest.raises(ValueError, match="batch_groups must be > 0"):
        filler.fill([], 0)
    with pytest.raises(TypeError, match="cannot read a reward from a object"):
        filler.fill([[object(), object()]], 1)


def test_rewards_are_read_from_numbers_mappings_attributes_and_reward_records() -> None:
    class Rollout:
        def __init__(self, reward: object) -> None:
            self.reward = reward

    assert default_reward(0.5) == 0.5
    assert default_reward({"reward": 1}) == 1.0
    assert default_reward(Rollout(torch.tensor(0.25))) == 0.25
    assert default_reward(Rollout(Reward(value=0.75, recall=1.0, precision=0.6))) == 0.75
    custom = AdaptiveBatchFiller(reward=lambda item: item[1])
    batch, _ = custom.fill([[("a", 0.0), ("b", 1.0)]], 1)
    assert batch == [[("a", 0.0), ("b", 1.0)]]
