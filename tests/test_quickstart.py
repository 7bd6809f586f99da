"""The quickstart config: valid against the installed plugins, and all five stages run end to end
from it (at a small size: the full run is the README's main command)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from astra_training.report_sections import EVAL_ROWS

try:
    import tomllib
except ImportError:  # Python 3.10
    import tomli as tomllib

from astra_core._splits import is_holdout
from astra_core.records import Arena
from astra_core.store import RecordStore

QUICKSTART = Path(__file__).resolve().parents[1] / "examples" / "quickstart.toml"
SANDBOX = "bubblewrap" if shutil.which("bwrap") else "subprocess"


def test_quickstart_config_checks():
    result = subprocess.run(
        [sys.executable, "-m", "astra_core.cli", "config", "check", str(QUICKSTART)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "synth-trajectories, synth-arenas, train-sft, train-rl, eval" in result.stdout


def _here(sandbox: str | dict) -> dict:
    """The quickstart's sandbox with its options, on the backend this machine has."""
    return {**(sandbox if isinstance(sandbox, dict) else {}), "name": SANDBOX}


def shrunk() -> dict:
    """The quickstart with every size cut down; the structure and the components are its own."""
    data = tomllib.loads(QUICKSTART.read_text())
    data["synth-trajectories"]["limit"] = 20
    gen = data["synth-arenas"]["generator"]
    gen.update(count=20, sandbox=_here(gen["sandbox"]))
    sft = data["train-sft"]["trainer"]
    sft.update(sandbox=_here(sft["sandbox"]), max_steps=3, epochs=1)
    rl = data["train-rl"]["trainer"]
    rl.update(sandbox=_here(rl["sandbox"]), steps=1, groups_per_step=2, group_size=2)
    rl.update(checkpoint_every=0)
    rl["rollout"].update(max_turns=2, max_new_tokens=16)
    ev = data["eval"]["evaluator"]
    ev.update(sandbox=_here(ev["sandbox"]), limit=3)
    ev["rollout"].update(max_turns=2, max_new_tokens=16)
    return data


@pytest.mark.slow
def test_quickstart_runs_every_stage_and_reports_three_models(small_quickstart):
    data, report, tmp_path = small_quickstart
    assert [s.stage for s in report.stages] == [
        "synth-trajectories",
        "synth-arenas",
        "train-sft",
        "train-rl",
        "eval",
    ]
    assert all(s.status == "complete" for s in report.stages), report.to_dict()
    sft = report.stage("train-sft").metrics
    ev = report.stage("eval").metrics
    for model in ("train-sft/base", "train-sft", "train-rl"):
        assert 0.0 <= ev[f"{model}/reward"] <= 1.0
        assert ev[f"{model}/episodes"] == ev["arenas"] == 3
    # SFT replays exactly the training arenas; eval runs held-out ones only
    arenas = list(RecordStore(tmp_path / "synth-arenas", Arena).iter_records())
    assert all(a.held_out == is_holdout(a.id, 0.2) for a in arenas)  # split by synth-arenas
    training = [a for a in arenas if not a.held_out]
    assert sft["data_arena_demonstrations"] == len(training) > 0
    renamings = data["train-sft"]["trainer"].get("arena_demo_renamings", 0)
    assert sft.get("data_arena_demonstrations_renamed", 0) == renamings * len(training)
    by_question = {a.question: a for a in arenas}
    episodes = (tmp_path / "eval" / "episodes-train-sft.jsonl").read_text().splitlines()
    for line in episodes:
        question = next(m["content"] for m in json.loads(line)["messages"] if m["role"] == "user")
        assert by_question[question].held_out
    text = (tmp_path / "report.md").read_text()
    assert "train-sft/base" in text and "train-rl" in text
    assert "call arguments copied verbatim" in text
    table = text.split("## Eval on", 1)[1].split("\n\n", 2)[1].splitlines()
    for _, label in EVAL_ROWS:  # every metric measured for every model
        (row,) = [line for line in table if line.startswith(f"| {label} |")]
        assert "-" not in [cell.strip() for cell in row.strip("|").split("|")[1:]], row
