"""SFT and RL steps of a ~0.5 B-parameter model: tokens/s and peak memory, against the device's.

Runs the real stages (``synth-arenas`` -> ``train-sft`` -> ``train-rl``) in this process, from a
config built here, with nothing downloaded: the ``offline-world`` arenas, demonstrations replayed
from them, and a model built from scratch by the ``tiny`` builder at a Qwen3-0.6B-like shape
(``--shape half-billion``: hidden 1024, 28 layers, 16 query / 8 key-value heads of 128, MLP 3072,
a 2k BPE vocabulary trained on the run's data: about 0.45 B parameters). Weights and optimizer
are float32 with bf16 autocast for SFT (``mixed_precision = "bf16"``) and the RL policy runs in
bfloat16 (``rollout.dtype``) on a GPU; on a CPU everything is float32 (``--shape tiny`` is the
size for that). The weights are random and the SFT is short, so a real reward would be 0 for
every episode and every group would be filtered out before the update: RL here is rewarded 0, 1,
0, 1, ... in scoring order (the ``alternating`` verifier this script registers), so every group
trains. What is measured is the cost of a step at this size, not learning.

It prints, per stage: seconds, SFT training tokens/s and step time, RL step time split into
rollout and update with the rollout's generated tokens/s, and the peak memory
(``torch.cuda.max_memory_allocated`` on a GPU, the process's peak RSS on a CPU). The limit is
the device's memory measured in the same run (GPU total, or the machine's RAM); the ratio is
the larger stage peak over it. Target: <= 0.9 (both stages fit with room to spare).

    python bench/train_at_scale.py [--shape half-billion|tiny] [--sft-steps 20] [--batch-size 8]
        [--rl-steps 2] [--groups 2] [--group-size 4] [--arenas 48] [--out DIR] [--json OUT]

It has run only at ``--shape tiny`` on a CPU so far (tests/test_bench_smoke.py; no session has
had a GPU yet); the half-billion shape builds (0.443 B parameters). On a GPU machine run it as one
call, e.g. ``timeout 480 python bench/train_at_scale.py --json $OUT/scale.json``, and put the
numbers in the issue note.
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from astra_core import hookimpl

SHAPES: dict[str, dict[str, Any]] = {
    "half-billion": {
        "vocab_size": 2048,
        "architecture": "qwen3",
        "hidden_size": 1024,
        "num_layers": 28,
        "num_heads": 16,
        "num_kv_heads": 8,
        "head_dim": 128,
        "intermediate_size": 3072,
        "tie_word_embeddings": True,
    },
    "tiny": {"vocab_size": 512, "hidden_size": 64, "num_layers": 2, "intermediate_size": 128},
}
TARGET = 0.9


def config(args: argparse.Namespace, cuda: bool) -> dict[str, Any]:
    sandbox = "bubblewrap" if shutil.which("bwrap") else "subprocess"
    return {
        "run": {"name": "train-at-scale", "seed": 0},
        "synth-arenas": {
            "generator": {"name": "offline-world", "count": args.arenas, "sandbox": sandbox}
        },
        "train-sft": {
            "trainer": {
                "name": "sft",
                "model": "tiny",
                "tiny": SHAPES[args.shape],
                "trajectories": "",
                "arena_demos": "synth-arenas",
                "sandbox": sandbox,
                "batch_size": args.batch_size,
                "max_steps": args.sft_steps,
                "lr": 1e-4,
                "mixed_precision": "bf16" if cuda else "no",
                "max_length": 2048,
            }
        },
        "train-rl": {
            "trainer": {
                "name": "rl",
                "sandbox": sandbox,
                "steps": args.rl_steps,
                "groups_per_step": args.groups,
                "group_size": args.group_size,
                "max_fill_rounds": 1,
                "verifier": "alternating",
                "lr": 1e-6,
                "checkpoint_every": 0,
                "rollout": {
                    "dtype": "bfloat16" if cuda else "float32",
                    "max_new_tokens": 96,
                    "max_turns": 3,
                    "max_length": 2048,
                },
            }
        },
    }


class AlternatingVerifier:
    """Rewards 0, 1, 0, 1, ... in scoring order: the episodes of a group always differ."""

    def __init__(self) -> None:
        self.scored = 0

    def score(self, arena: Any, episode: Any) -> Any:
        from astra_core.records import Reward

        self.scored += 1
        return Reward(value=float(self.scored % 2))


class AlternatingPlugin:
    @hookimpl
    def astra_register_verifiers(self, registry: Any) -> None:
        registry.add("alternating", lambda options, builder: AlternatingVerifier())


def peak_bytes(cuda: bool) -> int:
    import torch

    if cuda:
        return int(torch.cuda.max_memory_allocated())
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux: KiB


def device_bytes(cuda: bool) -> int:
    import os

    import torch

    if cuda:
        return int(torch.cuda.get_device_properties(0).total_memory)
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shape", choices=sorted(SHAPES), default="half-billion")
    parser.add_argument("--sft-steps", type=int, default=20)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--rl-steps", type=int, default=2)
    parser.add_argument("--groups", type=int, default=2)
    parser.add_argument("--group-size", type=int, default=4)
    parser.add_argument("--arenas", type=int, default=48)
    parser.add_argument("--out", help="run directory (default: a temporary one, removed)")
    parser.add_argument("--json", metavar="OUT", help="also write the results here")
    args = parser.parse_args()

    import torch

    from astra_core.config import parse_config
    from astra_core.pipeline import prepare, run_stage
    from astra_core.plugins import load_plugins

    cuda = torch.cuda.is_available()
    out = Path(args.out) if args.out else Path(tempfile.mkdtemp(prefix="astra-scale-"))
    plugins = load_plugins(objects=[("alternating", AlternatingPlugin())])
    resolved, plugins = prepare(parse_config(config(args, cuda)), plugins=plugins)
    stages: dict[str, dict[str, Any]] = {}
    for stage in ("synth-arenas", "train-sft", "train-rl"):
        if cuda:
            torch.cuda.reset_peak_memory_stats()
        t0 = time.perf_counter()
        summary = run_stage(stage, resolved, plugins, out, quiet=True)
        stages[stage] = {
            "seconds": round(time.perf_counter() - t0, 2),
            "peak_gb": round(peak_bytes(cuda) / 2**30, 2),
            "metrics": summary.metrics,
        }
    sft, rl = stages["train-sft"]["metrics"], stages["train-rl"]["metrics"]
    limit = device_bytes(cuda)
    peak = max(stages[s]["peak_gb"] for s in ("train-sft", "train-rl")) * 2**30
    ratio = peak / limit
    result = {
        "device": torch.cuda.get_device_name(0) if cuda else f"CPU ({platform.machine()})",
        "shape": args.shape,
        "parameters": sft.get("parameters"),
        "precision": "bf16 autocast (SFT), bfloat16 policy (RL)" if cuda else "float32",
        "sft": {
            "steps": sft.get("steps"),
            "batch_size": args.batch_size,
            "tokens_per_s": round(sft.get("tokens_per_s", 0.0), 1),
            "train_s": sft.get("train_s"),
            "step_s": round(sft["train_s"] / max(1, sft["steps"]), 3) if "train_s" in sft else None,
            "peak_gb": stages["train-sft"]["peak_gb"],
        },
        "rl": {
            "steps": args.rl_steps,
            "episodes_per_step": args.groups * args.group_size,
            # the last step's (the first one's also warms up the kernels)
            "step_s": round(rl.get("rollout_s", 0.0) + rl.get("train_s", 0.0), 3),
            "rollout_s": round(rl.get("rollout_s", 0.0), 3),
            "train_s": round(rl.get("train_s", 0.0), 3),
            "rollout_tokens_per_s": round(rl.get("tokens_per_s", 0.0), 1),
            "trained_sequences": rl.get("trained_sequences"),
            "peak_gb": stages["train-rl"]["peak_gb"],
        },
        "stage_seconds": {s: v["seconds"] for s, v in stages.items()},
        "device_gb": round(limit / 2**30, 1),
        "memory_ratio": round(ratio, 3),
        "target": TARGET,
        "meets_target": ratio <= TARGET,
    }
    text = json.dumps(result, indent=2)
    print(text)
    if args.json:
        Path(args.json).write_text(text + "\n", encoding="utf-8")
    if not args.out:
        shutil.rmtree(out, ignore_errors=True)
    return 0 if result["meets_target"] else 1


if __name__ == "__main__":
    sys.exit(main())
