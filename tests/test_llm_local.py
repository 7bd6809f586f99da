"""The ``transformers-local`` LLM backend with a tiny model built here.

No weights can be downloaded, so the test builds a tokenizer (byte-level BPE with the Qwen/Hermes
special tokens and a Qwen-style chat template that takes tools) and a 2-layer ``Qwen3`` model with
hidden size 64, then teaches it one answer (a ``<tool_call>`` for one question) in well under a
second. Output quality is irrelevant: the tests check the plumbing from messages and tools to the
chat template, generation, decoding, and tool-call parsing.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from astra_llm.errors import LLMCacheMiss  # noqa: E402
from astra_llm.transformers_local import TransformersLocalBackend  # noqa: E402

from astra_core.errors import PluginError  # noqa: E402
from astra_core.options import ComponentSpec  # noqa: E402
from astra_core.plugins import load_plugins  # noqa: E402
from astra_core.protocols import ChatResponse, LLMBackend  # noqa: E402
from astra_core.registry import ComponentBuilder  # noqa: E402

SPECIAL = [
    "<|endoftext|>",
    "<|im_start|>",
    "<|im_end|>",
    "<tool_call>",
    "</tool_call>",
    "<tool_response>",
    "</tool_response>",
]
TEMPLATE = """\
{%- if tools %}<|im_start|>system
{% if messages[0].role == 'system' %}{{ messages[0].content }}

{% endif %}# Tools

You are provided with function signatures within <tools></tools> XML tags:
<tools>
{%- for tool in tools %}
{{ tool | tojson }}
{%- endfor %}
</tools>

