"""Token ids of a conversation and the mask of the tokens the assistant produced.

The mask comes from the chat template: templates with ``{% generation %}`` markers (ASTRA's own,
TRL's patched ones, many recent models) give it through ``return_assistant_tokens_mask``. For a
template without markers, each assistant turn is found by rendering the conversation up to the
turn (with the generation prompt) and up to its end: the characters in between, less trailing
whitespace, are the turn. That needs a template whose rendering of a prefix of the conversation
is a prefix of the whole rendering; a template that rewrites earlier turns is refused with an
error that says so.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

import attrs

from astra_core.errors import AstraError
from astra_training.chat_tokens import token_ids
from astra_training.turn_masks import turn_runs

_GENERATION = re.compile(r"\{%-?\s*generation\s*-?%\}")
TEMPLATE_BATCH = 64  # conversations per call of the chat template (tokenize_conversations)
# a conversation to tokenize: its messages, its tools and where it came from (for errors)
Chat = tuple[Sequence[Mapping[str, Any]], Sequence[Mapping[str, Any]] | None, str]


@attrs.frozen
class TokenizedConversation:
    """Ids and the loss weight of each: 1 on assistant tokens, 0 elsewhere, except tool
    outputs when ``with_tool_output_weight`` gave them one."""

    input_ids: tuple[int, ...]
    assistant_mask: tuple[float, ...]
    source: str = ""

    @property
    def targets(self) -> float:
        return sum(self.assistant_mask)


TOOL_RESPONSE = ("<tool_response>", "</tool_response>")


def with_tool_output_weight(
    tc: TokenizedConversation, tokenizer: Any, weight: float
) -> TokenizedConversation:
    """``tc`` with ``weight`` on the tokens between ``<tool_response>`` and
    ``</tool_response>``: an auxiliary objective for a model trained from scratch, whose tool
    outputs echo the names its calls copied (a copy from a few tokens back).

    Raises ``AstraError`` when the tokenizer does not hold both markers as single tokens."""
    start, end = (tokenizer.convert_tokens_to_ids(t) for t in TOOL_RESPONSE)
    unk = getattr(tokenizer, "unk_token_id", None)
    if not isinstance(start, int) or not isinstance(end, int) or unk in (start, end):
        raise AstraError(
            f"{tc.source}: tool_output_weight needs {TOOL_RESPONSE[0]} and {TOOL_RESPONSE[1]} "
            "as single tokens of the tokenizer, as Qwen's and ASTRA's tiny models have"
        )
    mask = list(tc.assistant_mask)
    inside = False
    for t, token in enumerate(tc.input_ids):
        if token == end:
            inside = False
        elif inside and not mask[t]:
            mask[t] = weight
        elif token == start:
            inside = True
    return attrs.evolve(tc, assistant_mask=tuple(mask))


def has_generation_markers(tokenizer: Any) -> bool:
    template = getattr(tokenizer, "chat_template", None)
    if isinstance(template, dict):
        template = template.get("default") or next(iter(template.values()), None)
    return isinstance(template, str) and bool(_GENERATION.search(template))


def _render(
    tokenizer: Any,
    messages: Sequence[Mapping[str, Any]],
    tools: Sequence[Mapping[str, Any]] | None,
    *,
    add_generation_prompt: bool = False,
) -> str:
    return str(
        tokenizer.apply_chat_template(
            list(messages),
            tools=list(tools) if tools else None,
            tokenize=False,
            add_generation_prompt=add_generation_prompt,
        )
    )


def assistant_char_spans(
    tokenizer: Any,
    messages: Sequence[Mapping[str, Any]],
    tools: Sequence[Mapping[str, Any]] | None,
    where: str = "",
) -> tuple[str, list[tuple[int, int]]]:
    """The rendered conversation and the character span of every assistant turn, found by
    rendering prefixes (for templates without generation markers)."""
    full = _render(tokenizer, messages, tools)
    spans: list[tuple[int, int]] = []
    for i, message in enumerate(messages):
        if message.get("role") != "assistant":
            continue
        before = _render(tokenizer, messages[:i], tools, add_generation_prompt=True)
        through = _render(tokenizer, messages[: i + 1], tools)
        if not (through.startswith(before) and full.startswith(through)):
            raise AstraError(
                f"{where}: the chat template renders earlier turns differently once later ones "
                "follow, so assistant turns cannot be located; use a template with "
                "{% generation %} markers"
            )
        end = len(through.rstrip())
        spans.append((len(before), end))
    return full, spans


def tokenize_conversation(
    tokenizer: Any,
    messages: Sequence[Mapping[str, Any]],
    tools: Sequence[Mapping[str, Any]] | None = None,
    *,
    where: str = "",
    use_markers: bool | None = None,
) -> TokenizedConversation:
    """Ids of the rendered conversation with a 1 on every token an assistant turn produced
    (its text, its tool calls and its end-of-turn token), except the turns marked
    ``"weight": 0`` (context only, as in OpenAI's fine-tuning format)."""
    if use_markers is None:
        use_markers = has_generation_markers(tokenizer)
    if use_markers:
        return _marked_run(tokenizer, [(messages, tools, where)])[0]
    trained = _trained_turns(messages)
    text, spans = assistant_char_spans(tokenizer, messages, tools, where)
    spans = [span for span, keep in zip(spans, trained, strict=True) if keep]
    encoded = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
    ids = token_ids(encoded)
    mask = [0] * len(ids)
    for t, (start, end) in enumerate(encoded["offset_mapping"]):
        if end > start and any(s <= start and end <= e for s, e in spans):
            mask[t] = 1
    return TokenizedConversation(tuple(ids), tuple(mask), where)


def tokenize_conversations(
    tokenizer: Any,
    conversations: Iterable[Chat],
    *,
    use_markers: bool | None = None,
) -> Iterator[TokenizedConversation]:
    """``tokenize_conversation`` of each ``(messages, tools, where)``, in order, taken from
    ``conversations`` as they are needed. With generation markers, consecutive conversations
    with the same tools (up to ``TEMPLATE_BATCH``) go through the chat template in one call,
    whose tokenizer encodes them as a batch, in parallel: the same ids and masks as one at a
    time, a quarter sooner on one core (the quickstart's tiny tokenizer) and more on several."""
    if use_markers is None:
        use_markers = has_generation_markers(tokenizer)
    if not use_markers:
        for messages, tools, where in conversations:
            yield tokenize_conversation(tokenizer, messages, tools, where=where, use_markers=False)
        return
    run: list[Chat] = []
    for chat in conversations:
        if run and (len(run) == TEMPLATE_BATCH or chat[1] != run[0][1]):
            yield from _marked_run(tokenizer, run)
            run = []
        run.append(chat)
    if run:
        yield from _marked_run(tokenizer, run)


def _trained_turns(messages: Sequence[Mapping[str, Any]]) -> list[bool]:
    return [bool(m.get("weight", 1)) for m in messages if m.get("role") == "assistant"]


def _marked_run(tokenizer: Any, run: Sequence[Chat]) -> list[TokenizedConversation]:
    """Conversations that share their tools, through the chat template's generation markers in
    one call (a batch of conversations, so the tokenizer encodes them together)."""
    tools = run[0][1]
    encoded = tokenizer.apply_chat_template(
        [list(messages) for messages, _, _ in run],
        tools=list(tools) if tools else None,
        tokenize=True,
        return_dict=True,
        return_assistant_tokens_mask=True,
    )
    out = []
    for (messages, _, where), ids, marked in zip(
        run, encoded["input_ids"], encoded["assistant_masks"], strict=True
    ):
        mask = [int(m) for m in marked]
        trained = _trained_turns(messages)
        if not all(trained):
            mask = _without_untrained_turns(mask, trained, where)
        out.append(TokenizedConversation(tuple(int(i) for i in ids), tuple(mask), where))
    return out


def _without_untrained_turns(mask: list[int], trained: list[bool], where: str) -> list[int]:
    """``mask`` with the runs of the assistant turns not ``trained`` zeroed: the k-th run of
    ones is the k-th assistant turn, which holds when every turn renders some tokens apart from
    the next."""
    runs = turn_runs(mask)
    if len(runs) != len(trained):
        raise AstraError(
            f"{where}: {len(trained)} assistant turns but {len(runs)} marked spans in the chat "
            "template's mask, so the weight-0 turns cannot be told apart; give every assistant "
            "turn some content and put a non-assistant message between any two"
        )
    out = list(mask)
    for (start, end), keep in zip(runs, trained, strict=True):
        if not keep:
            out[start:end] = [0] * (end - start)
    return out
