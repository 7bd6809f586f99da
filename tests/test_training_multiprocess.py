"""The ``sft`` trainer under ``accelerate launch`` with two CPU processes (gloo): the replicas
stay identical, and they equal a one-process run of the same global batch."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import torch
from conftest import free_port
from test_training_conversations import write_conversations
from transformers import AutoModelForCausalLM

from astra_core.context import StageContext
from astra_core.options import ComponentSpec
from astra_core.plugins import load_plugins
from astra_core.registry import ComponentBuilder

TINY = {"vocab_size": 512, "hidden_size": 64, "num_layers": 2, "intermediate_size": 128}
# 2 processes x batch 2 x 2 micro-batches: 8 conversations per step, split across processes
OPTIONS = {
    "model": "tiny",
    "tiny": TINY,
    "trajectories": "",
    "batch_size": 2,
    "grad_accum": 2,
    "max_steps": 6,
    "lr": 3e-3,
    "checkpoint_every": 3,
}

# Run by every process: train, then write a hash of this process's own replica.
SCRIPT = """
import hashlib, json, os, sys
from pathlib import Path
from astra_core.context import StageContext
from astra_core.options import ComponentSpec
from astra_core.plugins import load_plugins
from astra_core.registry import ComponentBuilder

run_dir, options = Path(sys.argv[1]), json.loads(sys.argv[2])
builder = ComponentBuilder(load_plugins().registry, seed=0, workdir=run_dir)
trainer = builder.build("trainer", ComponentSpec("sft", options))
summary = trainer.run(StageContext("train-sft", run_dir=run_dir, builder=builder, quiet=True))
digest = hashlib.sha256()
for name, tensor in sorted(trainer.model.state_dict().items()):
    digest.update(name.encode())
    digest.update(tensor.detach().contiguous().numpy().tobytes())
rank = int(os.environ["RANK"])
out = {"hash": digest.hexdigest(), "summary": summary, "world": int(os.environ["WORLD_SIZE"])}
(run_dir / f"replica-{rank}.json").write_text(json.dumps(out))
"""


def state_hash(model: Any) -> str:
    import hashlib

    digest = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().contiguous().numpy().tobytes())
    return digest.hexdigest()


@pytest.mark.parametrize("lora", [False, True], ids=["full", "lora"])
def test_two_cpu_processes_keep_identical_replicas(tmp_path: Path, lora: bool) -> None:
    data = write_conversations(tmp_path / "train.jsonl", 48, seed=4)
    options = {**OPTIONS, "data_files": [str(data)]}
    if lora:  # DDP over the adapters only; the saved model is merged
        options["lora"] = {"r": 4}
    script = tmp_path / "train.py"
    script.write_text(SCRIPT, encoding="utf-8")
    run_dir = tmp_path / "two"
    env = {**os.environ, "ACCELERATE_USE_CPU": "1", "OMP_NUM_THREADS": "1"}
    cmd = [
        sys.executable, "-m", "accelerate.commands.launch",
        "--multi_gpu", "--num_processes", "2", "--num_machines", "1",
        "--mixed_precision", "no", "--dynamo_backend", "no",
        "--main_process_port", str(free_port()),
        str(script), str(run_dir), json.dumps(options),
    ]  # fmt: skip
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-4000:]

    replicas = [json.loads((run_dir / f"replica-{r}.json").read_text()) for r in (0, 1)]
    assert [r["world"] for r in replicas] == [2, 2]
    assert replicas[0]["hash"] == replicas[1]["hash"]
    summary = replicas[0]["summary"]
    assert summary["processes"] == 2 and summary["loss_last"] < summary["loss_first"]
    # the main process alone saved the model and logged each step once
    saved = AutoModelForCausalLM.from_pretrained(run_dir / "train-sft" / "model")
    assert state_hash(saved) == replicas[0]["hash"]
    lines = (run_dir / "train-sft" / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(x)["step"] for x in lines] == list(range(1, 7))
    assert (run_dir / "train-sft" / "checkpoints" / "step-000003" / "state").is_dir()

    # one process with the same 8 conversations per step lands on the same weights
    builder = ComponentBuilder(load_plugins().registry, seed=0, workdir=tmp_path / "one")
    trainer = builder.build("trainer", ComponentSpec("sft", {**options, "batch_size": 4}))
    trainer.run(StageContext("train-sft", run_dir=tmp_path / "one", builder=builder, quiet=True))
    one = trainer.model.state_dict()
    for name, tensor in saved.state_dict().items():
        torch.testing.assert_close(one[name], tensor, rtol=0, atol=1e-5)
