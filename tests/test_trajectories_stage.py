"""``astra run`` of ``synth-trajectories`` offline from the bundled catalog: the written dataset,
its drop log, resume, and loading it with Hugging Face ``datasets``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import astra

CONFIG = """
[run]
name = "offline-trajectories"
seed = 0

[synth-trajectories.source]
name = "bundled-catalog"

[synth-trajectories.sampler]
name = "offline-chain-walk"
"""


@pytest.fixture(scope="module")
def out_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("stage")
    (tmp / "run.toml").write_text(CONFIG)
    done = astra("run", str(tmp / "run.toml"), "--out", str(tmp / "out"), "-q")
    assert done.returncode == 0, done.stderr
    return tmp / "out"


def test_stage_writes_200_plus_trajectories_and_counts_drops(out_dir: Path):
    stage = out_dir / "synth-trajectories"
    rows = [
        json.loads(line)
        for p in sorted(stage.glob("data-*.jsonl"))
        for line in p.read_text().splitlines()
    ]
    assert len(rows) >= 200
    assert all(r["status"] == "ok" for r in rows)
    assert all(2 <= len(r["metadata"]["chain"]) <= 5 for r in rows)
    drops = [json.loads(line) for line in (stage / "dropped.jsonl").read_text().splitlines()]
    assert drops and all(d["reason"] and d["id"] for d in drops)
    assert {d["id"] for d in drops}.isdisjoint({r["id"] for r in rows})


def test_rerun_resumes_with_nothing_new(out_dir: Path):
    before = sum(1 for p in (out_dir / "synth-trajectories").glob("data-*.jsonl") for _ in p.open())
    done = astra("run", str(out_dir.parent / "run.toml"), "--out", str(out_dir), "-q")
    assert done.returncode == 0, done.stderr
    after = sum(1 for p in (out_dir / "synth-trajectories").glob("data-*.jsonl") for _ in p.open())
    assert after == before


def test_output_loads_with_hugging_face_datasets(out_dir: Path):
    datasets = pytest.importorskip("datasets")
    files = [str(p) for p in sorted((out_dir / "synth-trajectories").glob("data-*.jsonl"))]
    data = datasets.load_dataset("json", data_files=files, split="train")
    assert data.num_rows >= 200
    row = data[0]
    assert row["messages"][0]["role"] == "system"
    call = next(m for m in row["messages"] if m.get("tool_calls"))["tool_calls"][0]
    assert isinstance(json.loads(call["function"]["arguments"]), dict)
    assert row["tools"][0]["type"] == "function"
