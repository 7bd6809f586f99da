"""Token ids of the pieces of a multi-turn conversation, taken from the model's chat template.

Rollouts never re-tokenize what the policy generated: the ids it sampled are kept as they are,
and only the pieces ASTRA adds (the prompt, tool responses, later user turns and the next
generation prompt) are rendered with the chat template and tokenized. The pieces are found by
rendering a conversation with and without them and taking the difference, which works for any
template.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

_PROBE = [{"role": "user", "content": "probe"}, {"role": "assistant", "content": "probe"}]


def token_ids(encoded: Any) -> list[int]:
    """The ids of one tokenized text, whatever the tokenizer returned: a list, a batch of one,
    or a mapping (transformers 5 returns a BatchEncoding from apply_chat_template)."""
    if isinstance(encoded, Mapping) or hasattr(encoded, "keys"):
        encoded = encoded["input_ids"]
    if encoded and isinstance(encoded[0], list):
        encoded = encoded[0]
    return [int(i) for i in encoded]


class ChatTokens:
    """Renders prompts and tool responses for one tokenizer."""

    def __init__(self, tokenizer: Any, end_of_turn: str | None = None) -> None:
        self.tokenizer = tokenizer
        self.end_of_turn = end_of_turn or _guess_end_of_turn(tokenizer)
        self.end_of_turn_id = tokenizer.convert_tokens_to_ids(self.end_of_turn)
        stop = {self.end_of_turn_id}
        if tokenizer.eos_token_id is not None:
            stop.add(int(tokenizer.eos_token_id))
        self.stop_ids = sorted(stop)

    def render(
        self,
        messages: Sequence[Mapping[str, Any]],
        tools: Sequence[Mapping[str, Any]] | None,
        *,
        add_generation_prompt: bool,
    ) -> str:
        return str(
            self.tokenizer.apply_chat_template(
                list(messages),
                tools=list(tools) if tools else None,
                tokenize=False,
                add_generation_prompt=add_generation_prompt,
            )
        )

    def prompt_ids(
        self, messages: Sequence[Mapping[str, Any]], tools: Sequence[Mapping[str, Any]] | None
    ) -> list[int]:
        text = self.render(messages, tools, add_generation_prompt=True)
        return self.encode(text)

    def encode(self, text: str) -> list[int]:
        return token_ids(self.tokenizer(text, add_special_tokens=False))

    def continuation_ids(self, messages: Sequence[Mapping[str, Any]]) -> list[int]:
        """Ids that follow an assistant turn's end token: ``messages`` (the turn's tool
        responses, or the next user message) and the next assistant generation prompt."""
        before = self.render(_PROBE, None, add_generation_prompt=False)
        after = self.render([*_PROBE, *messages], None, add_generation_prompt=True)
        cut = before.rfind(self.end_of_turn)
        if cut < 0 or not after.startswith(before[: cut + len(self.end_of_turn)]):
            roles = ", ".join(sorted({str(m.get("role")) for m in messages}))
            raise ValueError(
                f"cannot split the chat template around {roles} messages: the rendered "
                "conversation with them does not extend the one without them"
            )
        return self.encode(after[cut + len(self.end_of_turn) :])

    def decode(self, ids: Sequence[int]) -> str:
        text = self.tokenizer.decode(list(ids), skip_special_tokens=False)
        for stop in (self.end_of_turn, self.tokenizer.eos_token or ""):
            if stop and text.endswith(stop):
                text = text[: -len(stop)]
        pad = self.tokenizer.pad_token
        return text.replace(pad, "") if pad else text


def _guess_end_of_turn(tokenizer: Any) -> str:
    for candidate in ("<|im_end|>", "<|eot_id|>", "<end_of_turn>"):
        if candidate in tokenizer.get_vocab():
            return candidate
    if tokenizer.eos_token:
        return str(tokenizer.eos_token)
    raise ValueError("the tokenizer has no end-of-turn token; pass end_of_turn explicitly")
