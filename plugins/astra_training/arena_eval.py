"""The ``arena-eval`` evaluator: models side by side on held-out arenas."""

from __future__ import annotations

import json
import time
from typing import Any

import torch

from astra_core.context import StageContext
from astra_core.errors import AstraError, ConfigError
from astra_core.registry import ComponentBuilder
from astra_training.accelerate_setup import make_accelerator
from astra_training.arena_family import ArenaVerifiers, load_arenas
from astra_training.data_parallel import gather_shares, share
from astra_training.generation import Sampling
from astra_training.models import load_model_and_tokenizer, resolve_model
from astra_training.rl_options import EvalOptions
from astra_training.rl_trainer import _decode, _encode, _episode_metrics, make_engine
from astra_training.rollout import Rollout


class ArenaEvaluator:
    """Greedy (by default) episodes of each model on the same held-out arenas.

    Writes ``episodes-<model>.jsonl`` and ``eval.json`` under the stage directory and returns
    ``<model>/<metric>`` for the run report: success rate (as each arena's verifier judges it),
    mean reward, recall, precision, calls and turns per episode.

    Under several processes each takes a contiguous share of the batches of ``batch_size``
    arenas; the episodes are gathered in arena order and the main process writes the files.
    Each batch is sampled from a seed of (run seed, batch index), so the episodes do not
    depend on the number of processes.
    """

    def __init__(self, options: EvalOptions, builder: ComponentBuilder) -> None:
        self.options = options
        self.verifier = ArenaVerifiers(
            builder, options.verifier, hook=builder.hook, key="eval.evaluator.verifier"
        )
        self.parser = builder.build("tool_call_parser", options.parser)
        self.sandbox = builder.build("sandbox", options.sandbox)
        self.seed = builder.seed

    def run(self, ctx: StageContext) -> dict[str, Any]:
        o = self.options
        accelerator = make_accelerator()
        main = accelerator.is_main_process
        arenas = load_arenas(ctx, o.arenas, holdout=True, sandbox=self.sandbox)
        # arenas named from a fixed cast are training warm-up: eval is on unseen names only
        arenas = [a for a in arenas if not a.metadata.get("familiar_names")]
        if not arenas:
            raise AstraError(
                f"{ctx.stage}: every held-out arena of {o.arenas} is named from the familiar "
                "cast (familiar_names); lower it or build more arenas"
            )
        arenas.sort(key=lambda a: a.id)
        if o.limit:
            arenas = arenas[: o.limit]
        self.verifier.for_arenas(arenas)  # a verifier that cannot be built fails before rollouts
        sampling = Sampling(do_sample=not o.greedy, temperature=o.temperature)
        results: dict[str, dict[str, float]] = {}
        for ref in o.models:
            try:
                path = resolve_model(ref, ctx.run_dir, key=ctx.stage)
            except ConfigError:
                if o.skip_missing:
                    if main:
                        ctx.log.warning("eval: skipping %s (not trained in this run)", ref)
                    continue
                raise
            model, tokenizer = load_model_and_tokenizer(path, dtype=o.rollout.dtype)
            model = model.to(accelerator.device)
            engine = make_engine(
                model,
                tokenizer,
                o.rollout,
                parser=self.parser,
                verifier=self.verifier,
                sandbox=self.sandbox,
                hook=ctx.hook,
            )
            t0 = time.perf_counter()
            mine: list[Rollout] = []
            n_batches = -(-len(arenas) // o.batch_size)
            batches = share(n_batches, accelerator.num_processes, accelerator.process_index)
            if main:
                batches = ctx.progress(
                    batches, total=len(batches), desc=f"eval {ref}", unit="batch"
                )
            for b in batches:
                torch.manual_seed(self.seed * 100003 + b)  # the batch's, on any process
                start = b * o.batch_size
                done, _ = engine.run(arenas[start : start + o.batch_size], sampling)
                mine += done
            if accelerator.num_processes > 1:  # every process's, in arena order
                rollouts = [
                    _decode(x) for x in gather_shares(accelerator, [_encode(r) for r in mine])
                ]
            else:
                rollouts = mine
            metrics = _episode_metrics(rollouts)
            metrics["seconds"] = time.perf_counter() - t0
            results[ref] = metrics
            name = ref.replace("/", "-")
            if main:
                with (ctx.out_dir / f"episodes-{name}.jsonl").open("w", encoding="utf-8") as fh:
                    for r in rollouts:
                        fh.write(r.episode.to_json() + "\n")
        if main:
            (ctx.out_dir / "eval.json").write_text(
                json.dumps({"arenas": len(arenas), "models": results}, indent=2)
            )
        accelerator.wait_for_everyone()
        flat: dict[str, Any] = {"arenas": len(arenas)}
        for ref, metrics in results.items():
            for key, value in metrics.items():
                flat[f"{ref}/{key}"] = value
        return flat
