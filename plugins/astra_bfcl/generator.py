"""The ``bfcl-multi-turn`` environment generator: bfcl-eval's multi-turn entries as arenas.

Per entry (categories base, miss_func, miss_param, long_context): the user turns in order
(``metadata["turns"]``; a ``miss_func`` turn that brings held-out functions back gets BFCL's
own message for it), the involved classes and their ``initial_config``, OpenAI schemas of every
function of those classes (``tools``; the held-out ones are listed in
``metadata["added_functions"]`` by the turn that offers them), the ground-truth calls per turn
(``metadata["ground_truth"]``, arguments named; BFCL's strings in
``metadata["ground_truth_source"]``) and one ``tool_code`` source per tool that runs the
bfcl-eval class in the sandbox.

The ground truth of every entry is replayed in the sandbox (many entries per run) and judged by
the same checks as an agent's calls; then it is run once more through ``BfclRuntime``, i.e. the
arena's own tool code in a sandbox session, and every output must equal the replay's. An entry
that fails any of this is dropped with its reason (``convert-failed``, ``replay-failed``,
``ground-truth-fails-check``, ``tool-code-failed``, ``structure-invalid``; and
``ground-truth-calls-held-out-function`` for ``multi_turn_miss_func_49``, whose ground truth calls
``tail`` two turns before BFCL offers it). The outputs give
the sub-question answers:

* one sub-question per user turn, ``id`` ``turn-<k>``, its message as the question;
* a turn with ground-truth calls: ``needs_tool`` True, ``call`` = its last ground-truth call,
  ``tool`` = that call's name, ``answer`` = that call's execution result rendered as BFCL renders
  it (the result the state of the turn leads to), depending on the previous such turn;
* a turn with no ground-truth call (the agent must not act: a function or a parameter is
  missing) is a non-tool leaf with answer ``"(no call)"``;
* ``topology`` is ``multi`` (a chain of turns), ``single`` for a one-turn entry; ``answer`` is
  the last tool turn's answer.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from typing import Any

from astra_bfcl import data
from astra_bfcl.calls import CallParseError, call_from_dict, call_to_dict, parse_call
from astra_bfcl.options import BfclMultiTurnOptions
from astra_bfcl.replay import ReplayError, output_digest, payload_for, run_replays
from astra_bfcl.runtime import BfclRuntime
from astra_bfcl.schemas import openai_tool
from astra_bfcl.tool_code import tool_source
from astra_core.arena_structure import validate_structure
from astra_core.context import StageContext
from astra_core.errors import AstraError
from astra_core.records import Arena, SubQuestion, content_id
from astra_core.registry import ComponentBuilder

NO_CALL_ANSWER = "(no call)"
_BFCL_IMPORT = re.compile(
    r"^tool '[^']+': imports 'bfcl_eval(\.[\w.]+)?', not in the standard library$"
)


class HeldOutCall(AstraError):
    """The ground truth calls a function before the turn that offers it (miss_func_49 does)."""


def arena_problems(arena: Arena) -> list[str]:
    """``validate_structure``'s problems, except that tools may import bfcl-eval."""
    return [p for p in validate_structure(arena) if not _BFCL_IMPORT.match(p)]


def arena_id_of(entry: dict[str, Any]) -> str:
    """Stable across runs; changes when bfcl-eval changes the entry or its ground truth."""
    return content_id("bfcl-multi-turn", entry)


