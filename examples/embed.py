"""Embedding ASTRA in your own code, without the CLI.

Builds a run config in Python, runs one stage, reads the arenas it wrote, and scores the gold
calls of one arena with the bundled verifier. ``tests/test_examples.py`` runs this file.

    python examples/embed.py runs/embedded
"""

from __future__ import annotations

import sys
from pathlib import Path

import astra_core
from astra_core.config import parse_config
from astra_core.plugins import load_plugins
from astra_core.records import Arena, Episode, ToolCallResult
from astra_core.registry import ComponentBuilder
from astra_core.store import RecordStore


def main(out_dir: str) -> float:
    config = parse_config(
        {
            "run": {"name": "embedded", "seed": 1},
            "synth-arenas": {"generator": {"name": "offline-world", "count": 12}},
        }
    )
    report = astra_core.run(config, out_dir, quiet=True)
    print(f"synth-arenas wrote {report.stage('synth-arenas').total} arenas")

    arenas = list(RecordStore(Path(out_dir) / "synth-arenas", Arena).iter_records())
    arena = arenas[0]
    print(f"{arena.topology}: {arena.question} -> {arena.answer}")

    # Components work alone too: build the paper's reward and score the verified gold calls.
    verifier = ComponentBuilder(load_plugins().registry).build("verifier", "subtask-f1")
    gold = [
        ToolCallResult(sq.call.name, sq.call.arguments, f"result: {sq.answer}")
        for sq in arena.needed
        if sq.call is not None
    ]
    reward = verifier.score(arena, Episode.of_calls(arena, gold))
    print(
        f"gold calls: reward {reward.value:.2f} (recall {reward.recall:.2f}, "
        f"precision {reward.precision:.2f})"
    )
    return reward.value


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "runs/embedded")
