"""Seconds per GRPO optimisation step: ASTRA's RL trainer against TRL's ``GRPOTrainer``.

Both sides train the same ~1 M-parameter Qwen3 policy (built and fine-tuned to call
tools by ``bench/_rl_setup.py``, cached) in the same arenas of the ``offline-world`` generator,
whose tools run in our ``ToolCodeRuntime`` (a fresh sandbox session per episode, bubblewrap when
``bwrap`` exists, else subprocess) and whose reward is the ``subtask-f1`` verifier:

* ours: ``RolloutEngine`` with the trainer's default rollout options (the ``interleaved``
  backend: one decode loop over every live episode, each episode's next turn joining as soon
  as its tool calls return; ``--backend generate`` for padded ``generate`` turn by turn), then
  ``RLTrainer._update`` with the ``grpo`` algorithm: exactly the rollout and update of one
  ``RLTrainer`` step, without adaptive batch filling (TRL has none, so no group is dropped and
  both sides train on every episode they sampled);
* TRL: ``GRPOTrainer`` with ``environment_factory`` (one environment class per arena, the
  arena's tools as its methods; TRL's own multi-turn tool loop), loss ``dapo`` (token mean over
  the batch, as ours), ``beta=0``, the same clip, optimizer (AdamW, constant lr), grad clipping.

Same batch (groups x group size), sampling, per-turn token cap, turn cap, float32, CPU,
``torch.set_num_threads``, prompts (checked token for token) and arena order. A step is rollout
+ reward + loss + backward + optimizer step. The sides alternate (TRL's step k, then ours, from
a TRL callback), so both see the same load from other processes; the first ``--warmup`` steps
are dropped and the median of the per-step ratios is reported. The default sampling is top-k 1:
both sides then generate the same tokens (the report shows the counts), so they do identical
work; ``--top-k 0`` samples the full distribution and the two sides' turns differ, which the
generated-tokens-per-second figures account for.

Target: ours / TRL seconds per step <= 0.45 (issue 22; it was 0.7).

    python bench/grpo_vs_trl.py [--steps 5] [--warmup 1] [--groups 2] [--group-size 4]
                                [--top-k 1] [--threads 1] [--only ours|trl] [--profile]
                                [--backend interleaved|generate] [--reuse-kv-cache]
                                [--json OUT]

``--reuse-kv-cache`` turns on ``rollout.reuse_kv_cache`` on our side with ``--backend generate``
(off by default, as in the trainer).

The first run builds the arenas and the policy (about a minute); later runs reuse them from
``--cache``.
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
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

# run as ``python bench/grpo_vs_trl.py``: bench/ is on sys.path
from _rl_setup import (
    SYSTEM_PROMPT,
    Setup,
    add_setup_arguments,
    builder,
    prepare_setup,
    tool_function,
)

from astra_core.records import Arena, Episode, ToolCall

TARGET = 0.45


def arena_order(setup: Setup, steps: int, groups: int) -> list[Arena]:
    """The arenas of every step, in order (the same for both sides)."""
    return [setup.arenas[i % len(setup.arenas)] for i in range(steps * groups)]


def summarize(rows: list[dict[str, float]], warmup: int) -> dict[str, Any]:
    timed = rows[warmup:]
    step_s = statistics.median(r["step_s"] for r in timed)
    tokens = statistics.median(r["generated_tokens"] for r in timed)
    return {
        "step_s_median": round(step_s, 4),
        "step_s_all": [round(r["step_s"], 4) for r in rows],
        "generated_tokens_median": tokens,
        "tokens_per_s": round(
            sum(r["generated_tokens"] for r in timed) / sum(r["step_s"] for r in timed), 1
        ),
        "calls_per_episode": round(statistics.mean(r["calls"] for r in timed), 2),
        "reward_mean": round(statistics.mean(r["reward"] for r in timed), 3),
        **{
            k: round(statistics.median(r[k] for r in timed), 4)
            for k in ("rollout_s", "train_s", "generate_s", "tool_and_parse_s", "turns")
            if k in timed[0]
        },
    }


def profile_text(profiler: cProfile.Profile, lines: int = 40) -> str:
    text = io.StringIO()
    pstats.Stats(profiler, stream=text).sort_stats("cumulative").print_stats(lines)
    return text.getvalue()


# -- ours ------------------------------------------------------------------------------------


class OurSteps:
    """``RLTrainer``'s step (rollout, reward, update), one call of ``step()`` at a time."""

    def __init__(self, setup: Setup, args: argparse.Namespace, order: Sequence[Arena]) -> None:
        from accelerate import Accelerator
        from astra_training.generation import Sampling
        from astra_training.models import load_model_and_tokenizer
        from astra_training.rl_options import RLOptions, RolloutOptions
        from astra_training.rl_trainer import RLTrainer, make_engine

        self.args, self.order = args, order
        opts = RLOptions(
            algorithm="grpo",
            sandbox=setup.sandbox,
            groups_per_step=args.groups,
            group_size=args.group_size,
            lr=args.lr,
            temperature=args.temperature,
            max_grad_norm=1.0,
            rollout=RolloutOptions(
                max_turns=args.max_turns,
                max_new_tokens=args.max_new_tokens,
                max_length=4096,
                system_prompt=SYSTEM_PROMPT,
                reuse_kv_cache=args.reuse_kv_cache,
                generation_backend=args.backend,
            ),
        )
        self.trainer = RLTrainer(opts, builder())
        model, self.tokenizer = load_model_and_tokenizer(str(setup.model_dir), dtype="float32")
        optimizer = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=0.0)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda _: 1.0)
        self.accelerator = Accelerator(cpu=True)
        self.model, self.optimizer = self.accelerator.prepare(model, optimizer)
        self.engine = make_engine(
            self.accelerator.unwrap_model(self.model),
            self.tokenizer,
            opts.rollout,
            parser=self.trainer.parser,
            verifier=self.trainer.verifier,
            sandbox=self.trainer.sandbox,
            hook=self.trainer.builder.hook,
        )
        self.sampling = Sampling(do_sample=True, temperature=args.temperature, top_k=args.top_k)
        self.rows: list[dict[str, float]] = []
        self.profiler = cProfile.Profile() if args.profile else None

    def step(self) -> None:
        args, step = self.args, len(self.rows)
        # seeded like RLTrainer.run; TRL's sampling is seeded once, by GRPOConfig.seed
        rng_state = torch.random.get_rng_state()
        torch.manual_seed(args.seed * 100003 + step)
        picked = self.order[step * args.groups : (step + 1) * args.groups]
        profile = self.profiler is not None and step == args.warmup
        if profile:
            self.profiler.enable()
        t0 = time.perf_counter()
        batch = [a for a in picked for _ in range(args.group_size)]
        rollouts, stats = self.engine.run(batch, self.sampling)
        t1 = time.perf_counter()
        g = args.group_size
        groups = [rollouts[i * g : (i + 1) * g] for i in range(len(picked))]
        self.trainer._update(
            self.model, self.optimizer, self.scheduler, self.accelerator, groups, self.tokenizer
        )
        t2 = time.perf_counter()
        if profile:
            self.profiler.disable()
        torch.random.set_rng_state(rng_state)  # leave TRL's random stream as it was
        self.rows.append(
            {
                "step_s": t2 - t0,
                "rollout_s": t1 - t0,
                "train_s": t2 - t1,
                "generate_s": stats.generate_seconds,
                "tool_and_parse_s": stats.tool_seconds,
                "generated_tokens": stats.generated_tokens,
                "calls": stats.calls,
                "turns": stats.turns,
                "reward": statistics.mean(r.reward for r in rollouts),
            }
        )

    def summary(self) -> dict[str, Any]:
        out = summarize(self.rows, self.args.warmup)
        if self.profiler is not None:
            out["profile"] = profile_text(self.profiler)
        return out