def draft_arena(entry: dict[str, Any], category: str, version: str) -> Arena:
    """Everything but the answers (those come from the replay): ``Arena`` with placeholders."""
    entry_id = str(entry["id"])
    classes = [str(c) for c in entry["involved_classes"]]
    unknown = [c for c in classes if c not in data.MULTI_TURN_CLASSES]
    if unknown:
        raise AstraError(f"{entry_id}: class {unknown[0]} is not one of the multi-turn classes")
    config = entry.get("initial_config") or {}
    long_context = category == "long_context"
    tools: list[dict[str, Any]] = []
    code: dict[str, str] = {}
    owner: dict[str, str] = {}
    for class_name in classes:
        module = data.module_of(class_name)
        for doc in data.function_docs(class_name):
            name = str(doc["name"])
            if name in owner:
                raise AstraError(
                    f"{entry_id}: {name} is a function of {owner[name]} and {class_name}"
                )
            owner[name] = class_name
            tools.append(openai_tool(doc))
            code[name] = tool_source(
                name,
                class_name=class_name,
                module=module,
                entry_id=entry_id,
                config=config.get(class_name, {}),
                long_context=long_context,
                stateless=data.is_stateless(class_name),
                version=version,
            )

    def signature(name: str) -> Any:
        return data.method_signature(owner[name], name) if name in owner else None

    ground_truth = []
    for turn in entry["ground_truth"]:
        parsed = []
        for text in turn:
            call = parse_call(text, signature)
            if call.name not in owner:
                raise CallParseError(f"{entry_id}: ground truth calls unknown function {text!r}")
            parsed.append(call_to_dict(call))
        ground_truth.append(parsed)
    added = {str(k): [str(n) for n in v] for k, v in (entry.get("missed_function") or {}).items()}
    turns = []
    for index, messages in enumerate(entry["question"]):
        users = [str(m.get("content", "")) for m in messages if m.get("role") == "user"]
        if not users and str(index) in added:
            users = [data.additional_function_prompt()]
        turns.append("\n\n".join(users))
    offered_from = {name: int(turn) for turn, names in added.items() for name in names}
    for index, turn in enumerate(ground_truth):
        for gold in turn:
            if offered_from.get(gold["name"], 0) > index:
                raise HeldOutCall(
                    f"{entry_id}: the ground truth of turn {index} calls {gold['name']}, which "
                    f"is only offered from turn {offered_from[gold['name']]}"
                )
    if len(turns) != len(ground_truth):
        raise AstraError(
            f"{entry_id}: {len(turns)} user turns but {len(ground_truth)} turns of ground truth"
        )
    metadata = {
        "source": "bfcl-eval",
        "bfcl_version": version,
        "entry_id": entry_id,
        "category": category,
        "turns": turns,
        "involved_classes": classes,
        "initial_config": config,
        "long_context": long_context,
        "ground_truth": ground_truth,
        "ground_truth_source": [list(t) for t in entry["ground_truth"]],
        "added_functions": added,
        "excluded_function": list(entry.get("excluded_function") or ()),
        "path": list(entry.get("path") or ()),
        "tool_classes": owner,
    }
    return Arena(
        question=turns[0],
        answer="",
        topology="single",
        subquestions=(),
        tools=tuple(tools),
        tool_code=code,
        domain="bfcl-" + "+".join(sorted(classes)),
        metadata=metadata,
        id=arena_id_of(entry),
    )


def finish_arena(draft: Arena, gt_results: list[list[str]]) -> Arena:
    """The draft with its sub-questions, topology and answer, from the ground truth's outputs
    per turn (as the arena's tool code returned them)."""
    meta = draft.metadata
    subs: list[SubQuestion] = []
    previous: str | None = None
    for index, (message, turn, results) in enumerate(
        zip(meta["turns"], meta["ground_truth"], gt_results, strict=True)
    ):
        sid = f"turn-{index}"
        deps = (previous,) if previous else ()
        if turn:
            last = call_from_dict(turn[-1])
            subs.append(SubQuestion(sid, message, results[-1], deps, True, last.name, last))
            previous = sid
        else:
            subs.append(SubQuestion(sid, message, NO_CALL_ANSWER, deps, False, None, None))
    needed = [s for s in subs if s.needs_tool]
    return Arena(
        question=draft.question,
        answer=needed[-1].answer if needed else NO_CALL_ANSWER,
        topology="multi" if len(needed) > 1 else "single",
        subquestions=tuple(subs),
        tools=draft.tools,
        tool_code=draft.tool_code,
        domain=draft.domain,
        metadata=draft.metadata,
        id=draft.id,
    )


