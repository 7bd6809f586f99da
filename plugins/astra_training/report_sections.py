"""What this plugin adds to ``report.md``: the eval of each model side by side, per-stage time,
and the RL reward curve as a PNG."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

log = logging.getLogger("astra.report")

EVAL_ROWS = (
    ("success_rate", "success rate (all sub-questions solved)"),
    ("reward", "mean reward (sub-task F1)"),
    ("recall", "mean recall"),
    ("precision", "mean precision"),
    ("calls_per_episode", "calls per episode"),
    (
        "failed_calls_per_episode",
        "failed calls per episode (malformed, refused or an error answer)",
    ),
    ("copied_args", "call arguments copied verbatim from the question or a tool output"),
    ("turns_per_episode", "turns per episode"),
)


def eval_table(summaries: list[Any]) -> str | None:
    ev = next((s for s in summaries if s.stage == "eval" and s.status == "complete"), None)
    if ev is None:
        return None
    models = [k[: -len("/reward")] for k in ev.metrics if k.endswith("/reward")]
    if not models:
        return None
    header = "| metric | " + " | ".join(f"`{m}`" for m in models) + " |"
    lines = [
        f"## Eval on {ev.metrics.get('arenas', '?')} held-out arenas",
        "",
        header,
        "|---|" + "---:|" * len(models),
    ]
    for key, label in EVAL_ROWS:
        cells = []
        for m in models:
            value = ev.metrics.get(f"{m}/{key}")
            cells.append("-" if value is None else f"{value:.3f}")
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    times = {s.stage: s.duration_s for s in summaries}
    lines += ["", "Time per stage: " + ", ".join(f"{k} {v:.0f} s" for k, v in times.items()) + "."]
    return "\n".join(lines)


def reward_curve(out_dir: Path) -> str | None:
    metrics = out_dir / "train-rl" / "metrics.jsonl"
    if not metrics.exists():
        return None
    rows = []
    for line in metrics.read_text(encoding="utf-8").splitlines():
        try:
            rows.append(json.loads(line))
        except ValueError:
            continue
    rows = [r for r in rows if "reward" in r and "step" in r]
    if not rows:
        return None
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        log.warning("matplotlib is not installed: no reward-curve.png (pip install matplotlib)")
        return None
    steps = [r["step"] for r in rows]
    rewards = [r["reward"] for r in rows]
    window = max(1, len(rewards) // 10)
    smooth = [
        sum(rewards[max(0, i - window + 1) : i + 1]) / len(rewards[max(0, i - window + 1) : i + 1])
        for i in range(len(rewards))
    ]
    fig, ax = plt.subplots(figsize=(7, 4), dpi=110)
    ax.plot(steps, rewards, alpha=0.35, label="batch mean reward")
    ax.plot(steps, smooth, linewidth=2, label=f"moving average ({window} steps)")
    if "success_rate" in rows[0]:
        ax.plot(
            steps,
            [r["success_rate"] for r in rows],
            alpha=0.6,
            linestyle="--",
            label="success rate",
        )
    ax.set_xlabel("RL step")
    ax.set_ylabel("reward (sub-task F1)")
    ax.set_ylim(-0.02, 1.02)
    ax.set_title("train-rl: rollout reward")
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right")
    fig.tight_layout()
    path = out_dir / "reward-curve.png"
    fig.savefig(path)
    plt.close(fig)
    return (
        f"## RL reward curve\n\n![reward curve](reward-curve.png)\n\n"
        f"{len(rows)} steps: reward {rewards[0]:.3f} at the first step, "
        f"{rewards[-1]:.3f} at the last, {smooth[-1]:.3f} averaged over the last {window}."
    )
