"""A model and tokenizer built from scratch, for runs with no pretrained weights at hand.

The tokenizer is a byte-level BPE trained on the run's own data (its conversations rendered
with the tool-calling template), so every byte sequence stays encodable and the frequent pieces
of the data (the tool preamble, JSON keys, tool names) become single tokens. The model is a
``Qwen3Config`` (or ``LlamaConfig``) decoder initialised from the seed. Both are saved with
``save_pretrained`` and load back through ``AutoTokenizer``/``AutoModelForCausalLM`` like any
hub model.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, TypeVar

from astra_training.chat_template import chat_template
from astra_training.conversations import Conversation
from astra_training.sft_options import TinyModelOptions

T = TypeVar("T")

PAD = "<|endoftext|>"
END_OF_TURN = "<|im_end|>"
SPECIAL_TOKENS = (
    PAD,
    "<|im_start|>",
    END_OF_TURN,
    "<tool_call>",
    "</tool_call>",
    "<tool_response>",
    "</tool_response>",
)


def _wrap(tokenizer_object: Any, tools_format: str = "json") -> Any:
    from transformers import PreTrainedTokenizerFast

    return PreTrainedTokenizerFast(
        tokenizer_object=tokenizer_object,
        chat_template=chat_template(tools_format),
        eos_token=END_OF_TURN,
        pad_token=PAD,
        padding_side="left",
        clean_up_tokenization_spaces=False,
        model_max_length=1 << 30,
    )


def _byte_level(model: Any, isolate_spaces: bool = False) -> Any:
    from tokenizers import Regex, Tokenizer, decoders, pre_tokenizers, processors

    tokenizer = Tokenizer(model)
    byte_level = pre_tokenizers.ByteLevel(add_prefix_space=False)
    if isolate_spaces:
        # " Vel" after a space and "Vel" after a quote are then the same tokens, so copying a
        # name from the question into a call's JSON arguments is a token-for-token copy
        tokenizer.pre_tokenizer = pre_tokenizers.Sequence(
            [pre_tokenizers.Split(Regex(" "), behavior="isolated"), byte_level]
        )
    else:
        tokenizer.pre_tokenizer = byte_level
    tokenizer.decoder = decoders.ByteLevel()
    # untrimmed offsets: the assistant mask maps characters to tokens through them
    tokenizer.post_processor = processors.ByteLevel(trim_offsets=False)
    return tokenizer


def render_conversations(
    conversations: Iterable[Conversation], tools_format: str = "json"
) -> Iterable[str]:
    """The conversations as the template renders them: the tokenizer's training corpus."""
    from tokenizers import models

    renderer = _wrap(_byte_level(models.BPE()), tools_format)  # an empty vocabulary: rendering only
    for conv in conversations:
        yield str(
            renderer.apply_chat_template(
                list(conv.messages), tools=list(conv.tools) or None, tokenize=False
            )
        )


def train_tokenizer(
    texts: Iterable[str],
    *,
    vocab_size: int = 1024,
    min_frequency: int = 2,
    tools_format: str = "json",
    isolate_spaces: bool = False,
) -> Any:
    """A byte-level BPE ``PreTrainedTokenizerFast`` trained on ``texts``, with the chat
    template and the special tokens of the Hermes/Qwen tool-calling format."""
    from tokenizers import models, pre_tokenizers, trainers

    alphabet = pre_tokenizers.ByteLevel.alphabet()
    if vocab_size < len(alphabet) + len(SPECIAL_TOKENS):
        raise ValueError(
            f"vocab_size {vocab_size} is too small: the {len(alphabet)} bytes and "
            f"{len(SPECIAL_TOKENS)} special tokens need {len(alphabet) + len(SPECIAL_TOKENS)}"
        )
    tokenizer = _byte_level(models.BPE(), isolate_spaces)
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=min_frequency,
        special_tokens=list(SPECIAL_TOKENS),
        initial_alphabet=alphabet,
        show_progress=False,
    )
    tokenizer.train_from_iterator(texts, trainer)
    return _wrap(tokenizer, tools_format)


