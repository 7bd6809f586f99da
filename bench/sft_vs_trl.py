"""SFT throughput of our ``sft`` trainer against TRL's ``SFTTrainer``: same data, model, settings.

What it measures: training tokens per second of optimizer steps, on the same SFT data, for

* ``ours``: the ``sft`` trainer (plugins/astra_training) with ``shared_prefix = true`` (its
  default: the system prompt and tool schemas a micro-batch shares are run once);
* ``ours-noprefix``: the same with ``shared_prefix = false``;
* ``trl``: TRL's ``SFTTrainer`` with ``assistant_only_loss=True``.

Same for all three: the SFT JSONL (the OpenAI-messages rows the quickstart's
``synth-trajectories`` stage writes, generated here offline, or ``--data``), the tiny Qwen3 model
and byte-level BPE tokenizer built once from that data (``build_tiny_model_for``, the default
``TinyModelOptions``: ~1 M parameters), ``max_length`` (truncating), batch size, no gradient
accumulation, AdamW (``adamw_torch``, betas 0.9/0.999, eps 1e-8, no weight decay), lr with a
cosine schedule and no warmup, gradient clipping at 1.0, fp32 (``bf16=False``, ``use_cpu=True``),
no gradient checkpointing (TRL's default is on), the loss on assistant tokens only, and the same
torch thread count. Every side runs in its own fresh process. The bench checks that TRL's
tokenization of every conversation equals ours (ids and assistant mask), and that every side's
steps saw the same batches: with the same seed, our data order and TRL's sampler are the same
seeded ``randperm``, so the three runs do the same work and report the same losses.

The quickstart rows are 1.3k-2.5k tokens (system prompt and the server's tool schemas are ~1k of
them), hence the default ``max_length`` of 2560, which truncates none; at 1024 (both trainers'
default) most rows keep no assistant token and are dropped. Rows of different servers share only
the first ~14 tokens, so ``shared_prefix`` has little to share in mixed batches; pass
``--data`` a file of one server's rows to see its design case (rows sharing system prompt and
tools, as arena demos of one world do).

How it counts: the timed span is from the end of the last warm-up step to the end of the last
step (wall clock between step ends on both sides, so data loading, collation, forward, backward,
clipping, the optimizer and per-step logging are all in it). Tokens are the non-padding tokens of
the timed steps' batches (the headline, ``tokens/s``; TRL's own ``num_tokens`` counts the same)
and, separately, the assistant tokens the loss is taken on (``target tokens/s``). Each side is
run ``--repeats`` times, alternating, and the medians are compared. Target: ours / TRL >= 1.0.

Usage::

    python bench/sft_vs_trl.py [--steps 6] [--warmup 1] [--batch-size 4] [--max-length 2560]
        [--lr 2e-3] [--threads 2] [--repeats 1] [--data FILE_OR_STAGE_DIR] [--keep DIR]
        [--json OUT]

With the defaults: about 5-6 minutes on 2 CPU cores that other jobs were using at the same time
(load ~4); on idle cores expect roughly half. Timings on a shared machine swing widely: use
``--repeats`` and read the medians.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
QUICKSTART = ROOT / "examples" / "quickstart.toml"
SIDES = ("ours", "ours-noprefix", "trl")
TARGET = 1.0


# -- data and model, built once --------------------------------------------------------------


def sft_jsonl(data: str | None, folder: Path) -> Path:
    """OpenAI-messages JSONL (``{"messages", "tools"}`` per line) of the trajectory stage: the
    quickstart's ``synth-trajectories`` stage run here, or the stage dir / file given."""
    from astra_training.conversations import read_jsonl, write_jsonl

    import astra_core

    if data is None:
        astra_core.run(str(QUICKSTART), folder / "run", stages=["synth-trajectories"], quiet=True)
        source = folder / "run" / "synth-trajectories"
    else:
        source = Path(data)
    files = sorted(source.glob("data-*.jsonl")) if source.is_dir() else [source]
    if not files:
        raise SystemExit(f"no data-*.jsonl shards in {source}")
    out = folder / "sft.jsonl"
    # normalised by our reader (roles, text content, well-formed calls): both sides read this
    write_jsonl((conv for f in files for conv in read_jsonl(f)), out)
    return out


