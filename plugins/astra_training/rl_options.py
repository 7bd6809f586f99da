"""Options of the RL trainer and the arena evaluator."""

from __future__ import annotations

from typing import Any, Literal

import attrs

from astra_core.options import at_least, component, greater_than, option, within
from astra_training.lora import LoraOptions
from astra_training.server_options import ServerOptions


@attrs.frozen
class RolloutOptions:
    max_turns: int = option(
        "assistant turns per episode, or per user turn in arenas with several (the paper: 32)",
        8,
        at_least(1),
    )
    max_new_tokens: int = option("tokens the policy may generate per turn", 128, at_least(1))
    max_length: int = option("cap on prompt + every turn, in tokens", 2048, at_least(1))
    stop_when_solved: bool = option("end an episode once every sub-question is solved", False)
    system_prompt: str | None = option("system message before the question (None: none)", None)
    generation_backend: Literal["generate", "interleaved", "continuous-batching", "server"] = (
        option(
            "'interleaved': one decode loop over one key/value cache of every live episode, "
            "in which each episode's next turn starts as soon as its own tool calls return "
            "(its cache extended with their output, never re-encoded), each episode sampling "
            "from its own seeded draws; 'generate': padded model.generate turn by turn; "
            "'continuous-batching': transformers' (GPU); 'server': a vLLM or SGLang server "
            "(the table rollout.server)",
            "interleaved",
        )
    )
    server: ServerOptions = attrs.field(
        factory=ServerOptions,
        metadata={"help": "the vLLM or SGLang server of generation_backend = 'server': a table"},
    )
    reuse_kv_cache: bool = option(
        "keep each live episode's key/value cache between turns so a turn prefills only the "
        "tokens added since the last (backend 'generate'; holds one batch's cache in memory; "
        "'interleaved' always does)",
        False,
    )
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = option("model dtype", "auto")


def per_arena_verifier() -> Any:
    """The ``verifier`` option of the trainer and the evaluator: unset by default."""
    return component(
        "verifier",
        factory=lambda: None,
        help="one verifier for every arena; unset: each arena's own, named by its plugin "
        "(astra_arena_verifier: subtask-f1 for offline worlds, bfcl-multi-turn for BFCL)",
    )


@attrs.frozen
class RLOptions:
    model: str = option(
        "a stage (train-sft), a stage sub-directory, a local path or a hub id", "train-sft"
    )
    arenas: str = option(
        "the stage whose training arenas (split by that stage) are trained on", "synth-arenas"
    )
    algorithm: Any = component("rl_algorithm", default="grpo")
    verifier: Any = per_arena_verifier()
    parser: Any = component("tool_call_parser", default="hermes")
    sandbox: Any = component("sandbox", default="bubblewrap")
    steps: int = option("optimizer steps", 20, at_least(1))
    groups_per_step: int = option(
        "arenas (groups) per batch; batch = groups x group_size", 4, at_least(1)
    )
    group_size: int = option(
        "episodes per arena (G; advantages compare a group's episodes, so at least 2)",
        8,
        at_least(2),
    )
    groups_per_rollout: int = option(
        "groups rolled out together in one generation batch, each batch sampled from a seed of "
        "(run seed, step, fill round, its first group), so its episodes do not depend on which "
        "process rolls it out: runs on any number of processes whose share of groups_per_step "
        "it divides give the same episodes (0: each process's whole share in one batch, "
        "fastest, but then the episodes depend on the number of processes)",
        0,
        at_least(0),
    )
    filter_std_delta: float = option(
        "drop groups whose reward std <= delta (adaptive batch filling)", 0.0, at_least(0)
    )
    max_fill_rounds: int = option(
        "rollout rounds per step to fill the batch before training on less", 4, at_least(1)
    )
    lr: float = option("learning rate (the paper: 2e-6 on 14B/32B)", 2e-6, greater_than(0))
    weight_decay: float = 0.0
    warmup_steps: int = 0
    max_grad_norm: float = option("gradient clipping (0: off)", 1.0, at_least(0))
    ppo_epochs: int = option(
        "updates per rollout batch (the paper: 1, strictly on-policy)", 1, at_least(1)
    )
    micro_batch_size: int = option(
        "sequences per forward/backward pass (0: the whole batch)", 0, at_least(0)
    )
    temperature: float = option("sampling temperature of rollouts", 1.0, greater_than(0))
    top_p: float = option(
        "nucleus sampling: the smallest set of tokens this likely", 1.0, within(0, 1)
    )
    top_k: int = option("sample among the k likeliest tokens only (0: all)", 0, at_least(0))
    rename_arenas: bool = option(
        "roll out each picked training arena over freshly named entities, where its plugin "
        "renames arenas of its kind (offline worlds: their recorded names; others are played "
        "as they are): held-out arenas hold names the policy never saw, so the reward is for "
        "copying names, not for recalling them",
        False,
    )
    turn_credit: float = option(
        "weight of each turn's own advantage, from its calls' credit against the group's other "
        "turns, added to the episode's advantage on the turn's tokens (0: episode-level only; "
        "needs a verifier with call_credit, as subtask-f1)",
        0.0,
        at_least(0),
    )
    checkpoint_every: int = option(
        "save a full checkpoint every N steps (0: only at the end)", 10, at_least(0)
    )
    keep_checkpoints: int = option("full checkpoints kept (the latest ones)", 2, at_least(1))
    rollout_log: bool = option(
        "each process writes what it rolled out (step, fill round, group, episode index, arena "
        "id, episode id, reward) to rollouts/rank-<N>.jsonl under the stage directory: shows "
        "how a data-parallel run split its steps",
        False,
    )
    lora: LoraOptions = attrs.field(
        factory=LoraOptions,
        metadata={"help": "low-rank adapters (peft) instead of every weight: a table, r = 0 off"},
    )
    rollout: RolloutOptions = attrs.field(factory=RolloutOptions)


@attrs.frozen
class EvalOptions:
    models: tuple[str, ...] = option(
        "models to evaluate side by side (stages, stage sub-directories, paths or hub ids)",
        ("train-sft/base", "train-sft", "train-rl"),
    )
    arenas: str = option(
        "the stage whose held-out arenas (split by that stage) are evaluated", "synth-arenas"
    )
    limit: int = option("evaluate at most this many held-out arenas (0: all)", 0, at_least(0))
    batch_size: int = option("episodes generated together", 32, at_least(1))
    verifier: Any = per_arena_verifier()
    parser: Any = component("tool_call_parser", default="hermes")
    sandbox: Any = component("sandbox", default="bubblewrap")
    greedy: bool = option("greedy decoding (else temperature sampling)", True)
    temperature: float = 0.6
    skip_missing: bool = option("skip a model whose stage has not run instead of failing", True)
    rollout: RolloutOptions = attrs.field(factory=RolloutOptions)