def tiny_config(tokenizer: Any, options: TinyModelOptions) -> Any:
    from transformers import LlamaConfig, Qwen3Config

    if options.hidden_size % options.num_heads and not options.head_dim:
        raise ValueError(
            f"hidden_size {options.hidden_size} is not a multiple of num_heads "
            f"{options.num_heads}; set head_dim"
        )
    if options.num_heads % options.num_kv_heads:
        raise ValueError(
            f"num_heads {options.num_heads} is not a multiple of num_kv_heads "
            f"{options.num_kv_heads}"
        )
    eos = tokenizer.convert_tokens_to_ids(END_OF_TURN)
    pad = tokenizer.convert_tokens_to_ids(PAD)
    # transformers 5 folds rope_theta into rope_parameters; 4.x reads it as it is
    rope: dict[str, Any] = {"rope_theta": options.rope_theta}
    config_class = {"qwen3": Qwen3Config, "llama": LlamaConfig}[options.architecture]
    return config_class(
        vocab_size=len(tokenizer),
        hidden_size=options.hidden_size,
        intermediate_size=options.intermediate_size,
        num_hidden_layers=options.num_layers,
        num_attention_heads=options.num_heads,
        num_key_value_heads=options.num_kv_heads,
        head_dim=options.head_dim or options.hidden_size // options.num_heads,
        max_position_embeddings=options.max_position_embeddings,
        **rope,
        tie_word_embeddings=options.tie_word_embeddings,
        bos_token_id=None,
        eos_token_id=eos,
        pad_token_id=pad,
    )


def build_tiny_model(
    texts: Iterable[str],
    directory: str | Path,
    options: TinyModelOptions | None = None,
    *,
    seed: int = 0,
) -> Path:
    """Train a tokenizer on ``texts``, initialise a model from ``seed`` and save both to
    ``directory`` (written whole, then moved into place). Returns ``directory``."""
    import torch
    from transformers import AutoModelForCausalLM, GenerationConfig

    options = options or TinyModelOptions()
    target = Path(directory)
    tokenizer = train_tokenizer(
        texts,
        vocab_size=options.vocab_size,
        min_frequency=options.min_frequency,
        tools_format=options.tools_format,
        isolate_spaces=options.isolate_spaces,
    )
    config = tiny_config(tokenizer, options)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    model.generation_config = GenerationConfig(
        eos_token_id=[config.eos_token_id, config.pad_token_id],
        pad_token_id=config.pad_token_id,
    )
    tmp = target.with_name(f".tmp-{target.name}")
    shutil.rmtree(tmp, ignore_errors=True)
    model.save_pretrained(tmp)
    tokenizer.save_pretrained(tmp)
    shutil.rmtree(target, ignore_errors=True)
    tmp.rename(target)
    return target


def build_tiny_model_for(
    conversations: Sequence[Conversation],
    directory: str | Path,
    options: TinyModelOptions | None = None,
    *,
    seed: int = 0,
) -> Path:
    """``build_tiny_model`` with the tokenizer trained on these conversations (on an evenly
    spread sample of ``options.tokenizer_conversations`` of them when there are more)."""
    options = options or TinyModelOptions()
    texts = render_conversations(
        evenly_spread(conversations, options.tokenizer_conversations), options.tools_format
    )
    return build_tiny_model(texts, directory, options, seed=seed)


def evenly_spread(items: Sequence[T], limit: int) -> Sequence[T]:
    """At most ``limit`` of ``items`` (all of them for 0), taken at even strides, so a sample
    of interleaved data (a demonstration and its renamed copies) keeps its mix."""
    if not limit or len(items) <= limit:
        return items
    return [items[i * len(items) // limit] for i in range(limit)]


def count_parameters(model: Any) -> int:
    return sum(p.numel() for p in model.parameters())
