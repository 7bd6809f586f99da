"""Multi-turn rollouts in arenas, batched across every live episode.

Token-in/token-out: an episode's ``ids`` are the prompt, then alternately the ids the policy
sampled (``mask`` 1) and the ids of the tool responses and template pieces ASTRA inserted
(``mask`` 0). Training uses exactly these ids, so what is optimised is what was sampled.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import attrs

from astra_core.protocols import CallCreditVerifier, ToolCallParser, Verifier
from astra_core.records import Arena, Episode, Reward, ToolCallResult, tool_name
from astra_training.chat_tokens import ChatTokens
from astra_training.generation import Sampling

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
    turn_start: int = 0  # assistant turns before the current user turn (the cap is per turn)
    done: bool = False
    stop_reason: str = ""
    reward: Reward | None = None
    starting: Future[None] | None = None  # the runtime's reset(), running in the background
    # (start in ids, log-probs) of each turn whose sampler reported them
    sampled: list[tuple[int, tuple[float, ...]]] = attrs.Factory(list)


@attrs.frozen
class Rollout:
    """One finished episode with what training needs."""

    episode: Episode
    ids: tuple[int, ...]
    mask: tuple[int, ...]
    prompt_len: int
    # one value per call from a CallCreditVerifier (empty when the verifier gives none)
    call_credit: tuple[float, ...] = ()
    # the sampler's log-prob of each id (0 where not sampled), from a generator that reports
    # them (an inference server); empty otherwise
    sampler_logprobs: tuple[float, ...] = ()

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

    Arenas with several user turns (BFCL multi-turn) have a runtime with ``next_turn()``: when
    the model answers without a call, the next user message is appended and the episode goes
    on; it ends with ``no_call`` after the last one. ``max_turns`` caps the assistant turns of
    each user turn. The prompt offers the runtime's ``tools`` where it has them; tools offered
    from a later turn on are shown as JSON at the head of that turn's user message, as BFCL
    shows them to prompted models, since the prompt's tool list cannot change mid-sequence.

    Each episode's runtime is started (``reset()``) in a pool of ``start_workers`` threads, so
    that sandbox start-up (a process, the tool code loaded: ~0.1 s each) overlaps generation;
    an episode's first ``step()`` waits for its start, and a start that failed raises from
    ``run()``. A generator with ``keeps_episode_cache`` is given one key per episode and told to
    ``forget()`` when the run ends. A generator with ``interleaves_turns`` runs every episode
    to its end in one ``run()`` call, calling back after each turn (``InterleavedGenerate``).
    A generator with ``returns_logprobs`` returns ``SampledTurn``s: each rollout then keeps the
    sampler's log-prob of every sampled token (``Rollout.sampler_logprobs``).
    """

    def __init__(
        self,
        generator: Any,
        chat: ChatTokens,
        parser: ToolCallParser,
        verifier: Verifier | Callable[[Arena], Verifier],
        runtime_factory: Callable[[Arena], Any],
        *,
        max_turns: int = 8,
        max_new_tokens: int = 256,
        max_length: int = 4096,
        stop_when_solved: bool = False,
        system_prompt: str | None = DEFAULT_SYSTEM_PROMPT,
        start_workers: int = 16,
    ) -> None:
        self.generator = generator
        self.chat = chat
        self.parser = parser
        # one verifier for every arena, or a function giving each arena's own
        self.verifier_for: Callable[[Arena], Verifier] = (
            (lambda _: verifier) if isinstance(verifier, Verifier) else verifier
        )
        self.runtime_factory = runtime_factory
        self.max_turns = max_turns
        self.max_new_tokens = max_new_tokens
        self.max_length = max_length
        self.stop_when_solved = stop_when_solved
        self.system_prompt = system_prompt
        self.start_workers = start_workers

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
        keyed = bool(getattr(self.generator, "keeps_episode_cache", False))
        with_logprobs = bool(getattr(self.generator, "returns_logprobs", False))
        pool = ThreadPoolExecutor(
            max_workers=max(1, min(self.start_workers, len(arenas))),
            thread_name_prefix="astra-episode-start",
        )
        try:
            for arena in arenas:
                runtime = self.runtime_factory(arena)
                messages = self.prompt_messages(arena)
                prompt = self.chat.prompt_ids(messages, getattr(runtime, "tools", arena.tools))
                episodes.append(
                    LiveEpisode(
                        arena,
                        runtime,
                        list(prompt),
                        [0] * len(prompt),
                        len(prompt),
                        messages,
                        starting=pool.submit(runtime.reset),
                    )
                )
                if len(prompt) >= self.max_length:
                    episodes[-1].done, episodes[-1].stop_reason = True, "length_cap"
            if getattr(self.generator, "interleaves_turns", False):
                gen_s, tool_s, generated, tool_tokens = self._interleaved(episodes, sampling)
            while True:
                for e in episodes:
                    if e.starting is not None and e.starting.done():
                        self._started(e)  # a failed start raises here, before more generation
                live = [(i, e) for i, e in enumerate(episodes) if not e.done]
                if not live:
                    break
                budgets = [self._budget(e) for _, e in live]
                prompts = [e.ids for _, e in live]
                t = time.perf_counter()
                if keyed:
                    keys = [i for i, _ in live]
                    outputs = self.generator.generate(prompts, budgets, sampling, keys=keys)
                else:
                    outputs = self.generator.generate(prompts, budgets, sampling)
                gen_s += time.perf_counter() - t
                t = time.perf_counter()
                for (_, episode), new in zip(live, outputs, strict=True):
                    if with_logprobs:
                        episode.sampled.append((len(episode.ids), new.logprobs))
                        new = list(new.ids)
                    generated += len(new)
                    tool_tokens += self._advance(episode, new)
                tool_s += time.perf_counter() - t
            for e in episodes:
                self._started(e)  # the start of an episode that never called a tool
        finally:
            # Starts not yet begun are dropped; those under way finish before their close.
            pool.shutdown(wait=True, cancel_futures=True)
            for e in episodes:
                e.runtime.close()
            if keyed:
                self.generator.forget()
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

    def _budget(self, e: LiveEpisode) -> int:
        return min(self.max_new_tokens, self.max_length - len(e.ids))

    def _interleaved(
        self, episodes: Sequence[LiveEpisode], sampling: Sampling
    ) -> tuple[float, float, int, int]:
        """Every live episode to its end with a generator that interleaves turns: each
        episode's tool calls run as soon as its own turn ends. Returns the seconds generating
        and running tools, and the tokens generated and inserted."""
        live = [e for e in episodes if not e.done]
        tool_s = 0.0
        generated = tool_tokens = 0

        def on_turn(row: int, new_ids: list[int]) -> tuple[list[int], int] | None:
            nonlocal tool_s, generated, tool_tokens
            t = time.perf_counter()
            e = live[row]
            generated += len(new_ids)
            inserted = self._advance(e, new_ids)
            tool_tokens += inserted
            tool_s += time.perf_counter() - t
            if e.done:
                return None
            return e.ids[len(e.ids) - inserted :], self._budget(e)

        t0 = time.perf_counter()
        self.generator.run(
            [e.ids for e in live], [self._budget(e) for e in live], sampling, on_turn
        )
        return time.perf_counter() - t0 - tool_s, tool_s, generated, tool_tokens

    def _advance(self, e: LiveEpisode, new_ids: list[int]) -> int:
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
            return self._next_user_turn(e)
        tool_messages = []
        runtime = self._started(e)
        for i, call in enumerate(parsed.calls):
            result = runtime.step(call)
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
            result = runtime.step(error)
            e.calls.append(result)
            tool_messages.append({"role": "tool", "content": result.output})
        e.messages.extend(tool_messages)
        response = self.chat.continuation_ids(tool_messages)
        if self.stop_when_solved:
            so_far = Episode(e.arena.id, tuple(e.messages), tuple(e.calls), turns=e.turns)
            e.reward = self.verifier_for(e.arena).score(e.arena, so_far)
            if e.reward.success:
                e.done, e.stop_reason = True, "solved"
                return 0
        if e.turns - e.turn_start >= self.max_turns:
            e.done, e.stop_reason = True, "turn_cap"
            return 0
        if len(e.ids) + len(response) >= self.max_length:
            e.done, e.stop_reason = True, "length_cap"
            return 0
        e.ids.extend(response)
        e.mask.extend([0] * len(response))
        return len(response)

    def _next_user_turn(self, e: LiveEpisode) -> int:
        """The model answered without a call: append the next user turn, if the runtime has
        one, and return its tokens; else end the episode."""
        next_turn = getattr(e.runtime, "next_turn", None)
        if not callable(next_turn):
            e.done, e.stop_reason = True, "no_call"
            return 0
        runtime = self._started(e)
        offered = {tool_name(t) for t in getattr(runtime, "tools", ())}
        message = next_turn()
        if message is None:
            e.done, e.stop_reason = True, "no_call"
            return 0
        added = [t for t in getattr(runtime, "tools", ()) if tool_name(t) not in offered]
        if added:
            message = json.dumps(added, ensure_ascii=False) + "\n" + message
        user = {"role": "user", "content": message}
        ids = self.chat.continuation_ids([user])
        if len(e.ids) + len(ids) >= self.max_length:
            e.done, e.stop_reason = True, "length_cap"
            return 0
        e.messages.append(user)
        e.turn_start = e.turns
        e.ids.extend(ids)
        e.mask.extend([0] * len(ids))
        return len(ids)

    @staticmethod
    def _started(e: LiveEpisode) -> Any:
        """The episode's runtime once its start is done (re-raising what the start raised)."""
        starting, e.starting = e.starting, None
        if starting is not None:
            starting.result()
        return e.runtime

    def _finish(self, e: LiveEpisode) -> Rollout:
        verifier = self.verifier_for(e.arena)
        played = Episode(
            arena_id=e.arena.id,
            messages=tuple(e.messages),
            calls=tuple(e.calls),
            token_ids=tuple(e.ids),
            loss_mask=tuple(e.mask),
            turns=e.turns,
            stop_reason=e.stop_reason,
        )
        # the verifier sees the whole episode; the record's id then covers its reward too
        episode = attrs.evolve(played, reward=verifier.score(e.arena, played), id="")
        credit = (
            verifier.call_credit(e.arena, e.calls)
            if isinstance(verifier, CallCreditVerifier)
            else ()
        )
        logprobs = [0.0] * len(e.ids) if e.sampled else []
        for start, values in e.sampled:
            logprobs[start : start + len(values)] = values
        return Rollout(
            episode, tuple(e.ids), tuple(e.mask), e.prompt_len, tuple(credit), tuple(logprobs)
        )
