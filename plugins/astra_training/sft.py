"""The ``sft`` trainer: supervised fine-tuning on tool-calling conversations, on Accelerate.

It reads the run's trajectories and/or OpenAI-messages JSONL files, renders them with the
model's chat template, trains on the assistant tokens only (text, ``<tool_call>`` blocks and the
end-of-turn token), with AdamW, a cosine schedule with warmup and gradient accumulation, and
saves the model to ``<stage>/model`` for the next stage. The same code runs on one CPU and under
``accelerate launch`` on many processes: every process holds the whole (tokenized) dataset and
takes its own slice of each step, and the loss of a step is the mean over all of that step's
assistant tokens on all processes, so gradient accumulation and process count change nothing
but speed. Checkpoints hold the full state (model, optimizer, scheduler, RNG, step and data
position), and a run that is stopped resumes to the same weights as one that was not.
"""

from __future__ import annotations

import json
import math
import time
from collections import Counter
from collections.abc import Callable, Iterable
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import torch

from astra_core.context import StageContext
from astra_core.errors import AstraError
from astra_core.options import options_to_dict
from astra_core.records import Arena
from astra_core.registry import ComponentBuilder
from astra_training.accelerate_setup import (
    make_accelerator,
    seed_everything,
    uneven_forward_calls,
)
from astra_training.arena_family import arena_demonstrations
from astra_training.assistant_mask import (
    TokenizedConversation,
    has_generation_markers,
    tokenize_conversations,
    with_tool_output_weight,
)
from astra_training.batches import Row, RowStream, collate, make_rows, row_targets
from astra_training.checkpoints import CheckpointManager
from astra_training.conversations import Conversation, from_trajectories, read_jsonl
from astra_training.forward_pass import ForwardArgs
from astra_training.lora import is_adapted, merged, trainable_parameters, with_lora
from astra_training.models import load_model_and_tokenizer, resolve_model, save_model
from astra_training.optimization import adamw, cosine_schedule
from astra_training.sft_loss import assistant_nll
from astra_training.sft_options import SFTOptions
from astra_training.sharding import accelerator_shards_parameters
from astra_training.tiny_model import build_tiny_model_for, count_parameters

DONE = "sft_done.json"
METRICS = "metrics.jsonl"