def build_model(data: Path, folder: Path, seed: int) -> Path:
    from astra_training.conversations import read_jsonl
    from astra_training.tiny_model import build_tiny_model_for

    return build_tiny_model_for(list(read_jsonl(data)), folder / "model", seed=seed)


# -- one side, in its own process -------------------------------------------------------------


def run_ours(spec: dict[str, Any], shared_prefix: bool) -> dict[str, Any]:
    from astra_core.context import StageContext
    from astra_core.options import ComponentSpec
    from astra_core.plugins import load_plugins
    from astra_core.registry import ComponentBuilder

    class StepClock:
        """A tracker: the time each step's metrics arrive, with its token counts."""

        def __init__(self) -> None:
            self.steps: list[dict[str, float]] = []

        def log(self, metrics: dict[str, float], step: int) -> None:
            self.steps.append(
                {
                    "end": time.perf_counter(),
                    "tokens": metrics["tokens"],
                    "target_tokens": metrics["target_tokens"],
                    "loss": metrics["loss"],
                }
            )

        def close(self) -> None:
            pass

    options = {
        "model": spec["model"],
        "trajectories": "",
        "data_files": [spec["data"]],
        "max_length": spec["max_length"],
        "batch_size": spec["batch_size"],
        "max_steps": spec["steps"],
        "lr": spec["lr"],
        "warmup_ratio": 0.0,
        "weight_decay": 0.0,
        "max_grad_norm": 1.0,
        "shared_prefix": shared_prefix,
        "seed": spec["seed"],
    }
    clock = StepClock()
    with tempfile.TemporaryDirectory() as tmp:
        builder = ComponentBuilder(load_plugins().registry, seed=spec["seed"], workdir=tmp)
        trainer = builder.build("trainer", ComponentSpec("sft", options))
        ctx = StageContext("train-sft", run_dir=tmp, builder=builder, quiet=True, trackers=(clock,))
        trainer.run(ctx)
    return {"steps": clock.steps}


def run_trl(spec: dict[str, Any]) -> dict[str, Any]:
    import datasets
    import torch
    from astra_training.assistant_mask import tokenize_conversation
    from astra_training.conversations import read_jsonl
    from transformers import AutoModelForCausalLM, AutoTokenizer, TrainerCallback
    from trl import SFTConfig, SFTTrainer

    tokenizer = AutoTokenizer.from_pretrained(spec["model"])
    model = AutoModelForCausalLM.from_pretrained(spec["model"], dtype=torch.float32)
    rows = [json.loads(line) for line in Path(spec["data"]).read_text().splitlines() if line]
    # tools as a JSON string (TRL parses it): an Arrow column of schemas would fill every
    # schema with the other schemas' keys as nulls and render different text
    dataset = datasets.Dataset.from_list(
        [{"messages": r["messages"], "tools": json.dumps(r["tools"])} for r in rows]
    )

    class StepClock(TrainerCallback):
        def __init__(self) -> None:
            self.ends: list[float] = []

        def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            self.ends.append(time.perf_counter())

    class CountingCollator:
        """TRL's collator, counting each batch's real and trained tokens in batch order."""

        def __init__(self, inner: Any) -> None:
            self.inner = inner
            self.counts: list[tuple[int, int]] = []

        def __call__(self, examples: list[Any]) -> Any:
            batch = self.inner(examples)
            tokens = int(batch["attention_mask"].sum())
            self.counts.append((tokens, int((batch["labels"] != -100).sum())))
            return batch

    config = SFTConfig(
        output_dir=spec["workdir"],
        max_steps=spec["steps"],
        per_device_train_batch_size=spec["batch_size"],
        gradient_accumulation_steps=1,
        learning_rate=spec["lr"],
        lr_scheduler_type="cosine",
        warmup_steps=0,
        weight_decay=0.0,
        adam_beta1=0.9,
        adam_beta2=0.999,
        adam_epsilon=1e-8,
        optim="adamw_torch",
        max_grad_norm=1.0,
        max_length=spec["max_length"],
        assistant_only_loss=True,
        activation_checkpointing=False,  # TRL's default turns it on; ours does not use it
        use_cpu=True,
        bf16=False,
        report_to=[],
        save_strategy="no",
        logging_steps=1,
        disable_tqdm=True,
        seed=spec["seed"],
    )
    clock = StepClock()
    trainer = SFTTrainer(
        model=model,
        args=config,
        train_dataset=dataset,
        processing_class=tokenizer,
        callbacks=[clock],
    )
    collator = CountingCollator(trainer.data_collator)
    trainer.data_collator = collator

    # what our trainer trains on: truncated to max_length, rows left with no target dropped
    # (TRL drops the same ones: "fully masked examples")
    ours = []
    for conv in read_jsonl(spec["data"]):
        tc = tokenize_conversation(tokenizer, conv.messages, conv.tools)
        ids, mask = tc.input_ids[: spec["max_length"]], tc.assistant_mask[: spec["max_length"]]
        if sum(mask[1:]):
            ours.append((list(ids), list(mask)))
    prepared: Any = trainer.train_dataset
    same = sum(
        ids == list(example["input_ids"])
        and [t if m else -100 for t, m in zip(ids, mask, strict=True)] == list(example["labels"])
        for (ids, mask), example in zip(ours, prepared, strict=False)
    )

    trainer.train()
    losses = [e["loss"] for e in trainer.state.log_history if "loss" in e]
    steps = [
        {"end": end, "tokens": float(tok), "target_tokens": float(tgt), "loss": loss}
        for end, (tok, tgt), loss in zip(clock.ends, collator.counts, losses, strict=False)
    ]
    return {
        "steps": steps,
        "same_tokens": same,
        "conversations": len(prepared),
        "our_conversations": len(ours),
    }


