"""The tiny-model builder: tokenizer, tool-calling chat template, assistant mask, Auto classes."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import attrs
import pytest
import torch
from astra_training.assistant_mask import (
    TEMPLATE_BATCH,
    TokenizedConversation,
    has_generation_markers,
    tokenize_conversation,
    tokenize_conversations,
    with_tool_output_weight,
)
from astra_training.chat_template import CHAT_TEMPLATE
from astra_training.conversations import Conversation, normalize_messages
from astra_training.models import load_model_and_tokenizer, resolve_model
from astra_training.sft_options import TinyModelOptions
from astra_training.tiny_model import (
    SPECIAL_TOKENS,
    build_tiny_model_for,
    evenly_spread,
    render_conversations,
    tiny_config,
    train_tokenizer,
)
from test_training_conversations import make_conversations
from tokenizers import Tokenizer, models
from transformers import AutoModelForCausalLM, AutoTokenizer, PreTrainedTokenizerFast

from astra_core.errors import AstraError, ConfigError, RecordError

SMALL = TinyModelOptions(vocab_size=512, hidden_size=64, num_layers=2, intermediate_size=128)


def conversations(n: int = 40, seed: int = 0) -> list[Conversation]:
    return [
        Conversation(normalize_messages(r["messages"], f"c{i}"), tuple(r["tools"]), f"c{i}")
        for i, r in enumerate(make_conversations(n, seed))
    ]


@pytest.fixture(scope="module")
def tokenizer() -> Any:
    return train_tokenizer(render_conversations(conversations()), vocab_size=512)


def expected_assistant_text(message: dict[str, Any]) -> str:
    """What an assistant turn must render to (Hermes/Qwen format), written out by hand."""
    text = message["content"]
    for j, call in enumerate(message.get("tool_calls") or []):
        if j or text:
            text += "\n"
        fn = call["function"]
        args = fn["arguments"] if isinstance(fn["arguments"], str) else json.dumps(fn["arguments"])
        text += f'<tool_call>\n{{"name": "{fn["name"]}", "arguments": {args}}}\n</tool_call>'
    return text + "<|im_end|>"


def masked_runs(ids: tuple[int, ...], mask: tuple[int, ...]) -> list[list[int]]:
    runs: list[list[int]] = []
    for i, m in enumerate(mask):
        if m and (i == 0 or not mask[i - 1]):
            runs.append([])
        if m:
            runs[-1].append(ids[i])
    return runs


def test_special_tokens_are_single_tokens(tokenizer: Any) -> None:
    for token in SPECIAL_TOKENS:
        assert len(tokenizer(token, add_special_tokens=False)["input_ids"]) == 1, token
    assert tokenizer.eos_token == "<|im_end|>" and tokenizer.pad_token == "<|endoftext|>"
    assert 300 < len(tokenizer) <= 512


def test_encode_decode_round_trip_with_unseen_text(tokenizer: Any) -> None:
    text = 'Zürich → 東京 {"name": "never_seen_tool", "arguments": {"x": -3.5e2}}\n\t<tool_call>'
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    assert tokenizer.decode(ids) == text


def test_template_renders_tools_calls_and_responses(tokenizer: Any) -> None:
    conv = next(c for c in conversations() if sum(m["role"] == "tool" for m in c.messages) == 2)
    text = tokenizer.apply_chat_template(
        list(conv.messages), tools=list(conv.tools), tokenize=False
    )
    # the system prompt, then every tool schema as one JSON line inside <tools>
    assert text.startswith("<|im_start|>system\n" + conv.messages[0]["content"] + "\n\n# Tools")
    block = text.split("<tools>\n", 1)[1].split("\n</tools>", 1)[0]
    assert [json.loads(line) for line in block.splitlines()] == list(conv.tools)
    # the parallel calls, each in its own <tool_call> block with JSON arguments
    calls = re.findall(r"<tool_call>\n(.*?)\n</tool_call>", text.split("<|im_start|>user\n", 1)[1])
    decoded = [json.loads(c) for c in calls]
    want = [
        {"name": c["function"]["name"], "arguments": json.loads(c["function"]["arguments"])}
        for m in conv.messages
        for c in m.get("tool_calls") or []
    ]
    assert decoded == want and len(want) == 2
    # both tool results in ONE user turn, each inside <tool_response>
    results = [m["content"] for m in conv.messages if m["role"] == "tool"]
    turn = "<|im_start|>user\n" + "\n".join(
        f"<tool_response>\n{r}\n</tool_response>" for r in results
    )
    assert turn + "<|im_end|>\n<|im_start|>assistant\n" in text
    # the generation prompt is what the model continues from
    prompt = tokenizer.apply_chat_template(
        list(conv.messages[:2]), tools=list(conv.tools), tokenize=False, add_generation_prompt=True
    )
    assert prompt.endswith(
        "<|im_start|>user\n" + conv.messages[1]["content"] + "<|im_end|>\n<|im_start|>assistant\n"
    )


def test_hermes_parser_reads_rendered_calls(tokenizer: Any) -> None:
    hermes = pytest.importorskip("astra_tool_call_parsers.hermes")
    for conv in conversations(12):
        for m in conv.messages:
            if m["role"] == "assistant" and m.get("tool_calls"):
                turn = expected_assistant_text(m).removesuffix("<|im_end|>")
                parsed = hermes.HermesParser().parse(turn)
                assert not parsed.errors
                assert [(c.name, c.arguments) for c in parsed.calls] == [
                    (c["function"]["name"], json.loads(c["function"]["arguments"]))
                    for c in m["tool_calls"]
                ]


def test_assistant_mask_covers_exactly_the_assistant_turns(tokenizer: Any) -> None:
    assert has_generation_markers(tokenizer)
    for conv in conversations(24, seed=1):
        tc = tokenize_conversation(tokenizer, conv.messages, conv.tools)
        assert len(tc.input_ids) == len(tc.assistant_mask)
        runs = masked_runs(tc.input_ids, tc.assistant_mask)
        turns = [m for m in conv.messages if m["role"] == "assistant"]
        assert [tokenizer.decode(r) for r in runs] == [expected_assistant_text(m) for m in turns]
        # everything else (system, tools, user, tool responses, generation prompts) is unmasked
        rest = tokenizer.decode(
            [t for t, m in zip(tc.input_ids, tc.assistant_mask, strict=True) if not m]
        )
        assert "<tool_call>" not in rest.split("<|im_start|>user", 1)[1]
        assert rest.count("<|im_start|>assistant\n") == len(turns)


def test_mask_from_prefix_renders_matches_generation_markers(tokenizer: Any) -> None:
    plain = train_tokenizer(render_conversations(conversations()), vocab_size=512)
    plain.chat_template = re.sub(r"\{%-? ?(end)?generation ?-?%\}", "", CHAT_TEMPLATE)
    assert not has_generation_markers(plain)
    for conv in conversations(12, seed=2):
        marked = tokenize_conversation(tokenizer, conv.messages, conv.tools)
        derived = tokenize_conversation(plain, conv.messages, conv.tools)
        assert derived == marked


def test_conversations_sharing_tools_are_tokenized_in_batches_with_the_same_result(
    tokenizer: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    plain = train_tokenizer(render_conversations(conversations()), vocab_size=512)
    plain.chat_template = re.sub(r"\{%-? ?(end)?generation ?-?%\}", "", CHAT_TEMPLATE)
    convs = conversations(12, seed=4)
    # a run of one conversation's copies longer than a batch, three with other tools, then the
    # rest (the same tools as the copies), the last with its first assistant turn as context only
    first = convs[0]
    assert len(first.tools) > 1 and all(c.tools == first.tools for c in convs)
    many = [attrs.evolve(first, source=f"copy{i}") for i in range(TEMPLATE_BATCH + 6)]
    fewer = [attrs.evolve(c, tools=c.tools[:1]) for c in convs[1:4]]
    messages = [dict(m) for m in convs[4].messages]
    turn = next(i for i, m in enumerate(messages) if m["role"] == "assistant")
    messages[turn]["weight"] = 0
    weighted = attrs.evolve(convs[4], messages=tuple(messages), source="weighted")
    chats = [*many, *fewer, *convs[4:], weighted]
    calls: list[int] = []
    render = tokenizer.apply_chat_template

    def counted(conversation: Any, **kwargs: Any) -> Any:
        calls.append(len(conversation))
        return render(conversation, **kwargs)

    monkeypatch.setattr(tokenizer, "apply_chat_template", counted)
    got = list(tokenize_conversations(tokenizer, [(c.messages, c.tools, c.source) for c in chats]))
    # one call of the template per run of the same tools, at most TEMPLATE_BATCH long
    assert calls == [TEMPLATE_BATCH, 6, 3, len(convs) - 4 + 1]
    # the same as the mask found by rendering prefixes, one conversation at a time
    want = [tokenize_conversation(plain, c.messages, c.tools, where=c.source) for c in chats]
    assert got == want
    assert sum(got[-1].assistant_mask) < sum(got[-1 - (len(convs) - 4)].assistant_mask)


def test_tool_output_weight_covers_exactly_the_tool_responses(tokenizer: Any) -> None:
    checked = 0
    for conv in conversations(12, seed=3):
        outputs = [m["content"] for m in conv.messages if m["role"] == "tool"]
        if not outputs:
            continue
        tc = tokenize_conversation(tokenizer, conv.messages, conv.tools)
        weighted = with_tool_output_weight(tc, tokenizer, 0.25)
        assert weighted.input_ids == tc.input_ids
        # assistant tokens keep their 1, the rest stays 0 but for the responses' own tokens
        assert all(
            w == m for w, m in zip(weighted.assistant_mask, tc.assistant_mask, strict=True) if m
        )
        runs = masked_runs(tc.input_ids, [float(w == 0.25) for w in weighted.assistant_mask])
        assert [tokenizer.decode(r).strip() for r in runs] == [o.strip() for o in outputs]
        assert weighted.targets == tc.targets + 0.25 * sum(map(len, runs))
        checked += 1
    assert checked >= 3
    # a tokenizer without the markers as tokens is refused, naming the conversation
    bare = PreTrainedTokenizerFast(tokenizer_object=Tokenizer(models.BPE()))
    tc = TokenizedConversation((1, 2, 3), (0, 1, 1), "c9")
    with pytest.raises(AstraError, match=r"c9: tool_output_weight needs <tool_response>"):
        with_tool_output_weight(tc, bare, 0.5)


def test_weight_zero_turns_stay_in_context_but_out_of_the_mask(tokenizer: Any) -> None:
    plain = train_tokenizer(render_conversations(conversations()), vocab_size=512)
    plain.chat_template = re.sub(r"\{%-? ?(end)?generation ?-?%\}", "", CHAT_TEMPLATE)
    checked = 0
    for conv in conversations(12, seed=4):
        turns = [i for i, m in enumerate(conv.messages) if m["role"] == "assistant"]
        if len(turns) < 2:
            continue
        first = turns[0]
        raw = [dict(m) for m in conv.messages]
        raw[first]["weight"] = 0
        messages = normalize_messages(raw, conv.source)
        full = tokenize_conversation(tokenizer, conv.messages, conv.tools)
        for tok in (tokenizer, plain):  # generation markers, and spans from prefix renders
            tc = tokenize_conversation(tok, messages, conv.tools)
            assert tc.input_ids == full.input_ids  # the turn is still in the context
            runs = masked_runs(tc.input_ids, tc.assistant_mask)
            kept = [m for i, m in enumerate(conv.messages) if i in turns[1:]]
            assert [tok.decode(r) for r in runs] == [expected_assistant_text(m) for m in kept]
        checked += 1
    assert checked >= 3


@pytest.mark.parametrize("weight", [2, 0.5, True, "0"])
def test_assistant_weight_must_be_zero_or_one(weight: Any) -> None:
    messages = [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "x"}]
    messages[1]["weight"] = weight
    with pytest.raises(RecordError, match=r"c7: message 1 has weight"):
        normalize_messages(messages, "c7")
    messages[1]["weight"] = 0  # and a conversation with no turn to learn from is refused
    with pytest.raises(RecordError, match="no assistant message to train on"):
        normalize_messages(messages, "c7")


def test_tiny_model_saves_and_reloads_through_auto_classes(tmp_path: Path, tokenizer: Any) -> None:
    directory = build_tiny_model_for(conversations(), tmp_path / "tiny", SMALL, seed=3)
    tok = AutoTokenizer.from_pretrained(directory)
    model = AutoModelForCausalLM.from_pretrained(directory)
    assert tok.padding_side == "left"  # saved, not just set on the object
    assert tok.chat_template == CHAT_TEMPLATE
    assert model.config.model_type == "qwen3"
    assert model.config.hidden_size == 64 and model.config.num_hidden_layers == 2
    assert model.config.vocab_size == len(tok)
    assert model.config.eos_token_id == tok.convert_tokens_to_ids("<|im_end|>")
    conv = conversations(1, seed=5)[0]
    ids = tok.apply_chat_template(
        list(conv.messages[:2]),
        tools=list(conv.tools),
        add_generation_prompt=True,
        return_tensors="pt",
        return_dict=True,
    )
    out = model.generate(**ids, max_new_tokens=5, do_sample=False)
    assert out.shape[1] == ids["input_ids"].shape[1] + 5 or tok.eos_token_id in out[0].tolist()
    # the same seed builds the same weights; another seed does not
    again = AutoModelForCausalLM.from_pretrained(
        build_tiny_model_for(conversations(), tmp_path / "again", SMALL, seed=3)
    )
    other = AutoModelForCausalLM.from_pretrained(
        build_tiny_model_for(conversations(), tmp_path / "other", SMALL, seed=4)
    )
    name, weight = next(iter(model.state_dict().items()))
    assert torch.equal(weight, again.state_dict()[name])
    assert not torch.equal(weight, other.state_dict()[name])
    # the ASTRA loader gives the same objects
    _, t2 = load_model_and_tokenizer(str(directory))
    assert t2("hello <tool_call>")["input_ids"] == tok("hello <tool_call>")["input_ids"]


def test_llama_architecture_has_no_query_key_norms(tmp_path: Path) -> None:
    options = attrs.evolve(SMALL, architecture="llama")
    directory = build_tiny_model_for(conversations(), tmp_path / "llama", options, seed=3)
    model = AutoModelForCausalLM.from_pretrained(directory)
    assert model.config.model_type == "llama"
    names = set(model.state_dict())
    assert not any("q_norm" in n or "k_norm" in n for n in names)
    qwen3 = AutoModelForCausalLM.from_config(
        tiny_config(AutoTokenizer.from_pretrained(directory), SMALL)
    )
    assert any("q_norm" in n for n in qwen3.state_dict())
    assert model.config.tie_word_embeddings and model.config.num_attention_heads == SMALL.num_heads
    with pytest.raises(ValueError, match="architecture"):
        TinyModelOptions(architecture="gpt2")  # type: ignore[arg-type]


def test_half_billion_config_is_an_option(tokenizer: Any) -> None:
    opts = TinyModelOptions(
        vocab_size=2048,
        hidden_size=1024,
        num_layers=28,
        num_heads=16,
        num_kv_heads=8,
        head_dim=128,
        intermediate_size=3072,
    )
    with torch.device("meta"):  # no memory: only the shapes
        model = AutoModelForCausalLM.from_config(tiny_config(tokenizer, opts))
    params = sum(p.numel() for p in model.parameters())
    assert 0.35e9 < params < 0.6e9


def test_bad_shapes_are_refused(tokenizer: Any) -> None:
    with pytest.raises(ValueError, match="num_kv_heads"):
        tiny_config(tokenizer, TinyModelOptions(num_heads=4, num_kv_heads=3))
    with pytest.raises(ValueError, match="too small"):
        train_tokenizer(["abc"], vocab_size=100)


def test_stage_names_resolve_to_saved_models(tmp_path: Path) -> None:
    assert resolve_model("Qwen/Qwen3-0.6B", tmp_path) == "Qwen/Qwen3-0.6B"
    with pytest.raises(ConfigError, match="run the train-sft stage first"):
        resolve_model("train-sft", tmp_path)
    (tmp_path / "train-sft" / "base").mkdir(parents=True)
    (tmp_path / "train-sft" / "base" / "config.json").write_text("{}")
    assert resolve_model("train-sft/base", tmp_path) == str(tmp_path / "train-sft" / "base")


def test_signature_tools_format_lists_each_tool_on_one_line(tmp_path: Path) -> None:
    options = TinyModelOptions(
        vocab_size=512,
        hidden_size=64,
        num_layers=2,
        intermediate_size=128,
        tools_format="signatures",
    )
    convs = conversations()
    directory = build_tiny_model_for(convs, tmp_path / "sig", options, seed=1)
    tok = AutoTokenizer.from_pretrained(directory)
    conv = next(c for c in convs if c.tools)
    text = tok.apply_chat_template(list(conv.messages), tools=list(conv.tools), tokenize=False)
    listed = text.split("<tools>\n", 1)[1].split("\n</tools>", 1)[0].splitlines()
    assert len(listed) == len(conv.tools)
    for line, tool in zip(listed, conv.tools, strict=True):
        fn = tool["function"]
        args = ", ".join(fn.get("parameters", {}).get("properties", {}))
        assert line == f"{fn['name']}({args}): {fn.get('description', '')}"
    json_text = train_tokenizer(render_conversations(convs), vocab_size=512).apply_chat_template(
        list(conv.messages), tools=list(conv.tools), tokenize=False
    )
    assert len(text) < len(json_text)
    # everything after the system turn renders exactly as with the JSON listing
    assert text.split("<|im_end|>", 1)[1] == json_text.split("<|im_end|>", 1)[1]
    # and the assistant mask still marks exactly the assistant turns
    tc = tokenize_conversation(tok, conv.messages, conv.tools)
    assert [tok.decode(r) for r in masked_runs(tc.input_ids, tc.assistant_mask)] == [
        expected_assistant_text(m) for m in conv.messages if m["role"] == "assistant"
    ]


def test_names_tools_format_lists_bare_signatures_under_a_short_preamble() -> None:
    convs = conversations()
    conv = next(c for c in convs if c.tools)
    texts = {}
    for fmt in ("signatures", "names"):
        tok = train_tokenizer(render_conversations(convs, fmt), vocab_size=512, tools_format=fmt)
        texts[fmt] = tok.apply_chat_template(
            list(conv.messages), tools=list(conv.tools), tokenize=False
        )
    system = texts["names"].split("<|im_end|>", 1)[0]
    listed = system.split("Tools:\n", 1)[1].split("\nCall a tool as", 1)[0].splitlines()
    fns = [t["function"] for t in conv.tools]
    args = [", ".join(fn.get("parameters", {}).get("properties", {})) for fn in fns]
    assert listed == [f"{fn['name']}({a})" for fn, a in zip(fns, args, strict=True)]
    assert len(system) < len(texts["signatures"].split("<|im_end|>", 1)[0]) / 2
    # the conversation itself renders as with every other format
    assert texts["names"].split("<|im_end|>", 1)[1] == texts["signatures"].split("<|im_end|>", 1)[1]
    tc = tokenize_conversation(tok, conv.messages, conv.tools)
    assert [tok.decode(r) for r in masked_runs(tc.input_ids, tc.assistant_mask)] == [
        expected_assistant_text(m) for m in conv.messages if m["role"] == "assistant"
    ]


def test_unknown_tools_format_is_refused() -> None:
    from astra_training.chat_template import chat_template

    with pytest.raises(ValueError, match="unknown tools_format 'yaml'"):
        chat_template("yaml")


def test_isolated_spaces_make_a_copied_name_the_same_tokens() -> None:
    # a corpus where the name mostly follows a space, as in questions
    texts = list(render_conversations(conversations())) + ["the employer of Kronouzeith"] * 40
    plain = train_tokenizer(texts, vocab_size=512)
    isolated = train_tokenizer(texts, vocab_size=512, isolate_spaces=True)

    def contains(tok: Any, text: str, name: str) -> bool:
        seq = tok(text, add_special_tokens=False)["input_ids"]
        n = tok(name, add_special_tokens=False)["input_ids"]
        return any(seq[i : i + len(n)] == n for i in range(len(seq)))

    name = "Kronouzeith"
    in_question = f"What is the employer of {name}?"
    in_call = json.dumps({"person_name": name})
    assert contains(plain, in_call, name) and not contains(plain, in_question, name)
    for other in (name, "Vel Tora", "Ivo Brandt-Lee"):
        assert contains(isolated, f"What is the employer of {other}?", other)
        assert contains(isolated, json.dumps({"person_name": other}), other)
    assert isolated.decode(isolated(in_call)["input_ids"]) == in_call


def test_the_tokenizer_learns_from_an_evenly_spread_sample(tmp_path: Path) -> None:
    assert evenly_spread(list(range(10)), 4) == [0, 2, 5, 7]
    assert evenly_spread(list(range(3)), 4) == [0, 1, 2] == evenly_spread(list(range(3)), 0)
    # a word that only the conversations left out of the sample hold never becomes a token
    convs = conversations(8)
    word = "Zyxquorvantel"
    marked = [
        Conversation((*c.messages[:-1], {"role": "assistant", "content": word * 30}), c.tools)
        if i % 2
        else c
        for i, c in enumerate(convs)
    ]
    texts = list(render_conversations(marked))
    assert word in texts[1] and word not in texts[0]
    sampled = attrs.evolve(SMALL, tokenizer_conversations=4)
    whole = attrs.evolve(SMALL, tokenizer_conversations=0)
    lengths = {}
    for name, options in (("sampled", sampled), ("whole", whole)):
        tok = AutoTokenizer.from_pretrained(build_tiny_model_for(marked, tmp_path / name, options))
        lengths[name] = len(tok(word, add_special_tokens=False)["input_ids"])
    assert lengths["whole"] < lengths["sampled"]
