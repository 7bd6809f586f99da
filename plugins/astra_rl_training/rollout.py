"""Multi-turn rollouts in arenas, batched across every live episode.

Token-in/token-out: an episode's ``ids`` are the prompt, then alternately the ids the policy
sampled (``mask`` 1) and the ids of the tool responses and template pieces ASTRA inserted
(``mask`` 0). Training uses exactly these ids, so what is optimised is what was sampled.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from typing import Any

import attrs

from astra_core.protocols import ToolCallParser, Verifier
from astra_core.records import Arena, Episode, Reward, ToolCallResult
from astra_rl_training.chat_tokens import ChatTokens
from astra_rl_training.generation import Sampling

DEFAULT_SYSTEM_PROMPT = (
    "You are a helpful assistant that answers questions by calling tools. Call the tools you "
    "need, one step at a time, then give the final answer."
)


@attrs.define
class LiveEpisode:
    arena: Arena
    runtime: Any
    ids: list[int]
    mask: list[int]
    prompt_len: int
    messages: list[dict[str, Any]]
    calls: list[ToolCallResult] = attrs.Factory(list)
    turns: int = 0
    done: bool = False
    stop_reason: str = ""
    reward: Reward | None = None


@attrs.frozen
class Rollout:
    """One finished episode with what training needs."""

    episode: Episode
    ids: tuple[int, ...]
    mask: tuple[int, ...]
    prompt_len: int

    @property
    def reward(self) -> float:
        return self.episode.reward.value if self.episode.reward else 0.0


@attrs.frozen
class RolloutStats:
    episodes: int
    turns: float
    calls: float
    generated_tokens: int
    tool_tokens: int
    seconds: float
    generate_seconds: float
    tool_seconds: float
    stop_reasons: dict[str, int]


class RolloutEngine:
    """Runs episodes of arenas with a policy until each stops.

    An episode stops when the model answers without a tool call (``no_call``), at the turn cap
    (``turn_cap``), at the length cap (``length_cap``) or, optionally, once every sub-question
    is solved (``solved``). Malformed calls become error observations and count as calls.
    """

    def __init__(
        self,
        generator: Any,
        chat: ChatTokens,
        parser: ToolCallParser,
        verifier: Verifier,
        runtime_factory: Callable[[Arena], Any],
        *,
        max_turns: int = 8,
        max_new_tokens: int = 256,
        max_length: int = 4096,
        stop_when_solved: bool = False,
        system_prompt: str | None = DEFAULT_SYSTEM_PROMPT,
    ) -> None:
        self.generator = generator
        self.chat = chat
        self.parser = parser
        self.verifier = verifier
        self.runtime_factory = runtime_factory
        self.max_turns = max_turns
        self.max_new_tokens = max_new_tokens
        self.max_length = max_length
        self.stop_when_solved = stop_when_solved
        self.system_prompt = system_prompt

    def prompt_messages(self, arena: Arena) -> list[dict[str, Any]]:
        messages: list[dict[str, Any]] = []
        if self.system_prompt:
            messages.append({"role": "system", "content": self.system_prompt})
        messages.append({"role": "user", "content": arena.question})
        return messages

    def run(
        self, arenas: Sequence[Arena], sampling: Sampling
    ) -> tuple[list[Rollout], RolloutStats]:
        t0 = time.perf_counter()
        gen_s = tool_s = 0.0
        tool_tokens = generated = 0
        episodes: list[LiveEpisode] = []
        try:
            for arena in arenas:
                messages = self.prompt_messages(arena)
                prompt = self.chat.prompt_ids(messages, arena.tools)
                runtime = self.runtime_factory(arena)
                runtime.reset()
                episodes.append(
                    LiveEpisode(
                        arena, runtime, list(prompt), [0] * len(prompt), len(prompt), messages
                    )
                )
                if len(prompt) >= self.max_length:
                    episodes[-1].done, episodes[-1].stop_reason = True, "length_cap"
            while True:
                live = [e for e in episodes if not e.done]
                if not live:
                    break
                budgets = [min(self.max_new_tokens, self.max_length - len(e.ids)) for e in live]
                t = time.perf_counter()
                outputs = self.generator.generate([e.ids for e in live], budgets, sampling)
                gen_s += time.perf_counter() - t
                t = time.perf_counter()
                for episode, new_ids, budget in zip(live, outputs, budgets, strict=True):
                    generated += len(new_ids)
                    tool_tokens += self._advance(episode, new_ids, budget)
                tool_s += time.perf_counter() - t
        finally:
            for e in episodes:
                e.runtime.close()
        rollouts = [self._finish(e) for e in episodes]
        reasons: dict[str, int] = {}
        for e in episodes:
            reasons[e.stop_reason] = reasons.get(e.stop_reason, 0) + 1
        n = max(1, len(episodes))
        stats = RolloutStats(
            episodes=len(episodes),
            turns=sum(e.turns for e in episodes) / n,
            calls=sum(len(e.calls) for e in episodes) / n,
            generated_tokens=generated,
            tool_tokens=tool_tokens,
            seconds=time.perf_counter() - t0,
            generate_seconds=gen_s,
            tool_seconds=tool_s,
            stop_reasons=reasons,
        )
        return rollouts, stats

    def _advance(self, e: LiveEpisode, new_ids: list[int], budget: int) -> int:
        """Append one generated turn, run its calls, append the responses; return tool tokens."""
        e.ids.extend(new_ids)
        e.mask.extend([1] * len(new_ids))
        e.turns += 1
        ended = bool(new_ids) and new_ids[-1] in self.chat.stop_ids
        text = self.chat.decode(new_ids)
        parsed = self.parser.parse(text)
        assistant: dict[str, Any] = {"role": "assistant", "content": parsed.content}
        if parsed.calls:
            assistant["tool_calls"] = [
                {
                    "id": f"call_{e.turns}_{i}",
                    "type": "function",
                    "function": {
                        "name": c.name,
                        "arguments": json.dumps(c.arguments, ensure_ascii=False),
                    },
                }
                for i, c in enumerate(parsed.calls)
            ]
        e.messages.append(assistant)
        if not ended:
            # Cut off mid-turn: whatever it was writing is not a complete call.
            e.done, e.stop_reason = True, "length_cap"
            return 0
        if not parsed.calls and not parsed.errors:
            e.done, e.stop_reason = True, "no_call"
            return 0
        tool_messages = []
        for i, call in enumerate(parsed.calls):
            result = e.runtime.step(call)
            e.calls.append(result)
            tool_messages.append(
                {
                    "role": "tool",
                    "tool_call_id": f"call_{e.turns}_{i}",
                    "name": call.name,
                    "content": result.output,
                }
            )
        for error in parsed.errors:
            result = e.runtime.step(error)
            e.calls.append(result)
            tool_messages.append({"role": "tool", "content": result.output})
        e.messages.extend(tool_messages)
        response = self.chat.tool_response_ids(tool_messages)
        if self.stop_when_solved:
            e.reward = self.verifier.score(e.arena, e.calls)
            if e.reward.recall >= 1.0:
                e.done, e.stop_reason = True, "solved"
                return 0
        if e.turns >= self.max_turns:
            e.done, e.stop_reason = True, "turn_cap"
            return 0
        if len(e.ids) + len(response) >= self.max_length:
            e.done, e.stop_reason = True, "length_cap"
            return 0
        e.ids.extend(response)
        e.mask.extend([0] * len(response))
        return len(response)

    def _finish(self, e: LiveEpisode) -> Rollout:
        reward = self.verifier.score(e.arena, e.calls)
        episode = Episode(
            arena_id=e.arena.id,
            messages=tuple(e.messages),
            calls=tuple(e.calls),
            token_ids=tuple(e.ids),
            loss_mask=tuple(e.mask),
            reward=reward,
            turns=e.turns,
            stop_reason=e.stop_reason,
        )
        return Rollout(episode, tuple(e.ids), tuple(e.mask), e.prompt_len)
