"""Options of the tiny-model builder and of the ``sft`` trainer."""

from __future__ import annotations

from typing import Any, Literal

import attrs

from astra_core.options import at_least, component, greater_than, option
from astra_training.lora import LoraOptions


def _at_most_renamings(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    at_least(0)(instance, attribute, value)
    if value > instance.arena_demo_renamings:
        raise ValueError(
            f"{attribute.name} ({value}) must be at most arena_demo_renamings "
            f"({instance.arena_demo_renamings}): only renamed copies get a retry"
        )


@attrs.frozen
class TinyModelOptions:
    """A Qwen3- (or Llama-) architecture model built from scratch, with a BPE tokenizer trained
    on the run's own data. The defaults (about 1 M parameters) learn a tool-calling format on two
    CPU cores in minutes; a Qwen3-0.6B-like shape for a GPU is hidden_size 1024, num_layers 28,
    num_heads 16, num_kv_heads 8, head_dim 128, intermediate_size 3072 (about 0.45 B with a 2k
    vocabulary)."""

    vocab_size: int = option(
        "BPE vocabulary size, special tokens and the 256 bytes included",
        1024,
        validator=greater_than(0),
    )
    min_frequency: int = option("a pair is merged only when it occurs this often", 2)
    tokenizer_conversations: int = option(
        "train the tokenizer on at most this many conversations, spread evenly over the data "
        "(0: all of them); a sample finds the same frequent pieces sooner",
        2000,
        at_least(0),
    )
    isolate_spaces: bool = option(
        "make each space its own token, so a word is the same tokens after a space as after a "
        "quote: copying a name from the question into a call's JSON arguments is then a "
        "token-for-token copy, which a tiny model learns far sooner (sequences get longer)",
        False,
    )
    tools_format: Literal["json", "signatures", "names"] = option(
        "how the chat template lists tools: 'json' (their schemas, as Qwen does), "
        "'signatures' (one 'name(arg, ...): description' line each, a few times fewer tokens) "
        "or 'names' (a bare 'name(arg, ...)' line each under a one-line instruction: the "
        "shortest prompt); tool calls keep the Hermes <tool_call> JSON either way",
        "json",
    )
    architecture: Literal["qwen3", "llama"] = option(
        "'qwen3' (RMS-normed queries and keys) or 'llama' (none): a normed head of width 16 "
        "caps its attention logits near 4 x the norm weights squared, so the sharp attention "
        "that copying a name needs forms late; 'llama' lets the logits grow with the weights",
        "qwen3",
        attrs.validators.in_(("qwen3", "llama")),
    )
    hidden_size: int = option("width", 128, validator=greater_than(0))
    num_layers: int = option("decoder layers", 4, validator=greater_than(0))
    num_heads: int = option("attention heads", 4, validator=greater_than(0))
    num_kv_heads: int = option("key/value heads (grouped-query)", 2, validator=greater_than(0))
    head_dim: int = option("width of a head (0: hidden_size / num_heads)", 0)
    intermediate_size: int = option("MLP width", 384, validator=greater_than(0))
    max_position_embeddings: int = option(
        "longest sequence the rotary embedding is set up for", 4096
    )
    rope_theta: float = option("rotary embedding base", 10000.0)
    tie_word_embeddings: bool = option("share the input embedding and the output head", True)


@attrs.frozen
class SFTOptions:
    """Supervised fine-tuning on OpenAI-messages conversations, loss on assistant tokens only."""

    model: str = option(
        '"tiny" (build one from the training data), a local directory or a hub id', "tiny"
    )
    tiny: TinyModelOptions = attrs.field(
        factory=TinyModelOptions, metadata={"help": 'shape of the model built when model = "tiny"'}
    )
    trajectories: str = option(
        'stage whose trajectories (status "ok") are trained on; "" to read none',
        "synth-trajectories",
    )
    data_files: tuple[str, ...] = option(
        'OpenAI-messages JSONL files (one {"messages": [...], "tools": [...]} per line); '
        "relative paths are read from the config file's directory",
        (),
    )
    arena_demos: str = option(
        "stage whose training arenas (never the held-out ones) are replayed into demonstrations "
        'from their sandbox-verified calls; "" for none',
        "",
    )
    arena_demo_copies: int = option(
        "each demonstration is trained on this many times per epoch", 1, validator=greater_than(0)
    )
    arena_demo_renamings: int = option(
        "extra demonstrations per training arena, each with every entity renamed (fresh names, "
        "same facts; what a sandbox replay of the renamed arena prints): names seldom repeat, "
        "so the model learns to copy them instead of recalling them",
        0,
        at_least(0),
    )
    arena_demo_retries: int = option(
        "how many of each demonstration's renamed copies first call one tool with a misspelt "
        "name, get the tool's error from the sandbox and call again with the name right (the "
        "failed turn is context, not trained on): a model that slips on a name learns to retry",
        0,
        _at_most_renamings,
    )
    tool_output_weight: float = option(
        "loss weight of the tokens inside tool responses (0: assistant tokens only): for a "
        "model trained from scratch, whose tool outputs echo the names its calls copied, an "
        "extra short-range copy to learn from (on the quickstart it did not lift the three-seed "
        "mean); leave it 0 for a pretrained model",
        0.0,
        at_least(0),
    )
    sandbox: Any = component("sandbox", default="bubblewrap", help="where arena calls replay")
    system_prompt: str | None = option(
        "system message put first in conversations that have none (use the one RL and eval use)",
        None,
    )
    max_length: int = option("tokens per sequence", 1024, validator=greater_than(0))
    overlong: Literal["truncate", "drop"] = option(
        "what happens to a conversation longer than max_length", "truncate"
    )
    packing: bool = option(
        "pack several conversations into each max_length row (attention stays per conversation)",
        False,
    )
    shared_prefix: bool = option(
        "compute the token prefix a micro-batch shares (system prompt and tools) once and reuse "
        "its key/value cache for every row: same loss, much faster when the prefix is long",
        True,
    )
    group_by_length: bool = option(
        "put rows of similar length in the same step (sorted within windows of 16 steps of the "
        "shuffled order, then the steps shuffled): less padding, faster steps",
        False,
    )
    batch_size: int = option("sequences per process per micro-batch", 8, validator=greater_than(0))
    grad_accum: int = option("micro-batches per optimizer step", 1, validator=greater_than(0))
    epochs: float = option("passes over the data", 1.0, validator=greater_than(0))
    max_steps: int = option("optimizer steps (0: from epochs)", 0, validator=at_least(0))
    lr: float = option("peak learning rate (tiny models: 1e-3 to 3e-3; pretrained: ~1e-5)", 2e-3)
    warmup_ratio: float = option("fraction of the steps spent warming up linearly", 0.05)
    min_lr_ratio: float = option("the cosine decays to lr times this", 0.0)
    weight_decay: float = option("AdamW weight decay", 0.0)
    adam_beta1: float = 0.9
    adam_beta2: float = 0.999
    adam_eps: float = 1e-8
    max_grad_norm: float = option("gradient clipping (0: off)", 1.0)
    seed: int | None = option(
        "data order, renamed demonstrations and model init (None: the run seed)", None
    )
    dtype: Literal["float32", "bfloat16", "float16", "auto"] = option(
        "dtype the weights are loaded in (keep float32 and use mixed_precision on GPUs)", "float32"
    )
    mixed_precision: Literal["no", "bf16", "fp16"] = option(
        "autocast through accelerate (`accelerate launch --mixed_precision` also sets it)", "no"
    )
    gradient_checkpointing: bool = option("recompute activations in backward to save memory", False)
    attn_implementation: str | None = option(
        'attention kernel passed to from_pretrained ("sdpa", "eager", "flash_attention_2")', None
    )
    trust_remote_code: bool = option("allow hub models that ship their own code", False)
    lora: LoraOptions = attrs.field(
        factory=LoraOptions,
        metadata={"help": "low-rank adapters (peft) instead of every weight: a table, r = 0 off"},
    )
    checkpoint_every: int = option(
        "save weights and full training state every N steps (0: never)", 0, validator=at_least(0)
    )
    keep_full_state: int = option(
        "full states (optimizer, scheduler, RNG, data position) kept: the latest N; older "
        "checkpoints keep their weights only",
        2,
    )
    keep_weights: int = option("weight checkpoints kept, the latest ones (0: all)", 0)
    save_base: bool = option(
        'keep the untrained model in <stage>/base for evaluation (always when model = "tiny")',
        False,
    )