# -- TRL -------------------------------------------------------------------------------------


class ArenaEnvironment:
    """A TRL environment for one arena (subclassed per arena with its tools as methods): the
    calls run in our ``ToolCodeRuntime``, the reward is our verifier's, as on our side."""

    arena: Arena
    sandbox: Any
    verifier: Any
    live: list[ArenaEnvironment]

    def __init__(self) -> None:
        from astra_arenas.runtime import ToolCodeRuntime

        self._runtime = ToolCodeRuntime(self.arena, self.sandbox)
        self._calls: list[Any] = []
        self.live.append(self)

    def reset(self, **_: Any) -> None:
        # a fresh sandbox session per episode, as ``RolloutEngine`` starts one
        self._calls = []
        self._runtime.reset()

    def get_reward(self) -> float:
        return float(
            self.verifier.score(self.arena, Episode.of_calls(self.arena, self._calls)).value
        )

    def _call(self, name: str, arguments: dict[str, Any]) -> str:
        result = self._runtime.step(ToolCall(name, dict(arguments)))
        self._calls.append(result)
        return str(result.output)


def environment_classes(arenas: Sequence[Arena], sandbox: Any, verifier: Any) -> dict[str, Any]:
    live: list[ArenaEnvironment] = []
    classes = {}
    for i, arena in enumerate({a.id: a for a in arenas}.values()):
        methods = {
            str(t["function"]["name"]): tool_function(t, ArenaEnvironment._call)
            for t in arena.tools
        }
        attrs_ = {"arena": arena, "sandbox": sandbox, "verifier": verifier, "live": live}
        classes[arena.id] = type(f"Arena{i}", (ArenaEnvironment,), {**attrs_, **methods})
    return classes