For each function call, return a json object with function name and arguments within \
<tool_call></tool_call> XML tags.<|im_end|>
{% elif messages[0].role == 'system' %}<|im_start|>system
{{ messages[0].content }}<|im_end|>
{% endif %}
{%- for message in messages %}
{%- if message.role == 'system' %}
{%- elif message.role == 'tool' %}<|im_start|>user
<tool_response>
{{ message.content }}
</tool_response><|im_end|>
{% elif message.role == 'assistant' %}<|im_start|>assistant
{{ message.content or '' }}
{%- for tc in message.tool_calls or [] %}
<tool_call>
{"name": "{{ tc.function.name }}", "arguments": {{ tc.function.arguments | tojson }}}
</tool_call>
{%- endfor %}<|im_end|>
{% else %}<|im_start|>{{ message.role }}
{{ message.content }}<|im_end|>
{% endif %}
{%- endfor %}
{%- if add_generation_prompt %}<|im_start|>assistant
{% endif %}"""
# A template that knows nothing of tools: the backend must offer them in the system prompt.
PLAIN_TEMPLATE = """\
{%- for message in messages %}<|im_start|>{{ message.role }}
{{ message.content }}<|im_end|>
{% endfor %}
{%- if add_generation_prompt %}<|im_start|>assistant
{% endif %}"""

WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather of a city.",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
        },
    },
}
QUESTION = [{"role": "user", "content": "What is the weather in Paris?"}]
ANSWER = '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris"}}\n</tool_call>'


def build_tiny_model(directory: Path, template: str, *, memorise: bool) -> Path:
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast, Qwen3Config, Qwen3ForCausalLM

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    corpus = [TEMPLATE, ANSWER, json.dumps(WEATHER_TOOL), "You are a helpful assistant."] * 20
    trainer = trainers.BpeTrainer(
        vocab_size=400,
        special_tokens=SPECIAL,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    tok.train_from_iterator(corpus, trainer)
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=tok, eos_token="<|im_end|>", pad_token="<|endoftext|>"
    )
    tokenizer.chat_template = template
    config = Qwen3Config(
        vocab_size=len(tokenizer),
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        head_dim=16,
        max_position_embeddings=2048,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=None,
        tie_word_embeddings=True,
    )
    torch.manual_seed(0)
    model = Qwen3ForCausalLM(config)
    if memorise:  # teach it one answer, so that generation provably reaches the parser
        prompt = tokenizer.apply_chat_template(
            QUESTION, tools=[WEATHER_TOOL], add_generation_prompt=True, tokenize=False
        )
        p = tokenizer(prompt, add_special_tokens=False)["input_ids"]
        t = tokenizer(ANSWER + "<|im_end|>", add_special_tokens=False)["input_ids"]
        ids = torch.tensor([p + t])
        labels = ids.clone()
        labels[:, : len(p)] = -100
        optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
        for _ in range(400):
            loss = model(input_ids=ids, labels=labels).loss
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            if loss.item() < 0.01:
                break
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return directory


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_model(tmp_path_factory.mktemp("tiny-qwen3"), TEMPLATE, memorise=True)


@pytest.fixture(scope="module")
def plain_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_model(tmp_path_factory.mktemp("tiny-plain"), PLAIN_TEMPLATE, memorise=False)


def build(model: Path, tmp_path: Path, **options: object) -> TransformersLocalBackend:
    builder = ComponentBuilder(load_plugins().registry, workdir=tmp_path)
    table = {"model": str(model), "sampling": {"temperature": 0.0}, "max_new_tokens": 48}
    table.update(options)
    return builder.build("llm_backend", ComponentSpec("transformers-local", table))


def test_generated_tool_call_is_parsed(tiny_model, tmp_path):
    llm = build(tiny_model, tmp_path)
    assert isinstance(llm, LLMBackend)
    answer = llm.chat(QUESTION, tools=[WEATHER_TOOL])
    assert answer.finish_reason == "tool_calls"
    (call,) = answer.message["tool_calls"]
    assert call["type"] == "function" and call["id"].startswith("call_")
    assert call["function"]["name"] == "get_weather"
    assert json.loads(call["function"]["arguments"]) == {"city": "Paris"}
    assert answer.message["content"] == ""
    prompt = llm.render_prompt(QUESTION, [WEATHER_TOOL])
    prompt_tokens = len(llm.tokenizer(prompt, add_special_tokens=False)["input_ids"])
    answer_tokens = len(llm.tokenizer(ANSWER, add_special_tokens=False)["input_ids"])
    assert answer.usage == {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": answer_tokens,
        "total_tokens": prompt_tokens + answer_tokens,
    }


def test_chat_template_gets_tools_and_decoded_arguments(tiny_model, tmp_path):
    llm = build(tiny_model, tmp_path)
    history = [
        *QUESTION,
        {
            "role": "assistant",
            "content": "",
            "tool_calls": [
                {
                    "id": "c1",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city": "Lyon"}'},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "c1", "content": "17C"},
    ]
    prompt = llm.render_prompt(history, [WEATHER_TOOL])
    assert llm.native_tools
    assert "<tools>" in prompt and json.dumps(WEATHER_TOOL) in prompt
    # JSON-string arguments reach the template as an object, as HF templates expect.
    assert '{"name": "get_weather", "arguments": {"city": "Lyon"}}' in prompt
    assert "<tool_response>\n17C\n</tool_response>" in prompt
    assert prompt.endswith("<|im_start|>assistant\n")


def test_template_without_tools_gets_them_in_the_system_prompt(plain_model, tmp_path):
    llm = build(plain_model, tmp_path, max_new_tokens=4)
    assert not llm.native_tools
    prompt = llm.render_prompt(QUESTION, [WEATHER_TOOL])
    assert prompt.startswith("<|im_start|>system\n# Tools")
    assert json.dumps(WEATHER_TOOL) in prompt and "<tool_call>" in prompt
    answer = llm.chat(QUESTION, tools=[WEATHER_TOOL])  # an untrained model: any text will do
    assert isinstance(answer, ChatResponse) and answer.usage["completion_tokens"] <= 4
    assert answer.finish_reason in {"stop", "length", "tool_calls"}


def test_chat_many_batches_with_left_padding_and_caches(tiny_model, tmp_path):
    llm = build(tiny_model, tmp_path, batch_size=4, cache_dir="cache")
    requests = [
        {"messages": QUESTION, "tools": [WEATHER_TOOL]},
        {"messages": [{"role": "user", "content": "A much longer question about " * 6}]},
        {"messages": [{"role": "user", "content": "hi"}], "sampling": {"max_tokens": 3}},
    ]
    results = llm.chat_many(requests)
    assert llm.stats["batches"] == 2  # two sampling groups
    # The memorised prompt still yields its call inside a left-padded batch.
    assert results[0].message["tool_calls"][0]["function"]["name"] == "get_weather"
    assert results[2].usage["completion_tokens"] <= 3
    again = llm.chat_many(requests)
    assert again == results and llm.stats["generated"] == 3 and llm.stats["cache_hits"] == 3
    assert len(list((tmp_path / "cache").glob("??/*.json"))) == 3


def test_stop_strings_end_the_answer(tiny_model, tmp_path):
    llm = build(tiny_model, tmp_path)
    full = llm.chat(QUESTION, tools=[WEATHER_TOOL])
    cut = llm.chat(QUESTION, tools=[WEATHER_TOOL], stop=['"city"'])
    # Generation ended at the stop string, which is left out (as OpenAI does); the half call
    # is not valid JSON, so it stays text.
    assert cut.finish_reason == "stop" and "tool_calls" not in cut.message
    assert cut.message["content"].endswith('"arguments": {')
    assert cut.usage["completion_tokens"] < full.usage["completion_tokens"]


def test_sampling_parameters_are_checked(tiny_model, tmp_path, caplog):
    llm = build(tiny_model, tmp_path, max_new_tokens=2)
    with pytest.raises(ValueError, match="unknown sampling parameter 'beam_width'"):
        llm.chat(QUESTION, beam_width=4)
    with caplog.at_level(logging.WARNING, logger="astra.llm"):
        llm.chat(QUESTION, presence_penalty=0.5)
        llm.chat(QUESTION, presence_penalty=0.5)
    warnings = [r for r in caplog.records if "presence_penalty" in r.getMessage()]
    assert len(warnings) == 1
    sampled = llm.chat(QUESTION, temperature=0.8, top_p=0.9, seed=3)
    assert llm.chat(QUESTION, temperature=0.8, top_p=0.9, seed=3) == sampled


def test_replay_mode_and_seeded_cache(tiny_model, tmp_path):
    llm = build(tiny_model, tmp_path, cache_dir="rec", cache_mode="replay")
    with pytest.raises(LLMCacheMiss):
        llm.chat(QUESTION)
    llm.seed_cache([({"messages": QUESTION}, {"message": {"role": "assistant", "content": "ok"}})])
    assert llm.chat(QUESTION).message["content"] == "ok"
    assert llm.stats["generated"] == 0


def test_response_from_ids_cuts_and_reports_length(tiny_model, tmp_path):
    llm = build(tiny_model, tmp_path)
    tok = llm.tokenizer
    ids = tok("hello there", add_special_tokens=False)["input_ids"]
    pad, eos = tok.pad_token_id, tok.eos_token_id
    stopped = llm.response_from_ids([*ids, eos, pad, pad], prompt_tokens=5, max_new_tokens=10)
    assert stopped.message == {"role": "assistant", "content": "hello there"}
    assert stopped.finish_reason == "stop" and stopped.usage["completion_tokens"] == len(ids)
    cut = llm.response_from_ids(ids, prompt_tokens=5, max_new_tokens=len(ids))
    assert cut.finish_reason == "length"


def test_a_model_that_does_not_exist_is_a_plugin_error(tmp_path):
    with pytest.raises(PluginError, match="transformers-local"):
        build(tmp_path / "nowhere", tmp_path)
