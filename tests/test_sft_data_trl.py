"""Our trajectory dataset feeds TRL's ``SFTTrainer`` unchanged.

The ``synth-trajectories`` stage of a small offline config runs through ``astra_core.run``; its
shards are loaded with ``datasets.load_dataset("json", ...)`` and handed as they are to
``SFTTrainer`` with a tiny Qwen3 model (hidden 64, 2 layers) whose tokenizer is a byte-level BPE
trained here on the data, with TRL's Qwen3 tool-calling chat template. Loss is on assistant
tokens only, so the test also proves TRL renders our ``tool_calls`` as ``<tool_call>`` blocks
the model is trained to write, and leaves the tool outputs out of the loss.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

import astra_core

datasets = pytest.importorskip("datasets")
trl = pytest.importorskip("trl")

CONFIG = """
[run]
name = "sft-data-trl"
seed = 0

[synth-trajectories]
limit = 12

[synth-trajectories.source]
name = "bundled-catalog"

[synth-trajectories.sampler]
name = "offline-chain-walk"
max_chains_per_server = 2
"""

SPECIAL_TOKENS = [
    "<|endoftext|>",
    "<|im_start|>",
    "<|im_end|>",
    "<tool_call>",
    "</tool_call>",
    "<tool_response>",
    "</tool_response>",
    "<think>",
    "</think>",
]


def train_tokenizer(rows: list[dict]) -> object:
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast
    from trl.chat_template_utils import add_response_schema, qwen3_chat_template

    def corpus():
        for row in rows:
            yield json.dumps(row["tools"])
            for message in row["messages"]:
                yield message["content"] or ""
                for call in message.get("tool_calls") or ():
                    yield json.dumps(call["function"])

    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    tokenizer.train_from_iterator(
        corpus(),
        trainers.BpeTrainer(
            vocab_size=2000,
            special_tokens=SPECIAL_TOKENS,
            initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
            show_progress=False,
        ),
    )
    wrapped = PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        chat_template=qwen3_chat_template,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
    )
    # a custom chat template needs the response template TRL pairs with it (PLATFORM.md)
    return add_response_schema(wrapped)


def test_stage_output_trains_with_trl_sft_trainer_unchanged(tmp_path: Path):
    import torch
    from transformers import Qwen3Config, Qwen3ForCausalLM
    from trl import SFTConfig, SFTTrainer

    (tmp_path / "run.toml").write_text(CONFIG)
    report = astra_core.run(str(tmp_path / "run.toml"), tmp_path / "run", quiet=True)
    assert report.stages[0].total == 12
    files = sorted(str(p) for p in (tmp_path / "run" / "synth-trajectories").glob("data-*.jsonl"))
    data = datasets.load_dataset("json", data_files=files, split="train")
    assert data.num_rows == 12
    assert {"messages", "tools"} <= set(data.column_names)

    tokenizer = train_tokenizer(list(data))
    torch.manual_seed(0)
    model = Qwen3ForCausalLM(
        Qwen3Config(
            vocab_size=len(tokenizer),
            hidden_size=64,
            intermediate_size=128,
            num_hidden_layers=2,
            num_attention_heads=4,
            num_key_value_heads=2,
            head_dim=16,
            max_position_embeddings=4096,
            bos_token_id=None,
            eos_token_id=tokenizer.eos_token_id,
            pad_token_id=tokenizer.pad_token_id,
        )
    )
    args = SFTConfig(
        output_dir=str(tmp_path / "trl"),
        max_steps=2,
        per_device_train_batch_size=2,
        learning_rate=1e-3,
        max_length=4096,  # no truncation: every assistant turn stays in
        assistant_only_loss=True,
        use_cpu=True,
        bf16=False,
        report_to=[],
        save_strategy="no",
        logging_steps=1,
        seed=0,
    )
    trainer = SFTTrainer(model=model, args=args, train_dataset=data, processing_class=tokenizer)

    prepared = trainer.train_dataset
    assert prepared.num_rows == 12  # no example lost to truncation or an empty loss mask
    for example in prepared:  # TRL keeps our columns next to the ones it adds
        trained = tokenizer.decode(
            [
                t
                for t, label in zip(example["input_ids"], example["labels"], strict=True)
                if label != -100
            ]
        )
        calls = [c["function"] for m in example["messages"] for c in m.get("tool_calls") or ()]
        assert trained.count("<tool_call>") == len(calls) >= 2
        for call in calls:
            assert f'"name": "{call["name"]}", "arguments": {call["arguments"]}' in trained
        tool_output = next(m["content"] for m in example["messages"] if m["role"] == "tool")
        assert tool_output not in trained  # tool outputs are context, not targets
        assert example["messages"][-1]["content"] in trained

    result = trainer.train()
    assert trainer.state.global_step == 2
    losses = [entry["loss"] for entry in trainer.state.log_history if "loss" in entry]
    assert len(losses) == 2 and all(math.isfinite(x) and x > 0 for x in losses)
    assert math.isfinite(result.training_loss)
