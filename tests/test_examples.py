"""The examples run as documented: ``examples/embed.py`` (embedding ASTRA without the CLI)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_embed_example_runs_a_stage_and_scores_the_gold_calls(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "embed.py"), str(tmp_path / "run")],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "synth-arenas wrote 12 arenas" in done.stdout
    assert re.search(r"gold calls: reward 1\.00 \(recall 1\.00, precision 1\.00\)", done.stdout)
    assert (tmp_path / "run" / "synth-arenas" / "manifest.json").exists()