class BfclMultiTurnGenerator:
    def __init__(self, options: BfclMultiTurnOptions, builder: ComponentBuilder) -> None:
        data.require_bfcl()
        self.options = options
        self.sandbox = builder.build("sandbox", options.sandbox, key="generator.sandbox")

    def entries(self) -> Iterator[tuple[str, dict[str, Any]]]:
        """(category, entry) in BFCL's order, after ``ids`` and ``limit``."""
        wanted = set(self.options.ids)
        for category in self.options.categories:
            taken = 0
            for entry in data.load_category(category):
                if wanted and entry["id"] not in wanted:
                    continue
                if self.options.limit and taken >= self.options.limit:
                    break
                taken += 1
                yield category, entry

    def generate(self, ctx: StageContext) -> Iterable[Arena]:
        version = data.bfcl_version()
        batch: list[Arena] = []
        selected = list(self.entries())
        for category, entry in ctx.progress(selected, desc="bfcl entries", unit="entry"):
            arena_id = arena_id_of(entry)
            if not ctx.in_shard(arena_id) or ctx.seen(arena_id):
                continue
            try:
                batch.append(draft_arena(entry, category, version))
            except HeldOutCall as exc:
                ctx.drop("ground-truth-calls-held-out-function", arena_id, str(exc))
                continue
            except (AstraError, CallParseError) as exc:
                ctx.drop("convert-failed", arena_id, f"{entry['id']}: {exc}")
                continue
            if len(batch) >= self.options.batch_size:
                yield from self._finish(batch, ctx)
                batch = []
        yield from self._finish(batch, ctx)

    def _finish(self, drafts: list[Arena], ctx: StageContext) -> Iterator[Arena]:
        if not drafts:
            return
        try:
            outcomes = run_replays(
                self.sandbox, [payload_for(d) for d in drafts], timeout_s=self.options.timeout_s
            )
        except ReplayError as exc:
            for draft in drafts:
                ctx.drop("replay-failed", draft.id, f"{draft.metadata['entry_id']}: {exc}")
            return
        for draft, outcome in zip(drafts, outcomes, strict=True):
            entry_id = draft.metadata["entry_id"]
            if not outcome["ok"]:
                ctx.drop("replay-failed", draft.id, f"{entry_id}: {outcome['error']}")
                continue
            failed = [t for t in outcome["result"]["turns"] if not t["passed"]]
            if failed:
                ctx.drop(
                    "ground-truth-fails-check",
                    draft.id,
                    f"{entry_id}: {failed[0]['error_type']}: {failed[0]['message']}",
                )
                continue
            # The answers come from the arena's own tool code, run as an agent's calls are; it
            # must say exactly what BFCL's replay said.
            results, problem = self._play_ground_truth(draft, outcome["result"]["model_digests"])
            if problem:
                ctx.drop("tool-code-failed", draft.id, f"{entry_id}: {problem}")
                continue
            arena = finish_arena(draft, results)
            problems = arena_problems(arena)
            if problems:
                ctx.drop("structure-invalid", arena.id, f"{entry_id}: {'; '.join(problems)}")
                continue
            yield arena

    def _play_ground_truth(
        self, draft: Arena, digests: list[str]
    ) -> tuple[list[list[str]], str | None]:
        """Outputs per turn of the ground truth run through the runtime, or why it failed."""
        turns = [[call_from_dict(c) for c in turn] for turn in draft.metadata["ground_truth"]]
        with BfclRuntime(draft, self.sandbox, timeout_s=self.options.timeout_s) as runtime:
            played = runtime.play(turns)
        for index, result in enumerate(played):
            if result.error:
                return [], f"ground-truth call {result.name} failed: {result.output[:300]}"
            if index >= len(digests) or output_digest(result.output) != digests[index]:
                return [], (
                    f"ground-truth call {index} ({result.name}) returned something else than "
                    f"BFCL's replay: {result.output[:200]!r}"
                )
        outputs = iter(r.output for r in played)
        return [[next(outputs) for _ in turn] for turn in turns], None
