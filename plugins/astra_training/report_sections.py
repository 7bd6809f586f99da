"""What this plugin adds to ``report.md``: the eval of each model side by side, per-stage time,
and the RL reward curve as a PNG."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import attrs

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
    labels = model_labels(models)
    header = "| metric | " + " | ".join(f"`{labels[m]}`" for m in models) + " |"
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
    for m in models:
        if labels[m] != m:
            lines += ["", f"`{labels[m]}` is `{m}`: the untrained model that stage started from."]
    lines += ["", "Time per stage: " + ", ".join(f"{k} {v:.0f} s" for k, v in times.items()) + "."]
    return "\n".join(lines)


def model_labels(models: list[str]) -> dict[str, str]:
    """How the report names each model: ``base`` for the untrained model a stage kept in its
    ``base`` directory (``train-sft/base``) when there is one such model, its name otherwise."""
    labels = {m: m for m in models}
    bases = [m for m in models if m.endswith("/base")]
    if len(bases) == 1 and "base" not in models:
        labels[bases[0]] = "base"
    return labels


@attrs.frozen
class RewardCurve:
    """What ``plot_reward_curve`` drew: the RL steps, each step's batch mean reward, its moving
    average over ``window`` steps, the success rates (empty when not logged) and the PNG."""

    steps: tuple[int, ...]
    rewards: tuple[float, ...]
    smooth: tuple[float, ...]
    window: int
    success_rates: tuple[float, ...]
    path: str


def read_rl_metrics(out_dir: Path) -> list[dict[str, Any]]:
    """The per-step rows of ``train-rl/metrics.jsonl`` that carry a step and a reward."""
    metrics = out_dir / "train-rl" / "metrics.jsonl"
    if not metrics.exists():
        return []
    rows = []
    for line in metrics.read_text(encoding="utf-8").splitlines():
        try:
            rows.append(json.loads(line))
        except ValueError:
            continue
    return [r for r in rows if "reward" in r and "step" in r]


def plot_reward_curve(out_dir: Path) -> RewardCurve | None:
    """Draw ``reward-curve.png`` in ``out_dir`` from the RL metrics; ``None`` (and a warning when
    matplotlib is missing) when there is nothing to draw or nothing to draw with."""
    rows = read_rl_metrics(out_dir)
    if not rows:
        return None
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        from matplotlib.ticker import MaxNLocator
    except ImportError:
        log.warning(
            "matplotlib is not installed: no reward-curve.png (pip install 'astra-agents[plots]')"
        )
        return None
    steps = [int(r["step"]) for r in rows]
    rewards = [float(r["reward"]) for r in rows]
    window = max(1, len(rewards) // 10)
    smooth = [
        sum(rewards[max(0, i - window + 1) : i + 1]) / len(rewards[max(0, i - window + 1) : i + 1])
        for i in range(len(rewards))
    ]
    success = [float(r["success_rate"]) for r in rows] if "success_rate" in rows[0] else []
    fig, ax = plt.subplots(figsize=(7, 4), dpi=110)
    # markers: a run of a few steps still shows each point
    ax.plot(steps, rewards, alpha=0.35, marker="o", markersize=3, label="batch mean reward")
    ax.plot(
        steps,
        smooth,
        linewidth=2,
        label=f"moving average ({window} step{'s' if window > 1 else ''})",
    )
    if success:
        ax.plot(steps, success, alpha=0.6, linestyle="--", label="success rate")
    ax.set_xlabel("RL step")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_ylabel("reward (sub-task F1)")
    ax.set_ylim(-0.02, 1.02)
    ax.set_title("train-rl: rollout reward")
    ax.grid(alpha=0.3)
    ax.legend(loc="best")
    fig.tight_layout()
    path = out_dir / "reward-curve.png"
    fig.savefig(path)
    plt.close(fig)
    return RewardCurve(
        tuple(steps), tuple(rewards), tuple(smooth), window, tuple(success), str(path)
    )


def reward_curve(out_dir: Path) -> str | None:
    """The report's section: ``reward-curve.png`` embedded, and the reward at both ends."""
    curve = plot_reward_curve(out_dir)
    if curve is None:
        return None
    return (
        f"## RL reward curve\n\n![RL reward per step](reward-curve.png)\n\n"
        f"{len(curve.steps)} steps: reward {curve.rewards[0]:.3f} at the first step, "
        f"{curve.rewards[-1]:.3f} at the last, {curve.smooth[-1]:.3f} averaged over the last "
        f"{curve.window}."
    )
