from __future__ import annotations

from astra_training.turn_masks import turn_runs


def test_each_run_of_nonzero_entries_is_one_turn() -> None:
    assert turn_runs([0, 1, 1, 0, 0, 1, 0, 1]) == [(1, 3), (5, 6), (7, 8)]
    assert turn_runs([1, 1, 0]) == [(0, 2)]
    assert turn_runs([0.0, 0.5, 1.0, 0.0]) == [(1, 3)]  # loss weights, not only 0/1
    assert turn_runs([0, 0]) == [] and turn_runs([]) == []