class SFTTrainer:
    """Trains a causal LM on the assistant turns of conversations; see the module docstring."""

    def __init__(self, options: SFTOptions | None, builder: ComponentBuilder) -> None:
        self.options = options or SFTOptions()
        self.builder = builder
        # after ``run``: this process's trained replica and its tokenizer (library use, tests)
        self.model: Any = None
        self.tokenizer: Any = None

    @property
    def seed(self) -> int:
        """Data order, renamed demonstrations and model init: the option, else the run seed."""
        return self.builder.seed if self.options.seed is None else self.options.seed

    # -- data ----------------------------------------------------------------------------------

    def conversations(self, ctx: StageContext) -> tuple[list[Conversation], dict[str, int]]:
        o = self.options
        found: list[Conversation] = []
        counts: dict[str, int] = {}
        if o.trajectories:
            convs, skipped = from_trajectories(
                ctx.read(o.trajectories, "trajectory"), system_prompt=o.system_prompt
            )
            found += convs
            counts.update(trajectories=len(convs), trajectories_skipped=skipped)
        if o.arena_demos:
            convs = self.arena_demonstrations(ctx)
            found += convs * o.arena_demo_copies
            # every replayed demonstration comes with exactly arena_demo_renamings copies
            originals = len(convs) // (1 + o.arena_demo_renamings)
            counts.update(arena_demonstrations=originals)
            if o.arena_demo_renamings:
                counts.update(arena_demonstrations_renamed=len(convs) - originals)
            if o.arena_demo_retries:
                counts.update(arena_demonstrations_retried=originals * o.arena_demo_retries)
        base = Path(self.builder.file).resolve().parent if self.builder.file else Path.cwd()
        for name in o.data_files:
            path = Path(name) if Path(name).is_absolute() else base / name
            convs = list(read_jsonl(path, system_prompt=o.system_prompt))
            found += convs
            counts[f"file:{Path(name).name}"] = len(convs)
        if not found:
            where = [
                f"the {stage} stage ({ctx.stage_dir(stage)})"
                for stage in (o.trajectories, o.arena_demos)
                if stage
            ] + [str(f) for f in o.data_files]
            raise AstraError(
                f"{ctx.stage}: no conversations to train on in "
                f"{' or '.join(where) or 'nothing: set trajectories or data_files'}"
            )
        return found, counts

    def arena_demonstrations(self, ctx: StageContext) -> list[Conversation]:
        """The training arenas' demonstrations, each followed by its renamed copies, from the
        plugin that made each arena (``astra_arena_demonstrations``)."""
        o = self.options
        sandbox = self.builder.build("sandbox", o.sandbox, key=f"{ctx.stage}.sandbox")
        arenas = (a for a in ctx.read(o.arena_demos, "arena") if isinstance(a, Arena))
        demos = arena_demonstrations(
            ctx.hook,
            arenas,
            sandbox,
            renamings=o.arena_demo_renamings,
            retries=o.arena_demo_retries,
            seed=self.seed,
        )
        # the system prompt is added like any other conversation's, so all data share it
        convs, _ = from_trajectories(
            ctx.progress(demos, desc="arena demonstrations", unit="demo"),
            system_prompt=o.system_prompt,
        )
        return convs

    def tokenize(
        self,
        tokenizer: Any,
        conversations: list[Conversation],
        progress: Callable[..., Iterable[Conversation]] | None = None,
    ) -> tuple[list[TokenizedConversation], Counter[str]]:
        """Token ids and loss weights of ``conversations``, less those dropped (and why);
        ``progress`` (a stage's ``ctx.progress``) shows a bar over them."""
        o = self.options
        markers = has_generation_markers(tokenizer)
        examples: list[TokenizedConversation] = []
        dropped: Counter[str] = Counter()
        shown = progress or (lambda items, **_: items)
        chats = (
            (conv.messages, conv.tools, conv.source)
            for conv in shown(conversations, total=len(conversations), desc="tokenize", unit="conv")
        )
        for tc in tokenize_conversations(tokenizer, chats, use_markers=markers):
            if len(tc.input_ids) > o.max_length:
                if o.overlong == "drop":
                    dropped["overlong"] += 1
                    continue
                dropped["truncated"] += 1
                tc = TokenizedConversation(
                    tc.input_ids[: o.max_length], tc.assistant_mask[: o.max_length], tc.source
                )
            if sum(tc.assistant_mask[1:]) == 0:
                dropped["no_assistant_tokens"] += 1
                continue
            if o.tool_output_weight:
                tc = with_tool_output_weight(tc, tokenizer, o.tool_output_weight)
            examples.append(tc)
        if not examples:
            raise AstraError(
                f"none of the {len(conversations)} conversations has assistant tokens within "
                f"max_length={o.max_length} ({dict(dropped)})"
            )
        return examples, dropped

    # -- model ---------------------------------------------------------------------------------

    def model_path(
        self, ctx: StageContext, conversations: list[Conversation], accelerator: Any, seed: int
    ) -> str:
        o = self.options
        if o.model != "tiny":
            return resolve_model(o.model, ctx.run_dir, key=f"{ctx.stage}.trainer.model")
        base = ctx.out_dir / "base"
        # built once, by the main process; a resumed run keeps the tokenizer it trained with
        with accelerator.main_process_first():
            if accelerator.is_main_process and not (base / "config.json").exists():
                ctx.log.info("building a tiny model in %s", base)
                build_tiny_model_for(conversations, base, o.tiny, seed=seed)
        return str(base)

    # -- training ------------------------------------------------------------------------------

    def run(self, ctx: StageContext) -> dict[str, Any]:
        o = self.options
        seed = self.seed
        done_path = ctx.out_dir / DONE
        if done_path.exists() and (ctx.out_dir / "model" / "config.json").exists():
            done = json.loads(done_path.read_text(encoding="utf-8"))
            if done.get("options") != options_to_dict(o):
                ctx.log.warning(
                    "%s: %s was trained with other options; keeping it (use a new run "
                    "directory, or delete %s, to train again)",
                    ctx.stage,
                    ctx.out_dir / "model",
                    done_path,
                )
            else:
                ctx.log.info("%s: already trained (%s)", ctx.stage, done_path)
            return dict(done["metrics"])
        t_start = time.perf_counter()
        accelerator = make_accelerator(o.mixed_precision)
        seed_everything(seed)
        conversations, data_counts = self.conversations(ctx)
        path = self.model_path(ctx, conversations, accelerator, seed)
        model, tokenizer = load_model_and_tokenizer(
            path,
            dtype=o.dtype,
            attn_implementation=o.attn_implementation,
            trust_remote_code=o.trust_remote_code,
        )
        base = ctx.out_dir / "base"
        copy_base = o.save_base and o.model != "tiny" and accelerator.is_main_process
        if copy_base and not (base / "config.json").exists():  # a resumed run keeps its copy
            save_model(model, tokenizer, base)
        model = with_lora(model, o.lora, stage=ctx.stage)
        # every process tokenizes everything (each takes its own slice of each step)
        examples, dropped = self.tokenize(
            tokenizer, conversations, ctx.progress if accelerator.is_main_process else None
        )
        rows = make_rows(examples, o.max_length, packing=o.packing)
        if o.packing:
            check_packing_isolation(model)
        if o.gradient_checkpointing:
            model.gradient_checkpointing_enable(
                gradient_checkpointing_kwargs={"use_reentrant": False}
            )
        forward_args = ForwardArgs.of(model)
        # sharded parameters make every forward call a collective, and a shared prefix is run
        # once only in the micro-batches that have one: the processes would fall out of step
        sharded = accelerator_shards_parameters(accelerator)
        shared_prefix = o.shared_prefix and not o.gradient_checkpointing and not sharded
        if o.shared_prefix and not shared_prefix:
            ctx.log.warning(
                "%s: shared_prefix is off: %s",
                ctx.stage,
                "it needs a cache, which gradient checkpointing turns off"
                if o.gradient_checkpointing
                else "with sharded parameters every process must run the same forward calls",
            )
        world = accelerator.num_processes
        per_step = o.batch_size * o.grad_accum * world
        total_steps = o.max_steps or max(1, math.ceil(o.epochs * len(rows) / per_step))
        trainable = trainable_parameters(model)
        optimizer = adamw(
            trainable,
            lr=o.lr,
            betas=(o.adam_beta1, o.adam_beta2),
            eps=o.adam_eps,
            weight_decay=o.weight_decay,
        )
        scheduler = cosine_schedule(
            optimizer, math.ceil(o.warmup_ratio * total_steps), total_steps, o.min_lr_ratio
        )
        n_params = count_parameters(model)
        n_trainable = sum(p.numel() for p in trainable)
        model, optimizer = accelerator.prepare(model, optimizer)
        # a shared-prefix micro-batch runs its prefix once: forward calls may differ by process
        model = uneven_forward_calls(model)
        accelerator.register_for_checkpointing(scheduler)
        ckpts = CheckpointManager(
            ctx.out_dir / "checkpoints",
            accelerator,
            keep_full_state=o.keep_full_state,
            keep_weights=o.keep_weights,
        )
        state: dict[str, Any] = {"step": 0, "rows_consumed": 0, "tokens_seen": 0}
        latest = ckpts.latest_full()
        if latest is not None:
            loaded = ckpts.load(latest)
            state.update({k: loaded[k] for k in state if k in loaded})
            if loaded.get("total_steps") not in (None, total_steps):
                ctx.log.warning(
                    "%s: resuming a run planned for %s steps with %s steps",
                    ctx.stage,
                    loaded.get("total_steps"),
                    total_steps,
                )
            ctx.log.info("%s: resumed from %s (step %d)", ctx.stage, latest, state["step"])
        metrics_path = ctx.out_dir / METRICS
        main = accelerator.is_main_process
        if main:
            truncate_metrics(metrics_path, int(state["step"]))
        ctx.log.info(
            "%s: %d conversations -> %d rows, %d steps of %d rows on %d process(es), "
            "%.2f M parameters",
            ctx.stage,
            len(examples),
            len(rows),
            total_steps,
            per_step,
            world,
            n_params / 1e6,
        )
        if o.group_by_length:
            lengths = [sum(len(examples[i].input_ids) for i in row) for row in rows]
            stream = RowStream(len(rows), seed, lengths=lengths, batch=per_step)
        else:
            stream = RowStream(len(rows), seed)
        pad_id = int(tokenizer.pad_token_id)
        start = int(state["step"])
        steps = range(start, total_steps)
        bar = ctx.progress(steps, total=len(steps), desc=ctx.stage, unit="step") if main else steps
        t_train = time.perf_counter()
        for step in bar:
            t0 = time.perf_counter()
            step_rows = [rows[i] for i in stream.take(int(state["rows_consumed"]), per_step)]
            if shared_prefix:
                # rows with the same system prompt and tools into the same micro-batch; the
                # step's loss is over all its rows, so this changes nothing but speed
                step_rows.sort(key=lambda row: examples[row[0]].input_ids)
            out = self._optimizer_step(
                model,
                optimizer,
                scheduler,
                accelerator,
                step_rows,
                examples,
                pad_id,
                forward_args=forward_args,
                shared_prefix=shared_prefix,
            )
            state["step"] = step + 1
            state["rows_consumed"] = int(state["rows_consumed"]) + per_step
            state["tokens_seen"] = int(state["tokens_seen"]) + int(out["tokens"])
            elapsed = time.perf_counter() - t0
            metrics = {
                **out,
                "tokens_per_s": out["tokens"] / elapsed,
                "epoch": int(state["rows_consumed"]) / len(rows),
                "step_s": elapsed,
            }
            if main:
                ctx.log_metrics(metrics, step + 1)
                with metrics_path.open("a", encoding="utf-8") as fh:
                    fh.write(json.dumps({"step": step + 1, **metrics}) + "\n")
                if hasattr(bar, "set_postfix"):
                    bar.set_postfix(loss=f"{metrics['loss']:.4f}", refresh=False)
            due = o.checkpoint_every and (step + 1) % o.checkpoint_every == 0
            if due and step + 1 < total_steps:  # the end is saved below, as the model
                ckpts.save(
                    step + 1,
                    model,
                    tokenizer,
                    {**state, "total_steps": total_steps, "seed": seed, "world": world},
                )
        train_s = time.perf_counter() - t_train
        accelerator.wait_for_everyone()
        state_dict = accelerator.get_state_dict(model)
        summary = summarize(metrics_path)  # written by the main process, read by all
        summary.update(
            {
                "steps": total_steps,
                "model": str(ctx.out_dir / "model"),  # what report.md says the stage made
                "resumed_from_step": start,
                "conversations": len(examples),
                "rows": len(rows),
                "processes": world,
                "parameters": n_params,
                "trainable_parameters": n_trainable,
                "tokens_seen": int(state["tokens_seen"]),
                "train_s": round(train_s, 3),
                "stage_s": round(time.perf_counter() - t_start, 3),
                **{f"data_{k}": v for k, v in data_counts.items()},
                **{f"dropped_{k}": v for k, v in dropped.items()},
            }
        )
        final = accelerator.unwrap_model(model)
        if is_adapted(final):  # merged on every process, so the replicas stay alike
            final, state_dict = merged(final), None  # a plain model for the stages that load it
        if main:
            save_model(final, tokenizer, ctx.out_dir / "model", state_dict=state_dict)
            body = {
                "model": str(ctx.out_dir / "model"),
                "started_from": path,
                "options": options_to_dict(o),
                "metrics": summary,
            }
            done_path.write_text(json.dumps(body, indent=1), encoding="utf-8")
        accelerator.wait_for_everyone()
        self.model, self.tokenizer = final, tokenizer
        return summary

    def _optimizer_step(
        self,
        model: Any,
        optimizer: Any,
        scheduler: Any,
        accelerator: Any,
        step_rows: list[Row],
        examples: list[TokenizedConversation],
        pad_id: int,
        *,
        forward_args: ForwardArgs,
        shared_prefix: bool,
    ) -> dict[str, float]:
        """One optimizer step over ``step_rows`` (all processes' rows): this process's
        micro-batches, gradients averaged over every assistant token of the step."""
        o = self.options
        world = accelerator.num_processes
        denominator = sum(row_targets(r, examples) for r in step_rows)
        model.train()
        local = torch.zeros(2, dtype=torch.float64)
        for micro in range(o.grad_accum):
            first = (micro * world + accelerator.process_index) * o.batch_size
            batch = collate(
                step_rows[first : first + o.batch_size], examples, pad_id, packed=o.packing
            ).to(accelerator.device)
            last = micro == o.grad_accum - 1
            with nullcontext() if last else accelerator.no_sync(model):
                nll = assistant_nll(model, batch, args=forward_args, shared_prefix=shared_prefix)
                # DDP averages gradients over processes: scale to the step's token mean
                accelerator.backward(nll * (world / denominator))
            local[0] += float(nll.detach())
            local[1] += batch.tokens
        grad_norm = accelerator.clip_grad_norm_(
            model.parameters(), o.max_grad_norm if o.max_grad_norm > 0 else math.inf
        )
        lr = scheduler.get_last_lr()[0]
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        totals = accelerator.reduce(local.to(accelerator.device), reduction="sum").cpu()
        return {
            "loss": float(totals[0]) / denominator,
            "lr": float(lr),
            "grad_norm": float(grad_norm),
            "tokens": float(totals[1]),
            "target_tokens": float(denominator),
        }


