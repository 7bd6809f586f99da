"""report.md as a user reads it after a real (small) run: what each stage made, the untrained
model labelled ``base``, the RL reward curve drawn from the run's own metrics and embedded."""

from __future__ import annotations

import json
import re

import pytest

from astra_core.pipeline import run
from astra_core.records import Trajectory
from astra_core.store import RecordStore

TRAJECTORIES = """
[run]
name = "servers"

[synth-trajectories]
limit = 12

[synth-trajectories.source]
name = "bundled-catalog"

[synth-trajectories.sampler]
name = "offline-chain-walk"
max_chains_per_server = 3
"""


def stage_row(text: str, stage: str) -> list[str]:
    (row,) = [line for line in text.splitlines() if line.startswith(f"| {stage} |")]
    return [cell.strip() for cell in row.strip("|").split("|")]


def test_a_resumed_synth_trajectories_reports_the_servers_of_its_dataset(write_config, tmp_path):
    config = write_config(TRAJECTORIES)
    first = run(config, tmp_path / "out", quiet=True).stage("synth-trajectories")
    servers = {
        t.task.server_id
        for t in RecordStore(tmp_path / "out" / "synth-trajectories", Trajectory).iter_records()
    }
    assert first.total == 12 and first.metrics["servers"] == len(servers) >= 2
    # the limit is reached before any server is sampled again: the count is the dataset's
    again = run(config, tmp_path / "out", quiet=True).stage("synth-trajectories")
    assert again.written == 0 and again.total == 12
    assert again.metrics["servers"] == len(servers)
    text = (tmp_path / "out" / "report.md").read_text()
    assert stage_row(text, "synth-trajectories")[:4] == [
        "synth-trajectories",
        "complete",
        "12 records",
        "0",
    ]
    assert re.search(rf"^\| servers \| {len(servers)} \|$", text, flags=re.M)


@pytest.mark.slow
def test_the_report_of_a_small_run_says_what_each_stage_made_and_draws_the_curve(
    small_quickstart,
):
    image = pytest.importorskip("matplotlib.image")
    data, report, tmp_path = small_quickstart
    assert all(s.status == "complete" for s in report.stages), report.to_dict()
    text = (tmp_path / "report.md").read_text()

    # training stages: their steps and model, not "0 records"
    sft = stage_row(text, "train-sft")
    assert sft[2] == f"{data['train-sft']['trainer']['max_steps']} steps, model `train-sft/model`"
    assert sft[3:5] == ["-", "-"]
    assert stage_row(text, "train-rl")[2] == "4 steps, model `train-rl/model`"
    assert (tmp_path / "train-sft" / "model" / "config.json").exists()
    assert (tmp_path / "train-rl" / "model" / "config.json").exists()
    assert stage_row(text, "eval")[2] == "3 arenas evaluated"
    assert stage_row(text, "synth-arenas")[2] == f"{report.stage('synth-arenas').total} records"

    # the eval table names the untrained model `base`
    header = text.split("## Eval on", 1)[1].split("\n\n", 2)[1].splitlines()[0]
    assert header == "| metric | `base` | `train-sft` | `train-rl` |"
    assert "`base` is `train-sft/base`: the untrained model that stage started from." in text

    # the reward curve: embedded, drawn from this run's RL metrics, and not a blank picture
    assert "![RL reward per step](reward-curve.png)" in text
    from astra_training.report_sections import plot_reward_curve

    rows = [json.loads(line) for line in (tmp_path / "train-rl" / "metrics.jsonl").open()]
    curve = plot_reward_curve(tmp_path)
    assert curve is not None
    assert curve.steps == (1, 2, 3, 4)
    assert curve.rewards == tuple(r["reward"] for r in rows)
    assert curve.success_rates == tuple(r["success_rate"] for r in rows)
    pixels = image.imread(tmp_path / "reward-curve.png")[..., :3]
    assert pixels.shape[:2] == (440, 770)  # 7 x 4 inches at 110 dpi
    # the plot's lines are coloured (matplotlib's default blue, orange and green); the frame,
    # grid, ticks and text are grey or black, the background white
    spread = pixels.max(axis=-1) - pixels.min(axis=-1)
    coloured = spread > 0.25
    assert coloured.sum() > 500, "no curve was drawn"
    columns = coloured.any(axis=0).nonzero()[0]
    assert columns.max() - columns.min() > 300  # the curve runs across the plot, step 1 to 4


def test_what_each_stage_made_in_words(tmp_path) -> None:
    """``astra run`` prints, and report.md tabulates, a trainer's steps and model rather than
    the zero records it never writes."""
    from astra_core.report import RunReport, StageSummary

    synth = StageSummary(
        "synth-arenas", "complete", str(tmp_path / "synth-arenas"), 5, 0, 5, {"bad": 2}
    )
    sft = StageSummary(
        "train-sft",
        "complete",
        str(tmp_path / "train-sft"),
        metrics={"steps": 40, "model": str(tmp_path / "train-sft" / "model")},
    )
    report = RunReport("r", None, 0, str(tmp_path), (synth, sft))
    assert report.made(synth) == "5 records (5 new, 2 dropped)"
    assert report.made(sft) == "40 steps, model `train-sft/model`"
    assert "| train-sft | complete | 40 steps, model `train-sft/model` | - | - |" in (
        report.to_markdown()
    )
