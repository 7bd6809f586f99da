"""Trackers: the JSONL log, W&B in offline mode (read back from the run file) and the console."""

from __future__ import annotations

import io
import json
import math
import time
from pathlib import Path
from typing import Any

import pytest
import torch
from astra_trackers import ConsoleTracker
from astra_trackers.options import ConsoleOptions
from astra_trackers.wandb_offline import read_history

from astra_core.context import StageContext
from astra_core.options import ComponentSpec
from astra_core.plugins import load_plugins
from astra_core.protocols import Tracker
from astra_core.registry import ComponentBuilder


@pytest.fixture(scope="module")
def registry():
    return load_plugins().registry


def builder_at(registry, workdir: Path) -> ComponentBuilder:
    return ComponentBuilder(registry, workdir=workdir)


def read_lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_trackers_are_registered(registry) -> None:
    assert {"jsonl", "wandb", "console"} <= set(registry.names("tracker"))
    assert registry.get("tracker", "jsonl").plugin == "trackers"


# --- jsonl -------------------------------------------------------------------------------------


def test_jsonl_appends_one_line_per_step_under_the_run_directory(
    registry, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("RANK", raising=False)
    tracker = builder_at(registry, tmp_path).build("tracker", "jsonl")
    assert isinstance(tracker, Tracker)
    tracker.log({"loss": 0.5, "reward": torch.tensor(0.25)}, 1)
    tracker.log({"loss": float("nan"), "phase": "rl", "ok": True, "count": 3}, 2)
    # flushed at once: readable before close (a killed run keeps its lines)
    first = read_lines(tmp_path / "metrics.jsonl")
    assert [line["step"] for line in first] == [1, 2]
    tracker.close()
    lines = read_lines(tmp_path / "metrics.jsonl")
    assert {k: v for k, v in lines[0].items() if k != "time"} == {
        "loss": 0.5, "reward": 0.25, "step": 1,
    }  # fmt: skip
    assert lines[1]["loss"] is None  # NaN is not JSON
    assert (lines[1]["phase"], lines[1]["ok"], lines[1]["count"]) == ("rl", True, 3)
    assert all(isinstance(line["time"], float) for line in lines)
    # a second tracker (a resumed run) appends instead of overwriting
    again = builder_at(registry, tmp_path).build("tracker", "jsonl")
    again.log({"loss": 0.1}, 3)
    again.close()
    assert [line["step"] for line in read_lines(tmp_path / "metrics.jsonl")] == [1, 2, 3]


def test_jsonl_options_path_and_timestamps(registry, tmp_path: Path) -> None:
    spec = ComponentSpec("jsonl", {"path": "logs/train.jsonl", "timestamps": False})
    tracker = builder_at(registry, tmp_path / "run").build("tracker", spec)
    tracker.log({"a": 1.0}, 7)
    tracker.close()
    assert read_lines(tmp_path / "run" / "logs" / "train.jsonl") == [{"a": 1.0, "step": 7}]
    absolute = tmp_path / "elsewhere.jsonl"
    tracker = builder_at(registry, tmp_path / "run").build(
        "tracker", ComponentSpec("jsonl", {"path": str(absolute)})
    )
    tracker.log({"a": 2.0}, 1)
    tracker.close()
    assert read_lines(absolute)[0]["a"] == 2.0


def test_only_the_main_process_writes(
    registry, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RANK", "1")
    tracker = builder_at(registry, tmp_path).build("tracker", "jsonl")
    tracker.log({"a": 1.0}, 1)
    tracker.close()
    assert not (tmp_path / "metrics.jsonl").exists()
    every = builder_at(registry, tmp_path).build(
        "tracker", ComponentSpec("jsonl", {"main_process_only": False})
    )
    every.log({"a": 1.0}, 1)
    every.close()
    assert len(read_lines(tmp_path / "metrics.jsonl")) == 1


def test_stage_context_sends_metrics_to_the_trackers(registry, tmp_path: Path) -> None:
    builder = builder_at(registry, tmp_path)
    tracker = builder.build("tracker", "jsonl")
    ctx = StageContext("train-rl", run_dir=tmp_path, builder=builder, trackers=[tracker])
    for step in range(1, 4):
        ctx.log_metrics({"reward": step / 10}, step)
    tracker.close()
    rewards = [line["reward"] for line in read_lines(tmp_path / "metrics.jsonl")]
    assert rewards == [0.1, 0.2, 0.3]


# --- wandb -------------------------------------------------------------------------------------


def offline_runs(root: Path) -> list[Path]:
    return sorted((root / "wandb").glob("offline-run-*"))


def history(run_dir: Path, rows: int, timeout_s: float = 30.0) -> list[dict[str, Any]]:
    """The run's logged rows, once ``rows`` of them are in its file: wandb's own service process
    writes it and can still be flushing when ``finish()`` returns (a CI run under load read an
    empty history)."""
    deadline = time.monotonic() + timeout_s
    while True:
        found = read_history(run_dir)
        if len(found) >= rows or time.monotonic() > deadline:
            return found
        time.sleep(0.1)


def test_wandb_offline_writes_the_logged_metrics_under_wandb_dir(
    registry, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_DIR", str(tmp_path / "wb"))
    monkeypatch.setenv("WANDB_SILENT", "true")
    monkeypatch.delenv("RANK", raising=False)
    spec = ComponentSpec("wandb", {"project": "astra-test", "name": "unit"})
    tracker = builder_at(registry, tmp_path / "run").build("tracker", spec)
    assert isinstance(tracker, Tracker)
    # train-sft steps 1-2, then train-rl counting from 1 again: every row must be kept
    tracker.log({"loss": 2.0}, 1)
    tracker.log({"loss": 1.5, "lr": torch.tensor(1e-3)}, 2)
    tracker.log({"reward": 0.25, "loss": 0.75}, 1)
    tracker.close()
    tracker.close()  # closing twice is harmless
    runs = offline_runs(tmp_path / "wb")
    assert len(runs) == 1
    assert not (tmp_path / "run" / "wandb").exists()
    rows = history(runs[0], 3)
    logged = [{k: v for k, v in row.items() if not k.startswith("_")} for row in rows]
    assert logged == [
        {"loss": 2.0, "step": 1},
        {"loss": 1.5, "lr": pytest.approx(1e-3), "step": 2},
        {"reward": 0.25, "loss": 0.75, "step": 1},
    ]


def test_wandb_options_override_the_environment(
    registry, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WANDB_MODE", "disabled")
    monkeypatch.delenv("WANDB_DIR", raising=False)
    monkeypatch.setenv("WANDB_SILENT", "true")
    monkeypatch.delenv("RANK", raising=False)
    builder = builder_at(registry, tmp_path / "run")
    # the environment says disabled: nothing is written
    quiet = builder.build("tracker", "wandb")
    quiet.log({"loss": 1.0}, 1)
    quiet.close()
    assert not offline_runs(tmp_path / "run")
    # mode and dir options win over the environment; dir is relative to the run directory
    spec = ComponentSpec("wandb", {"mode": "offline", "dir": "tracking"})
    tracker = builder.build("tracker", spec)
    tracker.log({"loss": 1.0}, 1)
    tracker.close()
    runs = offline_runs(tmp_path / "run" / "tracking")
    assert len(runs) == 1
    assert history(runs[0], 1)[0]["loss"] == 1.0


# --- console -----------------------------------------------------------------------------------


def test_console_prints_every_nth_step_with_chosen_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RANK", raising=False)
    out = io.StringIO()
    tracker = ConsoleTracker(ConsoleOptions(every=2, keys=("reward", "loss")), stream=out)
    for step in range(1, 5):
        tracker.log({"loss": 1 / step, "reward": math.pi * step, "other": 1}, step)
    assert out.getvalue().splitlines() == [
        "step 2 | reward 6.283 | loss 0.5",
        "step 4 | reward 12.57 | loss 0.25",
    ]
    with pytest.raises(ValueError, match="every must be >= 1"):
        ConsoleTracker(ConsoleOptions(every=0))