def check_packing_isolation(model: Any) -> None:
    """Refuse packing for a model whose attention crosses the conversations packed in a row
    (transformers keeps them apart from restarting ``position_ids``; remote code may not)."""
    vocab = int(model.get_input_embeddings().weight.shape[0])
    gen = torch.Generator().manual_seed(0)
    a = torch.randint(0, vocab, (1, 6), generator=gen)
    b = torch.randint(0, vocab, (1, 5), generator=gen)
    positions = torch.cat([torch.arange(6), torch.arange(5)])[None]
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    with torch.no_grad():
        alone = model(input_ids=b.to(device), use_cache=False).logits
        packed = model(
            input_ids=torch.cat([a, b], 1).to(device),
            position_ids=positions.to(device),
            use_cache=False,
        ).logits[:, 6:]
    model.train(was_training)
    if not torch.allclose(alone.float(), packed.float(), atol=1e-3, rtol=1e-3):
        raise AstraError(
            f"packing = true, but {type(model).__name__} lets packed conversations attend to "
            "each other (it ignores restarting position_ids); set packing = false"
        )


def truncate_metrics(path: Path, step: int) -> None:
    """Forget metric lines of steps after the checkpoint a run resumes from."""
    if not path.exists():
        return
    kept = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            if int(json.loads(line)["step"]) <= step:
                kept.append(line)
        except (ValueError, KeyError, TypeError):
            continue  # a torn last line of a killed run
    path.write_text("".join(line + "\n" for line in kept), encoding="utf-8")


def summarize(metrics_path: Path) -> dict[str, Any]:
    """First and last loss and mean throughput of the whole run (all attempts)."""
    if not metrics_path.exists():
        return {}
    rows = [json.loads(x) for x in metrics_path.read_text(encoding="utf-8").splitlines() if x]
    if not rows:
        return {}
    tail = rows[-min(10, len(rows)) :]
    return {
        "loss_first": rows[0]["loss"],
        "loss_last": rows[-1]["loss"],
        "loss_last10": sum(r["loss"] for r in tail) / len(tail),
        "tokens_per_s": sum(r["tokens"] for r in rows) / max(1e-9, sum(r["step_s"] for r in rows)),
    }
