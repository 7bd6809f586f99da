"""The Accelerate configs in examples/accelerate/ load as Accelerate reads them, each with the
distributed type its comment promises, and the two-CPU one runs a stage as documented."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from accelerate.commands.config.config_args import load_config_from_file

ROOT = Path(__file__).resolve().parent.parent
CONFIGS = ROOT / "examples" / "accelerate"

EXPECTED = {
    "cpu-gloo.yaml": "MULTI_GPU",
    "ddp.yaml": "MULTI_GPU",
    "fsdp2.yaml": "FSDP",
    "deepspeed-zero2.yaml": "DEEPSPEED",
    "deepspeed-zero3.yaml": "DEEPSPEED",
}


def test_every_config_is_listed_here() -> None:
    assert sorted(p.name for p in CONFIGS.glob("*.yaml")) == sorted(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_config_loads_with_its_distributed_type(name: str) -> None:
    config = load_config_from_file(str(CONFIGS / name))
    assert str(config.distributed_type).rsplit(".", 1)[-1] == EXPECTED[name]
    text = (CONFIGS / name).read_text(encoding="utf-8")
    # the command each file documents is the one that uses it
    assert f"--config_file examples/accelerate/{name} -m astra_core.cli run" in text


def test_fsdp_and_zero_configs_shard_what_they_say() -> None:
    fsdp = load_config_from_file(str(CONFIGS / "fsdp2.yaml"))
    assert fsdp.fsdp_config["fsdp_version"] == 2
    zero = {n: load_config_from_file(str(CONFIGS / f"deepspeed-zero{n}.yaml")) for n in (2, 3)}
    assert {n: c.deepspeed_config["zero_stage"] for n, c in zero.items()} == {2: 2, 3: 3}


def test_slurm_script_is_valid_bash_and_launches_one_node_each() -> None:
    script = CONFIGS / "slurm.sh"
    assert subprocess.run(["bash", "-n", str(script)], capture_output=True).returncode == 0
    text = script.read_text(encoding="utf-8")
    assert "--machine_rank \\$SLURM_NODEID" in text and "-m astra_core.cli run" in text


@pytest.mark.slow
def test_cpu_gloo_config_runs_train_sft_on_two_processes(tmp_path: Path) -> None:
    from test_training_conversations import write_conversations

    data = write_conversations(tmp_path / "train.jsonl", 16, seed=1)
    config = tmp_path / "run.toml"
    config.write_text(
        f"""
[run]
seed = 0
[train-sft.trainer]
name = "sft"
model = "tiny"
trajectories = ""
data_files = ["{data}"]
batch_size = 2
max_steps = 2
[train-sft.trainer.tiny]
vocab_size = 320
hidden_size = 32
num_layers = 1
intermediate_size = 64
""",
        encoding="utf-8",
    )
    accelerate = Path(sys.executable).with_name("accelerate")
    cmd = [
        str(accelerate), "launch", "--config_file", str(CONFIGS / "cpu-gloo.yaml"),
        "--main_process_port", "0",
        "-m", "astra_core.cli", "run", str(config), "--out", str(tmp_path / "run"),
    ]  # fmt: skip
    done = subprocess.run(
        cmd,
        capture_output=True,
        text=True,
        timeout=600,
        cwd=ROOT,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert (tmp_path / "run" / "train-sft" / "model" / "config.json").exists()
    # two processes ran the stage, not one
    manifest = (tmp_path / "run" / "train-sft" / "manifest.json").read_text(encoding="utf-8")
    assert '"processes": 2' in manifest