def run_trl(
    setup: Setup, args: argparse.Namespace, order: Sequence[Arena], ours: OurSteps | None
) -> dict[str, Any]:
    """TRL's steps; after each, one of ours (``ours``), so both see the same machine load."""
    os.environ.setdefault("TRL_EXPERIMENTAL_SILENCE", "1")
    from datasets import Dataset
    from transformers import AutoModelForCausalLM, AutoTokenizer, TrainerCallback
    from transformers.trainer_callback import PrinterCallback
    from trl import GRPOConfig, GRPOTrainer
    from trl.chat_template_utils import qwen3_template

    tokenizer = AutoTokenizer.from_pretrained(setup.model_dir, padding_side="left")
    tokenizer.response_template = qwen3_template  # our template renders Qwen3's format
    model = AutoModelForCausalLM.from_pretrained(setup.model_dir, dtype=torch.float32)
    b = builder()
    sandbox = b.build("sandbox", setup.sandbox)
    classes = environment_classes(order, sandbox, b.build("verifier", "subtask-f1"))
    rows = [
        {
            "prompt": [
                {"role": "system", "content": SYSTEM_PROMPT},
                {"role": "user", "content": a.question},
            ],
            "environment": a.id,
        }
        for a in order
    ]
    steps = args.warmup + args.steps
    config = GRPOConfig(
        output_dir=tempfile.mkdtemp(prefix="grpo-vs-trl-"),
        use_cpu=True,
        bf16=False,
        gradient_checkpointing=False,
        per_device_train_batch_size=args.groups * args.group_size,
        num_generations=args.group_size,
        max_completion_length=4096,  # no total cap: the per-turn and turn caps bind, as ours
        generation_kwargs={"max_new_tokens": args.max_new_tokens},  # per generation round
        max_tool_calling_iterations=args.max_turns - 1,
        temperature=args.temperature,
        top_p=1.0,
        top_k=args.top_k,
        learning_rate=args.lr,
        lr_scheduler_type="constant",
        optim="adamw_torch",
        weight_decay=0.0,
        max_grad_norm=1.0,
        beta=0.0,
        epsilon=0.2,
        loss_type="dapo",
        scale_rewards="group",
        max_steps=steps,
        shuffle_dataset=False,
        logging_steps=1,
        report_to=[],
        save_strategy="no",
        disable_tqdm=True,
        seed=args.seed,
        dataloader_num_workers=0,
    )
    timings: list[dict[str, float]] = []

    profiler = cProfile.Profile() if args.profile else None

    class StepTimer(TrainerCallback):  # type: ignore[misc]
        def on_step_begin(self, *_: Any, **__: Any) -> None:
            if profiler is not None and len(timings) == args.warmup:
                profiler.enable()
            self.t0 = time.perf_counter()

        def on_step_end(self, *_: Any, **__: Any) -> None:
            timings.append({"step_s": time.perf_counter() - self.t0})
            if profiler is not None and len(timings) == args.warmup + 1:
                profiler.disable()
            if ours is not None:
                ours.step()

        def on_log(self, *_: Any, logs: dict[str, float] | None = None, **__: Any) -> None:
            if logs and "completions/mean_length" in logs and timings:
                batch = args.groups * args.group_size
                timings[-1].update(
                    generated_tokens=logs["completions/mean_length"] * batch,
                    calls=logs.get("tools/call_frequency", 0.0),
                    reward=logs.get("reward", 0.0),
                )

    trainer = GRPOTrainer(
        model=model,
        args=config,
        train_dataset=Dataset.from_list(rows),
        processing_class=tokenizer,
        environment_factory=classes,
        callbacks=[StepTimer()],
    )
    trainer.remove_callback(PrinterCallback)  # it prints every step's logs
    same_prompts = prompts_match(trainer, order)
    try:
        trainer.train()
    finally:
        for env in next(iter(classes.values())).live:
            env._runtime.close()
    out = summarize(timings, args.warmup)
    if profiler is not None:
        out["profile"] = profile_text(profiler)
    out["prompt_ids_identical_to_ours"] = same_prompts
    out["chat_template_replaced_by_trl"] = trainer.chat_template is not None
    return out