def worker(side: str, spec: dict[str, Any]) -> dict[str, Any]:
    import torch

    torch.set_num_threads(spec["threads"])
    result = run_trl(spec) if side == "trl" else run_ours(spec, shared_prefix=side == "ours")
    steps = result.pop("steps")
    if len(steps) != spec["steps"]:
        raise SystemExit(f"{side}: {len(steps)} steps recorded, expected {spec['steps']}")
    timed = steps[spec["warmup"] :]
    seconds = timed[-1]["end"] - steps[spec["warmup"] - 1]["end"]
    tokens = sum(s["tokens"] for s in timed)
    targets = sum(s["target_tokens"] for s in timed)
    return {
        "side": side,
        "threads": torch.get_num_threads(),
        "timed_steps": len(timed),
        "seconds": seconds,
        "tokens": tokens,
        "target_tokens": targets,
        "tokens_per_s": tokens / seconds,
        "target_tokens_per_s": targets / seconds,
        "step_s": seconds / len(timed),
        "loss_first": steps[0]["loss"],
        "loss_last": steps[-1]["loss"],
        "step_tokens": [int(s["tokens"]) for s in steps],
        **result,
    }


def run_worker(side: str, spec: dict[str, Any]) -> dict[str, Any]:
    env = dict(os.environ)
    # the same thread pools on both sides, whatever the shell set
    for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        env[name] = str(spec["threads"])
    env.setdefault("TOKENIZERS_PARALLELISM", "false")
    done = subprocess.run(
        [sys.executable, __file__, "--worker", side, "--spec", json.dumps(spec)],
        capture_output=True,
        text=True,
        check=False,
        env=env,
    )
    if done.returncode != 0:
        raise SystemExit(f"{side} failed:\n{done.stderr[-4000:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


# -- driver ------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=6, help="optimizer steps per run")
    parser.add_argument("--warmup", type=int, default=1, help="first steps left out of the timing")
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument(
        "--max-length", type=int, default=2560, help="the default truncates no quickstart row"
    )
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--threads", type=int, default=min(2, os.cpu_count() or 1))
    parser.add_argument("--repeats", type=int, default=1, help="runs per side (medians)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--sides", default=",".join(SIDES), help="comma-separated subset")
    parser.add_argument("--data", help="SFT JSONL file or trajectory stage dir (default: generate)")
    parser.add_argument("--keep", metavar="DIR", help="write the data and model here and keep them")
    parser.add_argument("--json", metavar="OUT", help="also write the results here")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--spec", help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.worker:
        print(json.dumps(worker(args.worker, json.loads(args.spec))))
        return
    if not 1 <= args.warmup < args.steps:
        parser.error("need 1 <= --warmup < --steps")
    sides = [s for s in args.sides.split(",") if s]
    if unknown := set(sides) - set(SIDES):
        parser.error(f"unknown sides {sorted(unknown)}; choose from {', '.join(SIDES)}")

    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(args.keep or tmp)
        folder.mkdir(parents=True, exist_ok=True)
        data = sft_jsonl(args.data, folder)
        model = build_model(data, folder, args.seed)
        prepare_s = time.perf_counter() - started
        spec = {
            "data": str(data),
            "model": str(model),
            "workdir": str(folder / "trl-out"),
            "steps": args.steps,
            "warmup": args.warmup,
            "batch_size": args.batch_size,
            "max_length": args.max_length,
            "lr": args.lr,
            "threads": args.threads,
            "seed": args.seed,
        }
        runs: dict[str, list[dict[str, Any]]] = {side: [] for side in sides}
        for _ in range(args.repeats):  # alternating, so a busy spell hits every side alike
            for side in sides:
                runs[side].append(run_worker(side, spec))
        conversations = sum(1 for line in data.read_text().splitlines() if line)

    medians = {
        side: {
            key: statistics.median(r[key] for r in results)
            for key in ("tokens_per_s", "target_tokens_per_s", "step_s")
        }
        for side, results in runs.items()
    }
    ratios = {
        side: {
            key: medians[side][key] / medians["trl"][key]
            for key in ("tokens_per_s", "target_tokens_per_s")
        }
        for side in sides
        if side != "trl" and "trl" in medians
    }
    # with the same seed both sides draw the same row order (a seeded randperm): same batches
    same_batches = all(
        len({tuple(runs[side][i]["step_tokens"]) for side in sides}) == 1
        for i in range(args.repeats)
    )
    summary = {
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cpus, "
        f"Python {platform.python_version()}",
        "settings": {k: v for k, v in spec.items() if k not in ("data", "model", "workdir")},
        "conversations": conversations,
        "prepare_s": prepare_s,
        "runs": runs,
        "medians": medians,
        "ratio_vs_trl": ratios,
        "same_batches": same_batches,
        "target": TARGET,
        "wall_s": time.perf_counter() - started,
    }
    print(
        f"{conversations} conversations, max_length {args.max_length}, batch {args.batch_size}, "
        f"{args.steps} steps ({args.warmup} warm-up), {args.threads} torch threads, "
        f"{args.repeats} run(s) per side; {summary['machine']}"
    )
    print(f"{'side':>14}  {'tokens/s':>9}  {'target tok/s':>12}  {'s/step':>7}  loss first->last")
    for side, results in runs.items():
        m = medians[side]
        last = results[-1]
        print(
            f"{side:>14}  {m['tokens_per_s']:>9.0f}  {m['target_tokens_per_s']:>12.0f}  "
            f"{m['step_s']:>7.3f}  {last['loss_first']:.3f} -> {last['loss_last']:.3f}"
        )
    if "trl" in runs:
        check = runs["trl"][-1]
        print(
            f"conversations trained on: ours {check['our_conversations']}, TRL "
            f"{check['conversations']}; token ids and masks identical: {check['same_tokens']}"
        )
    print(f"every side trained on the same batches (tokens per step): {same_batches}")
    for side, ratio in ratios.items():
        verdict = "meets" if ratio["tokens_per_s"] >= TARGET else "BELOW"
        print(
            f"{side}/TRL: {ratio['tokens_per_s']:.2f}x tokens/s "
            f"({ratio['target_tokens_per_s']:.2f}x target tokens/s), {verdict} the "
            f">= {TARGET:.1f} target"
        )
    print(f"wall {summary['wall_s']:.0f}s (data and model {prepare_s:.0f}s)")
    if args.json:
        Path(args.json).write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
