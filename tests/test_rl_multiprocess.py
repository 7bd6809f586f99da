"""The ``rl`` trainer and the ``arena-eval`` evaluator under ``accelerate launch`` with two CPU
processes (gloo): each process rolls out its half of every step, and the run equals a
one-process run of the same seed (the same episodes, the same weights); a run killed with
SIGKILL resumes to the weights of an unbroken one."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import torch
from astra_training.data_parallel import check_split, rollout_seed, share
from astra_training.models import load_model_and_tokenizer
from conftest import PLUGIN_FILES
from test_rl_training import SANDBOX, make_rl_run
from test_training_multiprocess import free_port

from astra_core.errors import ConfigError

PLUGIN = str(PLUGIN_FILES / "token_parity.py")
SEED = 5
# 4 groups of 2 a step, 2 a process; two fill rounds of groups half of which are dropped (equal
# rewards), so short batches and the carry-over buffer both occur; micro-batches of 2, so a
# process whose share of a short batch is smaller makes idle passes
RL = {
    "name": "rl",
    "verifier": "token-parity",
    "sandbox": SANDBOX,
    "steps": 4,
    "groups_per_step": 4,
    "group_size": 2,
    "groups_per_rollout": 2,
    "max_fill_rounds": 2,
    "lr": 1e-3,
    "micro_batch_size": 2,
    "checkpoint_every": 1,
    "rollout_log": True,
    "rollout": {"max_turns": 2, "max_new_tokens": 24},
}
EVAL = {
    "name": "arena-eval",
    "models": ["train-sft"],
    "greedy": False,  # sampled: each batch's draw must not depend on the process
    "temperature": 1.0,
    "batch_size": 2,  # the 5 held-out arenas in 3 batches: 2 on the first process, 1 on the second
    "sandbox": SANDBOX,
    "rollout": {"max_turns": 2, "max_new_tokens": 24},
}
TIMINGS = ("rollout_s", "train_s", "tokens_per_s", "seconds")


def write_config(tmp: Path, stage: str, key: str, table: dict[str, Any]) -> Path:
    """A run config of ``stage`` alone, its component ``table`` under ``[stage.key]``."""
    lines = [f"[run]\nseed = {SEED}\n[plugins]\nfiles = [{json.dumps(PLUGIN)}]"]
    for name, body in [(f"{stage}.{key}", table)] + [
        (f"{stage}.{key}.{k}", v) for k, v in table.items() if isinstance(v, dict)
    ]:
        lines.append(f"[{name}]")  # JSON's scalars and lists of strings are TOML's
        lines += [f"{k} = {json.dumps(v)}" for k, v in body.items() if not isinstance(v, dict)]
    path = tmp / f"{stage}.toml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def astra_run(config: Path, run_dir: Path, stage: str, *, processes: int) -> list[str]:
    """``astra run`` of one stage, under ``accelerate launch`` with ``processes`` CPU
    processes (gloo) when more than one."""
    cli = ["-m", "astra_core.cli", "-q", "run", str(config), "--out", str(run_dir)]
    cli += ["--stages", stage]
    if processes == 1:
        return [sys.executable, *cli]
    return [
        sys.executable, "-m", "accelerate.commands.launch",
        "--multi_gpu", "--num_processes", str(processes), "--num_machines", "1",
        "--mixed_precision", "no", "--dynamo_backend", "no",
        "--main_process_port", str(free_port()), *cli,
    ]  # fmt: skip


# each process one thread, so that two processes share the two cores as one process would
ENV = {**os.environ, "ACCELERATE_USE_CPU": "1", "OMP_NUM_THREADS": "1"}


def run_stage(
    tmp: Path, run_dir: Path, stage: str, key: str, table: dict[str, Any], n: int
) -> None:
    cmd = astra_run(write_config(tmp, stage, key, table), run_dir, stage, processes=n)
    done = subprocess.run(cmd, env=ENV, capture_output=True, text=True, timeout=400)
    assert done.returncode == 0, done.stderr[-4000:]


def fresh(base: Path, out: Path) -> Path:
    """A run directory with the arenas and the starting model, nothing trained yet."""
    shutil.copytree(base / "synth-arenas", out / "synth-arenas")
    shutil.copytree(base / "train-sft", out / "train-sft")
    return out


def rows(path: Path) -> list[dict[str, Any]]:
    return [json.loads(x) for x in path.read_text().splitlines() if x.strip()]


def metrics(run: Path) -> list[dict[str, Any]]:
    return [
        {k: v for k, v in r.items() if k not in TIMINGS}
        for r in rows(run / "train-rl" / "metrics.jsonl")
    ]


def weights(run: Path) -> dict[str, torch.Tensor]:
    return load_model_and_tokenizer(str(run / "train-rl" / "model"))[0].state_dict()


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_rl_run(tmp_path_factory.mktemp("dp-base"))


@pytest.fixture(scope="module")
def one(base: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("dp-one")
    run = fresh(base, tmp / "run")
    run_stage(tmp, run, "train-rl", "trainer", RL, 1)
    return run


@pytest.fixture(scope="module")
def two(base: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("dp-two")
    run = fresh(base, tmp / "run")
    run_stage(tmp, run, "train-rl", "trainer", RL, 2)
    return run


@pytest.mark.slow
def test_each_process_rolls_out_its_half_and_the_union_is_the_one_process_run(
    one: Path, two: Path
) -> None:
    logs = {r: rows(two / "train-rl" / "rollouts" / f"rank-{r}.jsonl") for r in (0, 1)}
    steps = sorted({x["step"] for x in logs[0]})
    assert steps == [1, 2, 3, 4]
    for step in steps:
        rounds = {x["round"] for x in logs[0] if x["step"] == step}
        for round_ in rounds:
            # contiguous halves of the round's 4 groups, every episode of each group
            for rank, groups in ((0, [0, 1]), (1, [2, 3])):
                mine = [x for x in logs[rank] if (x["step"], x["round"]) == (step, round_)]
                assert sorted((x["group"], x["episode"]) for x in mine) == [
                    (g, e) for g in groups for e in range(2)
                ]
    single = rows(one / "train-rl" / "rollouts" / "rank-0.jsonl")
    # the same arenas, the same completions (the episode id covers the token ids) and rewards
    assert sorted(logs[0] + logs[1], key=lambda x: json.dumps(x, sort_keys=True)) == sorted(
        single, key=lambda x: json.dumps(x, sort_keys=True)
    )
    assert len({x["episode_id"] for x in single}) > len(single) // 2  # sampled, not constant

    # what the run went through: rewards that differ, short batches and a carried-over buffer
    m1, m2 = metrics(one), metrics(two)
    assert [r["step"] for r in m2] == [1, 2, 3, 4]
    assert any(r["filtered_groups"] for r in m1)
    assert any(r["groups_from_buffer"] or r["buffer_size"] for r in m1)
    assert any(r["trained_sequences"] < 8 for r in m1)
    for a, b in zip(m1, m2, strict=True):
        assert a.keys() == b.keys()
        for key in a:  # the main process logs the global numbers
            assert a[key] == pytest.approx(b[key], rel=1e-4, abs=1e-6), key
    w1, w2 = weights(one), weights(two)
    start = load_model_and_tokenizer(str(one / "train-sft" / "model"))[0].state_dict()
    assert any(not torch.equal(w1[k], start[k]) for k in w1)  # it trained
    for key in w1:
        torch.testing.assert_close(w2[key], w1[key], rtol=0, atol=1e-5)
    # one writer: the main process's files only, the stage's manifest and the run's report
    assert sorted(p.name for p in (two / "train-rl").iterdir()) == sorted(
        p.name for p in (one / "train-rl").iterdir()
    )
    manifest = json.loads((two / "train-rl" / "manifest.json").read_text())
    assert manifest["status"] == "complete" and len(manifest["attempts"]) == 1
    assert json.loads((two / "report.json").read_text())["stages"][0]["status"] == "complete"


@pytest.mark.slow
def test_sigkill_under_two_processes_resumes_to_the_unbroken_run(
    base: Path, two: Path, tmp_path: Path
) -> None:
    run = fresh(base, tmp_path / "run")
    cmd = astra_run(write_config(tmp_path, "train-rl", "trainer", RL), run, "train-rl", processes=2)
    proc = subprocess.Popen(
        cmd,
        env=ENV,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,  # the launcher and its two workers, killed together
    )
    checkpoint = run / "train-rl" / "checkpoints" / "step-000002"
    deadline = time.monotonic() + 300
    while not checkpoint.exists() and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert checkpoint.exists() and not (run / "train-rl" / "model").exists()
    run_stage(tmp_path, run, "train-rl", "trainer", RL, 2)

    assert metrics(run) == metrics(two)
    for rank in (0, 1):
        name = f"rollouts/rank-{rank}.jsonl"
        assert rows(run / "train-rl" / name) == rows(two / "train-rl" / name)
    w, unbroken = weights(run), weights(two)
    assert all(torch.equal(w[k], unbroken[k]) for k in unbroken)


@pytest.mark.slow
def test_eval_on_two_processes_equals_one_process(base: Path, tmp_path: Path) -> None:
    single = fresh(base, tmp_path / "one")
    run_stage(tmp_path, single, "eval", "evaluator", EVAL, 1)
    double = fresh(base, tmp_path / "two")
    run_stage(tmp_path, double, "eval", "evaluator", EVAL, 2)

    def results(run: Path) -> dict[str, Any]:
        data = json.loads((run / "eval" / "eval.json").read_text())
        for model in data["models"].values():
            model.pop("seconds")
        return data

    assert results(double) == results(single)
    assert results(single)["arenas"] == 5
    episodes = "episodes-train-sft.jsonl"
    text = (double / "eval" / episodes).read_text()
    assert text == (single / "eval" / episodes).read_text()
    assert len(text.splitlines()) == 5
    assert sorted(p.name for p in (double / "eval").iterdir()) == [
        "episodes-train-sft.jsonl",
        "eval.json",
        "manifest.json",
    ]


@pytest.mark.parametrize(
    ("groups", "per_rollout", "world", "message"),
    [
        (3, 0, 2, "groups_per_step = 3 is not divisible by the 2 processes"),
        (8, 3, 2, "groups_per_rollout = 3 does not divide the 4 groups of each"),
    ],
)
def test_a_step_that_does_not_split_into_whole_groups_is_refused(
    groups: int, per_rollout: int, world: int, message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        check_split("train-rl", groups, per_rollout, world)
    check_split("train-rl", 8, 2, 2)  # 4 a process, in batches of 2


def test_shares_are_contiguous_and_seeds_belong_to_the_group() -> None:
    assert [list(share(7, 3, r)) for r in range(3)] == [[0, 1, 2], [3, 4, 5], [6]]
    assert [list(share(2, 4, r)) for r in range(4)] == [[0], [1], [], []]
    seeds = {rollout_seed(5, s, r, g) for s in range(3) for r in (1, 2) for g in range(4)}
    assert len(seeds) == 24
