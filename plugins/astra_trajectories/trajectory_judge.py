"""Step 6: the paper's seven trajectory scores, their mean, and the threshold filter.

On the conversation without its system message (paper §2.1.5):

1. ``query_understanding`` and 2. ``query_planning`` (0 / 0.5 / 1): the first assistant turn;
3. ``tool_context_understanding`` and 4. ``tool_context_planning``: the mean over tool-call
   rounds j = 2..J (calls made in one turn are one round) of the judge's 0 / 0.5 / 1 for round
   j's turn given the responses before it; undefined with fewer than two rounds;
5. ``tool_call_status``: the share of calls whose response is valid (the executor's own error
   flag: injected emulator failures, tool errors and invalid calls score 0, as in the paper's
   formula; the authors' code gives a failure 0.5);
6. ``tool_conciseness``: the mean of the judge's 0 / 1 per call (necessary, not redundant);
7. ``final_answer``: (correlation + faithful summary) / 2; an answer in another script than
   the query gets correlation 0 by rule, as in the authors' code.

One judge call covers the two scores that look at the same turn (1-2, and 3-4 per round), so a
trajectory with J rounds costs J + 2 calls. ``overall`` is the mean of the defined scores. A
judge call that fails, or an answer that does not parse, raises ``StepFailed``: the record is
failed, never passed (the authors' code scores a failed judge 1.0).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

import attrs

from astra_core.protocols import LLMBackend
from astra_core.records import JSONDict, ToolCallResult
from astra_trajectories import prompts
from astra_trajectories.language import dominant_script, same_script
from astra_trajectories.llm_answers import ask
from astra_trajectories.step_outcomes import StepFailed

STEP = "judge"
SCORE_NAMES = (
    "query_understanding",
    "query_planning",
    "tool_context_understanding",
    "tool_context_planning",
    "tool_call_status",
    "tool_conciseness",
    "final_answer",
)


@attrs.frozen
class JudgeVerdict:
    scores: dict[str, float]  # the defined scores and "overall"
    reasons: dict[str, str]
    not_applicable: tuple[str, ...] = ()
    passed: bool = False

    @property
    def overall(self) -> float:
        return self.scores["overall"]


@attrs.frozen
class _Turn:
    """An assistant turn: its index in ``messages``, and the global numbers of its calls."""

    index: int
    calls: tuple[int, ...]


class ConversationView:
    """The conversation as the judge reads it: numbered calls, outputs cut to a length."""

    def __init__(self, messages: Sequence[Mapping[str, Any]], max_output_chars: int) -> None:
        self.messages = [dict(m) for m in messages if m.get("role") != "system"]
        self.max_output_chars = max_output_chars
        self.turns: list[_Turn] = []
        self.call_numbers: dict[str, int] = {}
        self.call_names: dict[int, str] = {}
        number = 0
        for index, message in enumerate(self.messages):
            if message.get("role") != "assistant":
                continue
            numbers = []
            for call in message.get("tool_calls") or ():
                number += 1
                self.call_numbers[str(call.get("id"))] = number
                self.call_names[number] = str(call["function"]["name"])
                numbers.append(number)
            self.turns.append(_Turn(index, tuple(numbers)))
        self.calls = number

    @property
    def query(self) -> str:
        return next((str(m["content"]) for m in self.messages if m["role"] == "user"), "")

    @property
    def rounds(self) -> list[_Turn]:
        return [t for t in self.turns if t.calls]

    def render(self, upto: int | None = None) -> str:
        """Messages up to and including index ``upto`` (all when ``None``)."""
        shown = self.messages if upto is None else self.messages[: upto + 1]
        lines = []
        for message in shown:
            role = message.get("role")
            if role == "user":
                lines.append(f"[user] {message.get('content', '')}")
            elif role == "assistant":
                lines.append(f"[assistant] {message.get('content', '')}".rstrip())
                for call in message.get("tool_calls") or ():
                    n = self.call_numbers[str(call.get("id"))]
                    fn = call["function"]
                    lines.append(f"  -> call {n}: {fn['name']}({fn.get('arguments', '')})")
            elif role == "tool":
                n = self.call_numbers.get(str(message.get("tool_call_id")), 0)
                output = str(message.get("content", ""))
                if len(output) > self.max_output_chars:
                    cut = len(output) - self.max_output_chars
                    output = output[: self.max_output_chars] + f"... [{cut} characters cut]"
                lines.append(f"[tool response to call {n}: {self.call_names.get(n, '?')}] {output}")
        return "\n".join(lines)


def offered_tools(tools: Sequence[Mapping[str, Any]]) -> str:
    return "\n".join(
        f"- {t['function']['name']}: {t['function'].get('description', '')}" for t in tools
    )


class TrajectoryJudge:
    def __init__(
        self,
        llm: LLMBackend,
        *,
        threshold: float,
        max_output_chars: int = 2000,
        sampling: Mapping[str, Any] | None = None,
    ) -> None:
        self.llm = llm
        self.threshold = threshold
        self.max_output_chars = max_output_chars
        self.sampling = dict(sampling or {})

    def _ask(self, messages: list[JSONDict], schema: JSONDict) -> Any:
        return ask(self.llm, messages, schema=schema, step=STEP, sampling=self.sampling)

    def judge(
        self,
        messages: Sequence[Mapping[str, Any]],
        tools: Sequence[Mapping[str, Any]],
        results: Sequence[ToolCallResult],
    ) -> JudgeVerdict:
        view = ConversationView(messages, self.max_output_chars)
        if not view.turns:
            raise StepFailed(f"{STEP}-malformed", "the conversation has no assistant turn")
        offered = offered_tools(tools)
        scores: dict[str, float] = {}
        reasons: dict[str, str] = {}
        na: list[str] = []

        first = self._ask(
            prompts.query_judge_messages(offered, view.render(view.turns[0].index)),
            prompts.TURN_JUDGE_SCHEMA,
        )
        scores["query_understanding"] = float(first["understanding"])
        scores["query_planning"] = float(first["planning"])
        reasons["query"] = str(first.get("reason", ""))

        later = view.rounds[1:]
        if later:
            understanding, planning, why = [], [], []
            for turn in later:
                answer = self._ask(
                    prompts.round_judge_messages(offered, view.render(turn.index)),
                    prompts.TURN_JUDGE_SCHEMA,
                )
                understanding.append(float(answer["understanding"]))
                planning.append(float(answer["planning"]))
                why.append(str(answer.get("reason", "")))
            reasons["tool_context"] = json.dumps(why, ensure_ascii=False)
            scores["tool_context_understanding"] = sum(understanding) / len(understanding)
            scores["tool_context_planning"] = sum(planning) / len(planning)
        else:
            na += ["tool_context_understanding", "tool_context_planning"]

        if view.calls:
            scores["tool_call_status"] = sum(0.0 if r.error else 1.0 for r in results) / max(
                len(results), 1
            )
            scores["tool_conciseness"] = self._conciseness(view, offered, reasons)
        else:
            na += ["tool_call_status", "tool_conciseness"]

        final = self._ask(
            prompts.final_answer_judge_messages(offered, view.render()),
            prompts.FINAL_ANSWER_SCHEMA,
        )
        correlation = float(final["correlation"])
        answer_text = str(view.messages[-1].get("content", ""))
        reasons["final_answer"] = str(final.get("reason", ""))
        if not same_script(view.query, answer_text):
            correlation = 0.0
            reasons["final_answer"] += (
                f" [rule: the answer is in {dominant_script(answer_text)} script, the query in "
                f"{dominant_script(view.query)}]"
            )
        scores["final_answer"] = (correlation + float(final["summary"])) / 2

        defined = [scores[name] for name in SCORE_NAMES if name in scores]
        scores["overall"] = round(sum(defined) / len(defined), 6)
        return JudgeVerdict(scores, reasons, tuple(na), passed=scores["overall"] >= self.threshold)

    def _conciseness(self, view: ConversationView, offered: str, reasons: dict[str, str]) -> float:
        answer = self._ask(
            prompts.conciseness_judge_messages(offered, view.render(), view.calls),
            prompts.CONCISENESS_SCHEMA,
        )
        indexes = [int(item["index"]) for item in answer["calls"]]
        if sorted(indexes) != list(range(1, view.calls + 1)):
            raise StepFailed(
                f"{STEP}-malformed",
                f"{STEP}: conciseness scored calls {sorted(indexes)}, expected each of "
                f"1..{view.calls} once",
            )
        reasons["tool_conciseness"] = json.dumps(
            {str(i["index"]): i.get("reason", "") for i in answer["calls"]}, ensure_ascii=False
        )
        return sum(float(item["score"]) for item in answer["calls"]) / view.calls
