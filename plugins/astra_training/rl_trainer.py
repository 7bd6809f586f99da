"""The ``rl`` trainer: online multi-turn RL in arenas on Accelerate."""

from __future__ import annotations

import json
import math
import random
import time
from collections.abc import Callable, Sequence
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import torch

from astra_core.context import StageContext
from astra_core.errors import AstraError, ConfigError
from astra_core.protocols import CallCreditVerifier, Verifier
from astra_core.records import Arena, Episode
from astra_core.registry import ComponentBuilder
from astra_core.tool_errors import call_failed
from astra_training.accelerate_setup import make_accelerator, uneven_forward_calls
from astra_training.arena_family import ArenaVerifiers, load_arenas, renamed_arena, runtime_factory
from astra_training.batch_filling import AdaptiveBatchFiller
from astra_training.chat_tokens import ChatTokens
from astra_training.checkpoints import CheckpointManager
from astra_training.data_parallel import (
    check_split,
    gather_shares,
    reduce_sums,
    rollout_seed,
    share,
)
from astra_training.forward_pass import ForwardArgs
from astra_training.generation import GENERATORS, CachedPaddedGenerate, Sampling
from astra_training.grounding import copied_arguments
from astra_training.interleaved import InterleavedGenerate
from astra_training.logprobs import completion_logprobs
from astra_training.lora import merged, trainable_parameters, with_lora
from astra_training.models import load_model_and_tokenizer, resolve_model, save_model
from astra_training.optimization import adamw, constant_schedule
from astra_training.response_shaping import ResponseShaping
from astra_training.rl_options import RLOptions, RolloutOptions
from astra_training.rollout import Rollout, RolloutEngine
from astra_training.sampler_correction import sampler_logprob_matrix, truncated_importance_weights
from astra_training.server_rollout import ServerGenerate, WeightSync
from astra_training.sharding import (
    accelerator_shards_parameters,
    check_rollouts,
    full_state_dict,
)
from astra_training.turn_credit import padded_advantages, token_advantages


def make_engine(
    model: Any,
    tokenizer: Any,
    opts: RolloutOptions,
    *,
    parser: Any,
    verifier: Verifier | Callable[[Arena], Verifier],
    sandbox: Any,
    hook: Any,
) -> RolloutEngine:
    """A rollout engine for ``opts``; ``verifier`` is one for every arena or a function
    giving each arena's (``ArenaVerifiers``); runtimes come from ``hook``
    (``astra_arena_runtime``)."""
    chat = ChatTokens(tokenizer)
    generator: Any
    if opts.reuse_kv_cache and opts.generation_backend not in ("generate", "interleaved"):
        raise ConfigError(
            f"rollout.reuse_kv_cache applies to generation_backend = 'generate' (the "
            f"'interleaved' default keeps each episode's cache anyway), not "
            f"{opts.generation_backend!r}"
        )
    if opts.generation_backend == "server":
        if not opts.server.url:
            raise ConfigError("generation_backend = 'server' needs rollout.server.url")
        generator = ServerGenerate(opts.server, stop_ids=chat.stop_ids)
    elif opts.reuse_kv_cache and opts.generation_backend == "generate":
        generator = CachedPaddedGenerate(model, int(tokenizer.pad_token_id), chat.stop_ids)
    elif opts.generation_backend == "interleaved":
        generator = InterleavedGenerate(model, int(tokenizer.pad_token_id), chat.stop_ids)
    else:
        generator = GENERATORS[opts.generation_backend](
            model, int(tokenizer.pad_token_id), chat.stop_ids
        )
    return RolloutEngine(
        generator,
        chat,
        parser,
        verifier,
        runtime_factory(sandbox, hook),
        max_turns=opts.max_turns,
        max_new_tokens=opts.max_new_tokens,
        max_length=opts.max_length,
        stop_when_solved=opts.stop_when_solved,
        system_prompt=opts.system_prompt,
    )


