"""Rollout throughput: multi-turn ``RolloutEngine`` against plain batched ``model.generate``.

The engine runs a batch of episodes in arenas of the ``offline-world`` generator with the
trainer's default rollout options (``generation_backend = "interleaved"``: one decode loop over
one key/value cache of every live episode, in which each episode's next turn joins as soon as
its own tool calls return): it parses the ``<tool_call>`` blocks, runs them in the arenas'
sandboxed runtime (a fresh session per episode; bubblewrap when ``bwrap`` exists, else
subprocess), appends the tool responses and goes on until each episode stops. Its throughput
is generated tokens per second of the whole ``run()`` (session start-up, tool round-trips,
template rendering and tokenization included).

The limit is one ``model.generate`` call on the same batch size, from the same first-turn
prompts, producing the same number of tokens (each row generates the rollout's mean count, no
early stop): what the model alone can do, with no tools, no turns and no ragged batches.

With the interleaved backend a batch takes about as many forward passes as its longest
episode has tokens, and a group's shared prompt is run once. ``--backend generate`` runs the
old turn-by-turn default instead (padded ``model.generate`` over the live episodes, every turn
waiting for the batch's longest). ``forward_passes`` and ``decode_slots`` (rows summed over
passes) are counted by a forward hook on the policy, whatever the backend.

Both use the same ~1 M-parameter policy (built and fine-tuned to call tools by
``bench/_rl_setup.py``, cached), float32, CPU, the same ``torch.set_num_threads`` and sampling.
The default sampling is top-k 1, so every repeat generates the same tokens. Each side runs once
untimed, then ``--repeats`` pairs (a rollout, then the limit right after it, so both see the same
load from other processes); the median of the pairs' ratios is reported, with the rollout's
breakdown (generation, tool calls and parsing, the rest: sandbox session start-up, prompt
rendering, verifier) and the share of padded decode slots.

Target: rollout tokens/s >= 0.8 x plain generate tokens/s.

    python bench/rollout_vs_generate.py [--groups 2] [--group-size 4] [--repeats 5]
                                        [--top-k 1] [--threads 1] [--reuse-kv-cache]
                                        [--backend interleaved|generate]
                                        [--profile] [--json OUT]

``--reuse-kv-cache`` turns on ``rollout.reuse_kv_cache`` for ``--backend generate`` (off by
default, as in the trainer): each turn then prefills only the tokens added since the last one.

The first run builds the arenas and the policy (about a minute); later runs reuse them from
``--cache`` (shared with ``bench/grpo_vs_trl.py``).
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import os
import platform
import pstats
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import torch

# run as ``python bench/rollout_vs_generate.py``: bench/ is on sys.path
from _rl_setup import SYSTEM_PROMPT, add_setup_arguments, builder, prepare_setup

TARGET = 0.8


class PassCounter:
    """Counts the policy's forward passes and their rows (decode slots: what a batch pays for,
    against the tokens actually kept) through a forward pre-hook, whatever the backend."""

    def __init__(self, model: torch.nn.Module) -> None:
        self.passes = 0
        self.slots = 0
        model.register_forward_pre_hook(self._count, with_kwargs=True)

    def _count(self, module: Any, args: Any, kwargs: dict[str, Any]) -> None:
        ids = kwargs.get("input_ids", args[0] if args else None)
        if ids is not None:
            self.passes += 1
            self.slots += int(ids.shape[0])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_setup_arguments(parser)
    parser.add_argument("--groups", type=int, default=2, help="arenas per batch")
    parser.add_argument("--group-size", type=int, default=4, help="episodes per arena")
    parser.add_argument("--repeats", type=int, default=5, help="timed pairs")
    from astra_training.rl_options import RolloutOptions

    parser.add_argument(
        "--backend",
        choices=["interleaved", "generate"],
        default=RolloutOptions().generation_backend,  # the trainer's default
        help="rollout.generation_backend (default: the trainer's, %(default)s)",
    )
    parser.add_argument(
        "--reuse-kv-cache",
        action="store_true",
        help="rollout.reuse_kv_cache: keep each episode's key/value cache between turns",
    )
    parser.add_argument("--profile", action="store_true", help="cProfile one rollout")
    parser.add_argument("--json", help="also write the numbers to this file")
    args = parser.parse_args()

    from astra_training.generation import Sampling
    from astra_training.models import load_model_and_tokenizer
    from astra_training.rl_trainer import make_engine

    torch.set_num_threads(args.threads)
    setup = prepare_setup(Path(args.cache), arena_count=args.arenas, sft_steps=args.sft_steps)
    b = builder()
    sandbox = b.build("sandbox", setup.sandbox)
    model, tokenizer = load_model_and_tokenizer(str(setup.model_dir), dtype="float32")
    model.eval()
    engine = make_engine(
        model,
        tokenizer,
        RolloutOptions(
            max_turns=args.max_turns,
            max_new_tokens=args.max_new_tokens,
            max_length=4096,
            system_prompt=SYSTEM_PROMPT,
            reuse_kv_cache=args.reuse_kv_cache,
            generation_backend=args.backend,
        ),
        parser=b.build("tool_call_parser", "hermes"),
        verifier=b.build("verifier", "subtask-f1"),
        sandbox=sandbox,
        hook=b.hook,
    )
    counter = PassCounter(model)
    arenas = [setup.arenas[i % len(setup.arenas)] for i in range(args.groups)]
    batch = [a for a in arenas for _ in range(args.group_size)]
    sampling = Sampling(do_sample=True, temperature=args.temperature, top_k=args.top_k)

    # the limit's input: the same first-turn prompts, left-padded
    prompts = [
        engine.chat.prompt_ids(
            [{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": a.question}],
            a.tools,
        )
        for a in batch
    ]
    width = max(len(p) for p in prompts)
    ids = torch.full((len(prompts), width), int(tokenizer.pad_token_id))
    mask = torch.zeros_like(ids)
    for row, p in enumerate(prompts):
        ids[row, width - len(p) :] = torch.tensor(p)
        mask[row, width - len(p) :] = 1

    def rollout(profiler: cProfile.Profile | None) -> dict[str, float]:
        torch.manual_seed(args.seed)
        counter.passes = counter.slots = 0
        if profiler:
            profiler.enable()
        t0 = time.perf_counter()
        rollouts, stats = engine.run(batch, sampling)
        seconds = time.perf_counter() - t0
        if profiler:
            profiler.disable()
        return {
            "seconds": seconds,
            "tokens": stats.generated_tokens,
            "generate_s": stats.generate_seconds,
            "tool_and_parse_s": stats.tool_seconds,
            # sandbox session start-up, prompt rendering, verifier
            "other_s": seconds - stats.generate_seconds - stats.tool_seconds,
            "turns": stats.turns,
            "calls": stats.calls,
            "forward_passes": counter.passes,
            "decode_slots": counter.slots,
            "reward": statistics.mean(r.reward for r in rollouts),
        }

    def plain(tokens: int) -> float:
        torch.manual_seed(args.seed)
        t0 = time.perf_counter()
        with torch.no_grad():
            out = model.generate(
                input_ids=ids,
                attention_mask=mask,
                max_new_tokens=tokens,
                min_new_tokens=tokens,  # no early stop: exactly the rollout's token count
                do_sample=True,
                temperature=args.temperature,
                top_k=args.top_k or None,
                pad_token_id=int(tokenizer.pad_token_id),
            )
        seconds = time.perf_counter() - t0
        assert out.shape[1] - width == tokens
        return seconds

    # Untimed warm-up of each, then pairs: a rollout, right after it the limit, so both see the
    # same load from other processes; the median of the pairs' ratios is reported.
    profiler = cProfile.Profile() if args.profile else None
    runs = [rollout(None)]
    per_row = max(1, round(runs[0]["tokens"] / len(batch)))
    plain_s = [plain(per_row)]
    for i in range(args.repeats):
        runs.append(rollout(profiler if i == 0 else None))
        plain_s.append(plain(per_row))
    timed, timed_plain = runs[1:], plain_s[1:]
    pairs = [
        (r["tokens"] / r["seconds"]) / (per_row * len(batch) / p)
        for r, p in zip(timed, timed_plain, strict=True)
    ]
    ratio = statistics.median(pairs)
    rollout_tps = statistics.median(r["tokens"] / r["seconds"] for r in timed)
    plain_tps = per_row * len(batch) / statistics.median(timed_plain)
    med = {k: round(statistics.median(r[k] for r in timed), 4) for k in timed[0]}
    report: dict[str, Any] = {
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, "
        f"Python {platform.python_version()}, torch {torch.__version__}, "
        f"{torch.get_num_threads()} torch threads",
        "setup": setup.summary(),
        "batch": {
            "episodes": len(batch),
            "groups": args.groups,
            "group_size": args.group_size,
            "max_new_tokens_per_turn": args.max_new_tokens,
            "max_turns": args.max_turns,
            "temperature": args.temperature,
            "top_k": args.top_k,
            "backend": args.backend,
            "reuse_kv_cache": args.reuse_kv_cache,
        },
        "rollout": {
            "tokens_per_s": round(rollout_tps, 1),
            **med,
            # below 0 when a group's shared prompt ran once for all its rows (interleaved)
            "padding_waste": round(1 - med["tokens"] / max(med["decode_slots"], 1), 3),
            "seconds_all": [round(r["seconds"], 4) for r in runs],
        },
        "plain_generate": {
            "tokens_per_s": round(plain_tps, 1),
            "seconds": round(statistics.median(timed_plain), 4),
            "tokens_per_row": per_row,
            "seconds_all": [round(s, 4) for s in plain_s],
        },
        "ratio": round(ratio, 3),
        "ratio_per_pair": [round(x, 3) for x in pairs],
        "ratio_of_medians": round(rollout_tps / plain_tps, 3),
        "target": TARGET,
        "meets_target": ratio >= TARGET,
    }
    print(json.dumps(report, indent=2))
    if profiler is not None:
        text = io.StringIO()
        pstats.Stats(profiler, stream=text).sort_stats("cumulative").print_stats(40)
        print(f"== cProfile of one rollout ==\n{text.getvalue()}")
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    return 0 if ratio >= TARGET else 1


if __name__ == "__main__":
    sys.exit(main())
