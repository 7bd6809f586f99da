"""A stage killed with SIGKILL resumes with nothing lost and nothing duplicated."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from conftest import PLUGIN_FILES

CONFIG = """
[run]
name = "kill-test"
seed = 5

[plugins]
files = ["{plugin}"]

[synth-arenas]
generator = {{ name = "slow-counter", count = {count}, delay_s = {delay} }}
"""


def lines(stage_dir: Path) -> list[dict]:
    """The complete records: a line still being written (or cut by the kill) has no newline
    yet, and the store drops such a tail when it resumes."""
    out = []
    for shard in sorted(stage_dir.glob("data-*.jsonl")):
        text = shard.read_text()
        complete = text[: text.rfind("\n") + 1]
        out += [json.loads(x) for x in complete.splitlines() if x.strip()]
    return out


def test_sigkill_mid_stage_then_resume(tmp_path):
    count = 40
    cfg = tmp_path / "run.toml"
    cfg.write_text(CONFIG.format(plugin=PLUGIN_FILES / "slow_counter.py", count=count, delay=0.05))
    out = tmp_path / "out"
    stage_dir = out / "synth-arenas"
    proc = subprocess.Popen(
        [sys.executable, "-m", "astra_core.cli", "-q", "run", str(cfg), "--out", str(out)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if stage_dir.exists() and len(lines(stage_dir)) >= 8:
            break
        time.sleep(0.01)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL
    killed_at = len(lines(stage_dir))
    assert 8 <= killed_at < count
    manifest = json.loads((stage_dir / "manifest.json").read_text())
    assert manifest["status"] == "running"  # the killed attempt never marked itself complete

    resumed = subprocess.run(
        [sys.executable, "-m", "astra_core.cli", "-q", "run", str(cfg), "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert resumed.returncode == 0, resumed.stderr
    records = lines(stage_dir)
    ids = [r["id"] for r in records]
    assert len(ids) == len(set(ids)), "a record was written twice"

    # The same run without a kill produces exactly the same set of records.
    fresh = tmp_path / "fresh"
    clean = subprocess.run(
        [sys.executable, "-m", "astra_core.cli", "-q", "run", str(cfg), "--out", str(fresh)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert clean.returncode == 0, clean.stderr
    assert sorted(ids) == sorted(r["id"] for r in lines(fresh / "synth-arenas"))
    expected_kept = sum(1 for i in range(count) if i % 7 != 3)
    assert len(ids) == expected_kept
    manifest = json.loads((stage_dir / "manifest.json").read_text())
    assert manifest["status"] == "complete"
    assert manifest["counts"]["total"] == expected_kept
    assert manifest["dropped"] == {"slow-counter: every seventh item": count - expected_kept}
    assert len(manifest["attempts"]) == 2


def test_sigkill_during_write_leaves_a_torn_line_that_resume_repairs(tmp_path):
    """Kill many times at random moments; whatever state is left, resume completes cleanly."""
    cfg = tmp_path / "run.toml"
    cfg.write_text(CONFIG.format(plugin=PLUGIN_FILES / "slow_counter.py", count=30, delay=0.0))
    out = tmp_path / "out"
    for delay in (0.9, 1.0, 1.1, 1.2):
        proc = subprocess.Popen(
            [sys.executable, "-m", "astra_core.cli", "-q", "run", str(cfg), "--out", str(out)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        time.sleep(delay)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    done = subprocess.run(
        [sys.executable, "-m", "astra_core.cli", "-q", "run", str(cfg), "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    ids = [r["id"] for r in lines(out / "synth-arenas")]
    assert len(ids) == len(set(ids)) == sum(1 for i in range(30) if i % 7 != 3)