def prompts_match(trainer: Any, arenas: Sequence[Arena]) -> bool:
    """Whether TRL renders each arena's prompt to the ids our engine starts from."""
    from astra_training.chat_tokens import ChatTokens

    chat = ChatTokens(trainer.processing_class)
    for arena in {a.id: a for a in arenas}.values():
        messages = [
            {"role": "system", "content": SYSTEM_PROMPT},
            {"role": "user", "content": arena.question},
        ]
        theirs = trainer.processing_class.apply_chat_template(
            messages,
            tools=trainer._env_tools[arena.id],
            chat_template=trainer.chat_template,
            add_generation_prompt=True,
            tokenize=True,
            return_dict=True,
        )["input_ids"]
        if list(theirs) != chat.prompt_ids(messages, arena.tools):
            return False
    return True


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_setup_arguments(parser)
    parser.add_argument("--steps", type=int, default=5, help="timed steps per side")
    parser.add_argument("--warmup", type=int, default=1, help="untimed steps first")
    parser.add_argument("--groups", type=int, default=2, help="arenas per step")
    parser.add_argument("--group-size", type=int, default=4, help="episodes per arena (G)")
    parser.add_argument("--lr", type=float, default=1e-5)
    parser.add_argument("--only", choices=["ours", "trl"], help="measure one side only")
    from astra_training.rl_options import RolloutOptions

    parser.add_argument(
        "--backend",
        choices=["interleaved", "generate"],
        default=RolloutOptions().generation_backend,  # the trainer's default
        help="ours: rollout.generation_backend (default: the trainer's, %(default)s)",
    )
    parser.add_argument(
        "--reuse-kv-cache",
        action="store_true",
        help="ours: rollout.reuse_kv_cache (keep each episode's key/value cache between turns)",
    )
    parser.add_argument(
        "--profile", action="store_true", help="cProfile the first timed step of each side"
    )
    parser.add_argument("--json", help="also write the numbers to this file")
    args = parser.parse_args()

    torch.set_num_threads(args.threads)
    setup = prepare_setup(Path(args.cache), arena_count=args.arenas, sft_steps=args.sft_steps)
    order = arena_order(setup, args.warmup + args.steps, args.groups)
    report: dict[str, Any] = {
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, "
        f"Python {platform.python_version()}, torch {torch.__version__}, "
        f"{torch.get_num_threads()} torch threads",
        "setup": setup.summary(),
        "batch": {
            "groups": args.groups,
            "group_size": args.group_size,
            "max_new_tokens_per_turn": args.max_new_tokens,
            "max_turns": args.max_turns,
            "temperature": args.temperature,
            "top_k": args.top_k,
            "backend": args.backend,
            "reuse_kv_cache": args.reuse_kv_cache,
        },
    }
    ours = OurSteps(setup, args, order) if args.only != "trl" else None
    if args.only == "ours":
        assert ours is not None
        for _ in range(args.warmup + args.steps):
            ours.step()
    else:
        report["trl"] = run_trl(setup, args, order, ours)
    if ours is not None:
        report["ours"] = ours.summary()
    if ours is not None and "trl" in report:
        trl = report["trl"]
        # step k of ours ran right after step k of TRL: the median of the per-step ratios
        # cancels most of the load other processes put on the machine
        pairs = [
            o / t for o, t in zip(report["ours"]["step_s_all"], trl["step_s_all"], strict=True)
        ][args.warmup :]
        report["ratio_step_s"] = round(statistics.median(pairs), 3)
        report["ratio_step_s_per_step"] = [round(x, 3) for x in pairs]
        report["ratio_of_median_step_s"] = round(
            report["ours"]["step_s_median"] / trl["step_s_median"], 3
        )
        # per generated token: corrects for one side sampling longer turns than the other
        report["ratio_s_per_token"] = round(trl["tokens_per_s"] / report["ours"]["tokens_per_s"], 3)
        report["target"] = TARGET
        report["meets_target"] = report["ratio_step_s"] <= TARGET
    report["torch_threads_after"] = torch.get_num_threads()  # nothing changed it mid-run
    profiles = {
        side: report[side].pop("profile")
        for side in ("ours", "trl")
        if "profile" in report.get(side, {})
    }
    print(json.dumps(report, indent=2))
    for side, text in profiles.items():
        print(f"== cProfile of one {side} step ==\n{text}")
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    return 0 if report.get("meets_target", True) else 1


if __name__ == "__main__":
    sys.exit(main())