def token_logprobs(
    model: Any, ids: torch.Tensor, attention: torch.Tensor, temperature: float
) -> torch.Tensor:
    """Log-probability of each next token, shape (batch, length - 1). The update uses
    ``completion_logprobs``, which gives the same values at the trained tokens for less."""
    logits = model(input_ids=ids, attention_mask=attention).logits[:, :-1].float()
    if temperature != 1.0:
        logits = logits / temperature
    return torch.log_softmax(logits, dim=-1).gather(-1, ids[:, 1:, None]).squeeze(-1)


def pad_batch(
    rollouts: Sequence[Rollout], pad_id: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    width = max(len(r.ids) for r in rollouts)
    ids = torch.full((len(rollouts), width), pad_id, dtype=torch.long)
    attention = torch.zeros_like(ids)
    mask = torch.zeros_like(ids, dtype=torch.float32)
    for row, r in enumerate(rollouts):
        ids[row, : len(r.ids)] = torch.tensor(r.ids)
        attention[row, : len(r.ids)] = 1
        mask[row, : len(r.mask)] = torch.tensor(r.mask, dtype=torch.float32)
    return ids, attention, mask[:, 1:]


def _encode(rollout: Rollout) -> dict[str, Any]:
    return {
        "episode": rollout.episode.to_dict(),
        "prompt_len": rollout.prompt_len,
        "call_credit": list(rollout.call_credit),
        "sampler_logprobs": list(rollout.sampler_logprobs),
    }


def _decode(item: dict[str, Any]) -> Rollout:
    episode = Episode.from_dict(item["episode"])
    credit = tuple(float(x) for x in item.get("call_credit", ()))
    logprobs = tuple(float(x) for x in item.get("sampler_logprobs", ()))
    return Rollout(
        episode, episode.token_ids, episode.loss_mask, int(item["prompt_len"]), credit, logprobs
    )


def _buffer_decoder(checkpoint: Path, turn_credit: float) -> Callable[[dict[str, Any]], Rollout]:
    """``_decode`` for the buffer of ``checkpoint``; with ``turn_credit`` it refuses episodes
    saved without their call credit (checkpoints of versions before turn_credit), naming the
    checkpoint, rather than failing later at the update."""

    def decode(item: dict[str, Any]) -> Rollout:
        rollout = _decode(item)
        if turn_credit and "call_credit" not in item and rollout.episode.calls:
            raise ConfigError(
                f"rl: checkpoint {checkpoint} holds buffered episodes without call credit "
                f"(written before turn_credit existed), which turn_credit = {turn_credit} "
                f"needs: resume with turn_credit = 0, or remove {checkpoint.parent} to start over"
            )
        return rollout

    return decode


class RLTrainer:
    """Rollouts of the current policy in training arenas, verifier rewards, policy updates."""

    def __init__(self, options: RLOptions, builder: ComponentBuilder) -> None:
        self.options = options
        self.builder = builder
        self.algorithm = builder.build("rl_algorithm", options.algorithm)
        # DAPO's overlong punishment and filtering (any algorithm that shapes by length)
        self.shaping = ResponseShaping(self.algorithm)
        if self._tis_cap and not getattr(self.algorithm, "per_token_advantages", False):
            name = options.algorithm.name
            plugin = builder.registry.get("rl_algorithm", name).plugin
            raise ConfigError(
                f"rl: rollout.server.tis_cap = {self._tis_cap} weights each token's loss, which "
                f"needs an algorithm that takes an advantage per token; rl_algorithm {name!r} "
                f"(plugin {plugin}) takes one per sequence: set tis_cap = 0"
            )
        self.verifier = ArenaVerifiers(
            builder, options.verifier, hook=builder.hook, key="train-rl.trainer.verifier"
        )
        self.parser = builder.build("tool_call_parser", options.parser)
        self.sandbox = builder.build("sandbox", options.sandbox)
        self._rollout_log: Path | None = None  # set by run() under rollout_log
        if options.verifier is not None:  # one for every arena: refused now, not at run time
            self._check_call_credit({options.verifier.name: self.verifier.shared()})
        if options.turn_credit and not getattr(self.algorithm, "per_token_advantages", False):
            name = options.algorithm.name
            plugin = builder.registry.get("rl_algorithm", name).plugin
            raise ConfigError(
                f"rl: turn_credit = {options.turn_credit} needs an algorithm that takes an "
                f"advantage per token (per_token_advantages = True); rl_algorithm {name!r} "
                f"(plugin {plugin}) takes one per sequence"
            )

    @property
    def _tis_cap(self) -> float:
        """The cap of the sampler correction; 0 when it is off or rollouts are local."""
        rollout = self.options.rollout
        return rollout.server.tis_cap if rollout.generation_backend == "server" else 0.0

    def _check_call_credit(self, verifiers: dict[str, Verifier]) -> None:
        """Each verifier has call_credit when turn_credit asks for it."""
        if not self.options.turn_credit:
            return
        for name, verifier in verifiers.items():
            if not isinstance(verifier, CallCreditVerifier):
                plugin = self.builder.registry.get("verifier", name).plugin
                raise ConfigError(
                    f"rl: turn_credit = {self.options.turn_credit} needs a verifier with "
                    f"call_credit(); verifier {name!r} (plugin {plugin}) has none"
                )

    def run(self, ctx: StageContext) -> dict[str, Any]:
        o = self.options
        accelerator = make_accelerator()
        check_split(ctx.stage, o.groups_per_step, o.groups_per_rollout, accelerator.num_processes)
        sharded = accelerator_shards_parameters(accelerator)
        check_rollouts(ctx.stage, sharded, o.rollout.generation_backend, lora=o.lora.r > 0)
        arenas = load_arenas(ctx, o.arenas, holdout=False, sandbox=self.sandbox)
        self._check_call_credit(self.verifier.for_arenas(arenas))
        if o.rename_arenas:  # refused before any rollout, not at the step that first picks one
            probe = random.Random(0)
            if all(renamed_arena(ctx.hook, a, probe) is a for a in arenas):
                raise AstraError(
                    f"{ctx.stage}: rename_arenas = true, but the {len(arenas)} arenas of "
                    f"{o.arenas} record no entity names to rename (e.g. {arenas[0].id}): no "
                    "plugin renames arenas of their kind"
                )
        self._model_path = resolve_model(o.model, ctx.run_dir, key=f"{ctx.stage}.model")
        model, tokenizer = load_model_and_tokenizer(self._model_path, dtype=o.rollout.dtype)
        model = with_lora(model, o.lora, stage=ctx.stage)
        trainable = trainable_parameters(model)
        counts = (sum(p.numel() for p in trainable), sum(p.numel() for p in model.parameters()))
        optimizer = adamw(trainable, lr=o.lr, weight_decay=o.weight_decay)
        scheduler = constant_schedule(optimizer, o.warmup_steps)
        model, optimizer = accelerator.prepare(model, optimizer)
        # a process's forward calls per update vary (one per prompt group, idle passes)
        model = uneven_forward_calls(model)
        accelerator.register_for_checkpointing(scheduler)
        policy = accelerator.unwrap_model(model)
        engine = make_engine(
            policy,
            tokenizer,
            o.rollout,
            parser=self.parser,
            verifier=self.verifier,
            sandbox=self.sandbox,
            hook=ctx.hook,
        )
        # groups are judged on the rewards training sees (shaped, where the algorithm shapes)
        filler: AdaptiveBatchFiller[Rollout] = AdaptiveBatchFiller(
            delta=o.filter_std_delta, reward=self.shaping.reward
        )
        ckpts = CheckpointManager(
            ctx.out_dir / "checkpoints",
            accelerator,
            keep_full_state=o.keep_checkpoints,
            keep_weights=o.keep_checkpoints,
        )
        metrics_path = ctx.out_dir / "metrics.jsonl"
        main = accelerator.is_main_process
        self._rollout_log = (
            ctx.out_dir / "rollouts" / f"rank-{accelerator.process_index}.jsonl"
            if o.rollout_log
            else None
        )
        start = 0
        latest = ckpts.latest_full()
        if latest is not None:
            state = ckpts.load(latest)
            start = int(state["step"])
            if state.get("filler"):
                filler.load_state_dict(
                    state["filler"], decode=_buffer_decoder(latest, o.turn_credit)
                )
            ctx.log.info("resumed from %s (step %d)", latest, start)
        if main:
            _truncate_metrics(metrics_path, start)
        if self._rollout_log is not None:  # each process its own
            _truncate_metrics(self._rollout_log, start)
        accelerator.wait_for_everyone()
        sampling = Sampling(do_sample=True, temperature=o.temperature, top_p=o.top_p, top_k=o.top_k)
        sync = None
        if isinstance(engine.generator, ServerGenerate):
            server = o.rollout.server
            sync_dir = Path(server.sync_dir) if server.sync_dir else ctx.out_dir / "weights-sync"
            sync = WeightSync(engine.generator, sync_dir, accelerator)
            if start:  # the server may hold other weights than the checkpoint resumed from
                sync.push(policy, tokenizer, start, full_state_dict(accelerator, model))
        last: dict[str, Any] = {}
        history: list[dict[str, Any]] = []
        steps = range(start, o.steps)
        if main:
            steps = ctx.progress(steps, total=o.steps - start, desc="train-rl", unit="step")
        for step in steps:
            # Every process draws the same plan from (seed, step), so a resumed run, and any
            # number of processes, samples what an unbroken one-process run would.
            rng = ctx.rng(f"step-{step}")
            t0 = time.perf_counter()
            batch, fill = self._fill(engine, arenas, filler, rng, sampling, step, accelerator)
            t_roll = time.perf_counter() - t0
            torch.manual_seed(self.builder.seed * 100003 + step)
            t1 = time.perf_counter()
            loss_metrics = (
                self._update(model, optimizer, scheduler, accelerator, batch, tokenizer)
                if batch
                else {}
            )
            t_train = time.perf_counter() - t1
            if sync and batch and (step + 1) % o.rollout.server.sync_every == 0:
                # The server samples the next rollouts: give it the weights just trained.
                sync.push(policy, tokenizer, step + 1, full_state_dict(accelerator, model))
            episodes = [r for g in fill.pop("all_groups") for r in g]
            m = _episode_metrics(episodes)
            gen_tokens = fill.pop("generated_tokens")
            m.update(fill)
            m.update(loss_metrics)
            m.update(
                {
                    "step": step + 1,
                    "lr": float(scheduler.get_last_lr()[0]),
                    "rollout_s": t_roll,
                    "train_s": t_train,
                    "tokens_per_s": gen_tokens / max(t_roll, 1e-9),
                    "trained_sequences": sum(len(g) for g in batch),
                }
            )
            last = m
            history.append(m)
            if main:  # every process holds the same (gathered, reduced) metrics
                ctx.log_metrics(m, step + 1)
                with metrics_path.open("a", encoding="utf-8") as fh:
                    fh.write(json.dumps(m) + "\n")
            if o.checkpoint_every and (step + 1) % o.checkpoint_every == 0 and step + 1 < o.steps:
                # every process: save_state writes each one's RNG states
                ckpts.save(
                    step + 1, model, tokenizer, {"filler": filler.state_dict(encode=_encode)}
                )
        accelerator.wait_for_everyone()
        gathered = full_state_dict(accelerator, model)  # every process: a collective when sharded
        final = merged(policy)  # the adapters folded in (on every process, alike)
        if accelerator.is_main_process:
            save_model(final, tokenizer, ctx.out_dir / "model", state_dict=gathered)
        summary: dict[str, Any] = {k: v for k, v in last.items() if isinstance(v, (int, float))}
        summary["trainable_parameters"], summary["parameters"] = counts
        # what report.md says the stage made
        summary.update({"steps": o.steps, "model": str(ctx.out_dir / "model")})
        if history:
            summary["reward_first"] = history[0]["reward"]
            summary["reward_last"] = history[-1]["reward"]
        return summary

    def _fill(
        self,
        engine: RolloutEngine,
        arenas: list[Arena],
        filler: AdaptiveBatchFiller[Rollout],
        rng: Any,
        sampling: Sampling,
        step: int = 0,
        accelerator: Any = None,
    ) -> tuple[list[list[Rollout]], dict[str, Any]]:
        """Roll out until a batch of valid groups is full (buffered groups first) or the round
        budget is spent; then train on what there is.

        Every process draws the round's arenas alike and rolls out its own contiguous share of
        the groups; the groups are then gathered, so every process fills the same batch and
        keeps the same buffer (one decision, taken identically everywhere). Without an
        ``accelerator`` this process rolls out every group."""
        o = self.options
        world, rank = (
            (accelerator.num_processes, accelerator.process_index) if accelerator else (1, 0)
        )
        batch: list[list[Rollout]] | None = None
        all_groups: list[list[Rollout]] = []
        filtered = rounds = generated = from_buffer = 0
        while batch is None and rounds < o.max_fill_rounds:
            rounds += 1
            picked = [arenas[rng.randrange(len(arenas))] for _ in range(o.groups_per_step)]
            if o.rename_arenas:
                picked = [renamed_arena(self.builder.hook, a, rng) for a in picked]
            mine = share(len(picked), world, rank)
            per_batch = o.groups_per_rollout or len(mine)
            local: list[list[Rollout]] = []
            tokens = 0
            for first in range(mine.start, mine.stop, per_batch):
                # seeded by the group, not the process: the same draw on any number of them
                torch.manual_seed(rollout_seed(self.builder.seed, step, rounds, first))
                part = picked[first : min(first + per_batch, mine.stop)]
                rollouts, stats = engine.run(
                    [a for a in part for _ in range(o.group_size)], sampling
                )
                tokens += stats.generated_tokens
                local += [
                    rollouts[i * o.group_size : (i + 1) * o.group_size] for i in range(len(part))
                ]
            self._log_rollouts(step, rounds, mine.start, local)
            if world > 1:
                payload = {"groups": [[_encode(r) for r in g] for g in local], "tokens": tokens}
                shared = gather_shares(accelerator, [payload])  # one per process, rank order
                groups = [[_decode(item) for item in g] for p in shared for g in p["groups"]]
                generated += sum(int(p["tokens"]) for p in shared)
            else:
                groups, generated = local, generated + tokens
            all_groups += groups
            batch, fill = filler.fill(groups, o.groups_per_step)
            filtered += int(fill["filtered_groups"])
            from_buffer = max(from_buffer, int(fill["groups_from_buffer"]))
        if batch is None:
            batch = filler.flush(o.groups_per_step)
        return batch, {
            "all_groups": all_groups,
            "generated_tokens": generated,
            "filtered_groups": filtered,
            "groups_from_buffer": from_buffer,
            "buffer_size": len(filler),
            "fill_rounds": rounds,
        }

    def _log_rollouts(
        self, step: int, round_: int, first: int, groups: list[list[Rollout]]
    ) -> None:
        """What this process rolled out this round, one line an episode (``rollout_log``)."""
        if self._rollout_log is None:
            return
        self._rollout_log.parent.mkdir(parents=True, exist_ok=True)
        with self._rollout_log.open("a", encoding="utf-8") as fh:
            for g, group in enumerate(groups, start=first):
                for e, r in enumerate(group):
                    line = {
                        "step": step + 1,
                        "round": round_,
                        "group": g,
                        "episode": e,
                        "arena_id": r.episode.arena_id,
                        "episode_id": r.episode.id,
                        "reward": r.reward,
                    }
                    fh.write(json.dumps(line) + "\n")

    def _update(
        self,
        model: Any,
        optimizer: Any,
        scheduler: Any,
        accelerator: Any,
        batch: list[list[Rollout]],
        tokenizer: Any,
    ) -> dict[str, float]:
        """One RL update on ``batch`` (the same on every process): each process trains on its
        contiguous share of the groups; the loss is scaled so that Accelerate's gradient mean
        over processes is the gradient of the whole batch's loss."""
        o = self.options
        rollouts = [r for g in batch for r in g]
        penalties = self.shaping.penalties(rollouts)
        raw = torch.tensor([r.reward for r in rollouts], dtype=torch.float32)
        rewards = (raw + penalties).reshape(len(batch), -1)
        advantages = self.algorithm.advantages(rewards).reshape(-1)
        # a sequence weighted 0 (a truncated response under overlong filtering) trains nothing
        # and does not count in the loss denominator
        seq_weights = self.shaping.weights(rollouts)
        per_token = token_advantages(batch, advantages, o.turn_credit) if o.turn_credit else None
        device = accelerator.device
        world = accelerator.num_processes
        starts = [0]
        for g in batch:
            starts.append(starts[-1] + len(g))
        shares = [share(len(batch), world, rank) for rank in range(world)]
        mine = shares[accelerator.process_index]
        first = starts[mine.start]
        local = rollouts[first : starts[mine.stop]]
        local_weights = seq_weights[first : starts[mine.stop]]
        # Every process makes as many passes (DDP reduces at the last backward of each update);
        # one whose share is shorter makes idle ones.
        widest = max(starts[s.stop] - starts[s.start] for s in shares)
        micro = o.micro_batch_size or max(widest, 1)
        passes = max(1, math.ceil(widest / micro))
        # The whole batch's loss denominator, shared by every micro-batch of every process
        # (token-level averaging over the whole batch, as the paper does), when the algorithm
        # defines one: each pass's loss is then its additive share of the batch's loss.
        counts = [
            round(sum(r.mask[1:]) * float(w)) for r, w in zip(rollouts, seq_weights, strict=True)
        ]
        normalizer = (
            self.algorithm.loss_normalizer(counts)
            if hasattr(self.algorithm, "loss_normalizer")
            else None
        )
        pad_id = int(tokenizer.pad_token_id)
        # Rows with the same prompt (a group's episodes) share its forward pass.
        prompts: dict[tuple[int, ...], int] = {}
        labels = [prompts.setdefault(tuple(r.ids[: r.prompt_len]), len(prompts)) for r in local]
        forward = ForwardArgs.of(model)
        summed: dict[str, float] = {}  # additive over passes and processes
        grad_norm_mean = 0.0
        old_cache: dict[int, torch.Tensor] = {}
        ref_cache: dict[int, torch.Tensor] = {}
        adv_cache: dict[int, torch.Tensor] = {}
        for _ in range(o.ppo_epochs):
            optimizer.zero_grad(set_to_none=True)
            for p in range(passes):
                start = p * micro
                chunk = local[start : start + micro]
                with nullcontext() if p == passes - 1 else accelerator.no_sync(model):
                    if not chunk:
                        accelerator.backward(_idle_loss(model, device, pad_id))
                        continue
                    ids, attention, mask = pad_batch(chunk, pad_id)
                    ids, attention, mask = ids.to(device), attention.to(device), mask.to(device)
                    groups = labels[start : start + micro]
                    logprobs = completion_logprobs(
                        model,
                        ids,
                        attention,
                        mask,
                        o.temperature,
                        prompt_groups=groups,
                        args=forward,
                    )
                    # One update per batch by default: the sampling policy is the current one.
                    old = old_cache.setdefault(p, logprobs.detach())
                    kwargs: dict[str, Any] = {}
                    if normalizer is not None:
                        kwargs["normalizer"] = normalizer
                    if getattr(self.algorithm, "needs_reference", False):
                        if p not in ref_cache:
                            with torch.no_grad():
                                ref_cache[p] = completion_logprobs(
                                    self._reference(accelerator),
                                    ids,
                                    attention,
                                    mask,
                                    o.temperature,
                                    prompt_groups=groups,
                                )
                        kwargs["ref_logprobs"] = ref_cache[p]
                    if p not in adv_cache:  # the same for every PPO epoch
                        rows = slice(first + start, first + start + len(chunk))
                        adv_cache[p] = (
                            padded_advantages(per_token[rows], ids.shape[1])
                            if per_token is not None
                            else advantages[rows]
                        ).to(device)
                    adv = adv_cache[p]
                    sampler = sampler_logprob_matrix(chunk, ids.shape[1]) if self._tis_cap else None
                    if sampler is not None:
                        # truncated importance sampling: the server sampled, not this policy
                        weights, tis = truncated_importance_weights(
                            old, sampler, mask, self._tis_cap
                        )
                        adv = (adv[:, None] if adv.dim() == 1 else adv) * weights
                    loss_mask = mask * local_weights[start : start + len(chunk), None].to(device)
                    loss, parts = self.algorithm.policy_loss(
                        logprobs, old, adv, loss_mask, **kwargs
                    )
                    if sampler is not None:
                        parts = {**parts, **tis}
                    # DDP averages the processes' gradients: scale each back to its share's sum
                    accelerator.backward(loss * world)
                summed["loss"] = summed.get("loss", 0.0) + float(loss.item()) / o.ppo_epochs
                # metrics are over the batch and its ppo_epochs updates: a loss share adds up,
                # a per-token mean is weighted by its rows' share of the batch
                weight = len(chunk) / len(rollouts) / o.ppo_epochs
                for key, value in parts.items():
                    additive = key == "pg_loss" and normalizer is not None
                    scale = 1.0 / o.ppo_epochs if additive else weight
                    summed[key] = summed.get(key, 0.0) + float(value) * scale
            grad_norm = (
                accelerator.clip_grad_norm_(model.parameters(), o.max_grad_norm)
                if o.max_grad_norm > 0
                else _grad_norm(model)
            )
            optimizer.step()
            grad_norm_mean += float(grad_norm) / o.ppo_epochs  # after the reduce: global
        scheduler.step()  # once per RL step, so warmup_steps counts steps at any ppo_epochs
        out = reduce_sums(accelerator, summed)
        out["grad_norm"] = grad_norm_mean
        out["advantage_abs_mean"] = float(advantages.abs().mean())
        if self.shaping.active:
            out["overlong_penalty_mean"] = float(penalties.mean())
            out["overlong_filtered"] = float((seq_weights == 0).sum())
        return out

    def _reference(self, accelerator: Any) -> Any:
        """The frozen starting policy, for algorithms with a KL term to a reference."""
        if getattr(self, "_ref_model", None) is None:
            model, _ = load_model_and_tokenizer(self._model_path, dtype=self.options.rollout.dtype)
            self._ref_model = model.to(accelerator.device).eval()
        return self._ref_model


def _idle_loss(model: Any, device: Any, pad_id: int) -> torch.Tensor:
    """A zero loss through the whole model, for a pass in which this process has no rows: DDP
    (and FSDP) need every process to run the same forward and backward passes."""
    ids = torch.full((1, 1), pad_id, dtype=torch.long, device=device)
    return model(input_ids=ids).logits.float().sum() * 0.0


def _grad_norm(model: Any) -> float:
    total = sum(float(p.grad.pow(2).sum()) for p in model.parameters() if p.grad is not None)
    return math.sqrt(total)


def _episode_metrics(rollouts: Sequence[Rollout]) -> dict[str, float]:
    n = max(1, len(rollouts))
    rewards = [r.episode.reward for r in rollouts if r.episode.reward is not None]
    counts = [copied_arguments(r.episode.messages) for r in rollouts]
    arguments = sum(total for _, total in counts)
    return {
        "reward": sum(x.value for x in rewards) / n,
        "recall": sum(x.recall for x in rewards) / n,
        "precision": sum(x.precision for x in rewards) / n,
        "success_rate": sum(1 for x in rewards if x.success) / n,
        "calls_per_episode": sum(len(r.episode.calls) for r in rollouts) / n,
        # malformed, refused, raised, or answered with an error object (a miscopied name)
        "failed_calls_per_episode": sum(sum(map(call_failed, r.episode.calls)) for r in rollouts)
        / n,
        # of the calls' string arguments, the share found verbatim earlier in the episode
        "copied_args": sum(c for c, _ in counts) / arguments if arguments else 0.0,
        "turns_per_episode": sum(r.episode.turns for r in rollouts) / n,
        "episode_tokens": sum(len(r.ids) for r in rollouts) / n,
        "episodes": float(len(rollouts)),
    }


def _truncate_metrics(path: Path, step: int) -> None:
    """Forget metric lines written after the checkpoint a run resumes from."""
    if not path.exists():
        return
    kept = [
        line
        for line in path.read_text(encoding="utf-8").splitlines()
        if line.strip() and _line_step(line) <= step
    ]
    path.write_text("".join(line + "\n" for line in kept), encoding="utf-8")


def _line_step(line: str) -> int:
    try:
        return int(json.loads(line)["step"])
    except (ValueError, KeyError, TypeError):
        return 1 << 30  # a torn line: drop it
