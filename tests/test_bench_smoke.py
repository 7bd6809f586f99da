"""Every script in bench/ runs end to end at a tiny size and prints its ratio.

The sizes are far too small for the numbers to mean anything; what is checked is that each
script still runs against the current code, prints its ratio and target, and exits 0 when it
says the target is met and 1 when it says it is missed.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# script -> its tiny arguments ({tmp} is a scratch directory); "stdout" scripts print one JSON
# object with --json, the others write it to {tmp}/out.json
TINY = {
    "arenas_verified.py": ["--count", "4", "--json"],
    "graph_scale.py": ["--servers", "4", "--tools", "24", "--fractions", "1.0", "--json"],
    "sandbox_calls.py": ["--calls", "3", "--fresh-calls", "2", "--json"],
    "llm_rollout_throughput.py": ["--latency-ms", "1", "--requests", "8", "--serial-requests",
                                  "4", "--json", "{tmp}/out.json"],
    "sft_vs_trl.py": ["--steps", "2", "--warmup", "1", "--repeats", "1", "--batch-size", "2",
                      "--json", "{tmp}/out.json"],
    "rollout_vs_generate.py": ["--cache", "{tmp}/cache", "--arenas", "2", "--sft-steps", "5",
                               "--repeats", "1", "--max-new-tokens", "16", "--max-turns", "2",
                               "--json", "{tmp}/out.json"],
    "grpo_vs_trl.py": ["--cache", "{tmp}/cache", "--arenas", "2", "--sft-steps", "5",
                       "--steps", "1", "--warmup", "0", "--groups", "1", "--max-new-tokens", "16",
                       "--max-turns", "2", "--json", "{tmp}/out.json"],
    "qa_arenas_concurrency.py": ["--questions", "4", "--latency-ms", "1", "--concurrency", "4",
                                 "--json", "{tmp}/out.json"],
    "train_at_scale.py": ["--shape", "tiny", "--sft-steps", "3", "--rl-steps", "1", "--groups",
                          "1", "--group-size", "2", "--arenas", "6", "--batch-size", "2",
                          "--json", "{tmp}/out.json"],
}  # fmt: skip

# where each script's JSON holds the figure it prints against its peer, limit or target
FIGURE = {
    "arenas_verified.py": ("replay_arenas_per_s",),
    "graph_scale.py": ("growth_ratio", "total_s"),
    "sandbox_calls.py": ("subprocess", "session_vs_fresh"),
    "llm_rollout_throughput.py": ("speedup",),
    "sft_vs_trl.py": ("ratio_vs_trl", "ours", "tokens_per_s"),
    "rollout_vs_generate.py": ("ratio",),
    "grpo_vs_trl.py": ("ratio_step_s",),
    "qa_arenas_concurrency.py": ("ratio",),
    "train_at_scale.py": ("memory_ratio",),
}


def test_every_bench_script_is_covered():
    scripts = {p.name for p in (ROOT / "bench").glob("*.py") if not p.name.startswith("_")}
    assert scripts == set(TINY) | {"copy_formation.py"}
    assert set(FIGURE) == set(TINY)


def _run(script: str, args: list[str], tmp: Path) -> subprocess.CompletedProcess[str]:
    argv = [a.replace("{tmp}", str(tmp)) for a in args]
    return subprocess.run(
        [sys.executable, str(ROOT / "bench" / script), *argv],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )


@pytest.mark.slow
@pytest.mark.parametrize("script", sorted(TINY))
def test_bench_script_runs_at_a_tiny_size(script, tmp_path):
    done = _run(script, TINY[script], tmp_path)
    assert "Traceback" not in done.stderr, done.stderr[-3000:]
    out = tmp_path / "out.json"
    data = json.loads(out.read_text() if out.exists() else done.stdout)
    figure = data
    for key in FIGURE[script]:
        figure = figure[key]
    assert isinstance(figure, (int, float)) and figure > 0, (FIGURE[script], figure)
    if "meets_target" in data:  # exit status 1 says the target was missed
        assert done.returncode == (0 if data["meets_target"] else 1), done.stderr[-2000:]
    else:
        assert done.returncode in (0, 1), done.stderr[-2000:]


@pytest.mark.slow
def test_copy_formation_runs_at_a_tiny_size(tmp_path):
    done = _run("copy_formation.py", ["--lrs", "1e-3", "--steps", "20", "--every", "10"], tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "lr 0.001: copy accuracy every 10 steps" in done.stdout
    assert "of the limit" in done.stdout
