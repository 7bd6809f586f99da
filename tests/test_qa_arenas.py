"""The ``qa-llm`` environment generator end to end: questions in, verified arenas out.

The LLM is a hosted service that cannot run here, so its answers are RECORDED-SHAPED: a scripted
model (examples/qa_arenas/answer_book.py) answers each of the project's own prompts as a capable
model would (JSON decompositions in the authors' format, tool documents, call statements,
standard-library tools with mock data), served over real HTTP by the loopback OpenAI-compatible
server. On chosen questions it answers like a fallible model: broken JSON (repaired when the
parse error is shown), a decomposition that breaks the leaf rule, tool code that raises or prints
the answer escaped (repaired from the sandbox output), a merge that loses a row. Everything else
is real: the HTTP backend and its cache, bubblewrap, the stage, the arena runtime and verifier.
"""

from __future__ import annotations

import json
import shutil
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from astra_llm.loopback_server import LoopbackServer, ReceivedRequest, Reply, chat_completion

from astra_core.arena_structure import validate_structure
from astra_core.arena_verification import verify_arena
from astra_core.options import ComponentSpec
from astra_core.pipeline import run
from astra_core.plugins import load_plugins
from astra_core.records import TOPOLOGIES, Arena, Episode
from astra_core.registry import ComponentBuilder
from astra_core.sandbox_policy import llm_written
from astra_core.store import RecordStore, read_manifest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "examples" / "qa_arenas"))
from answer_book import AnswerBook, build_questions  # noqa: E402

pytestmark = pytest.mark.skipif(shutil.which("bwrap") is None, reason="needs bubblewrap")


SPECS = build_questions(seed=11, per_family=2)
BY_SCENARIO: dict[str, list[dict[str, Any]]] = {}
for _spec in SPECS:
    BY_SCENARIO.setdefault(_spec["scenario"], []).append(_spec)
# the failures, each on its own question
MALFORMED = BY_SCENARIO["Single-Hop"][0]["question"]
LEAF = BY_SCENARIO["Multi-Hop"][1]["question"]
RAISES = next(s for s in SPECS if s["domain"] == "Hotels")["steps"][0][1]
WRONG = next(s for s in SPECS if s["domain"] == "Hotels")["steps"][2][1]  # '€' escaped
MERGE_BREAKS = next(s for s in SPECS if s["domain"] == "Weather")["question"]
QUIRKS = {
    "malformed": [MALFORMED],
    "leaf": [LEAF],
    "raises": [RAISES],
    "wrong": [WRONG],
    "merge_breaks": [MERGE_BREAKS],
}


def handler(book: AnswerBook) -> Any:
    def answer(request: ReceivedRequest) -> Reply:
        text = book.answer(request.body["messages"])
        return Reply(chat_completion(text, prompt_tokens=len(str(request.body)) // 4))

    return answer


def write_questions(path: Path) -> Path:
    rows = []
    for i, spec in enumerate(SPECS):
        row = {"question": spec["question"], "domain": spec["domain"]}
        if i % 2:  # with and without answers
            row["answer"] = spec["answer"]
        rows.append(json.dumps(row, ensure_ascii=False))
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    return path


def config_text(base_url: str, cache_mode: str = "use", extra: str = "") -> str:
    return f"""
[run]
name = "qa-arenas-test"
seed = 0
{extra}
[synth-arenas]
holdout_fraction = 0.0

[synth-arenas.generator]
name = "qa-llm"
questions = "questions.jsonl"
keep_top = 1.0
merge_tries = 2
inner_retries = 3
outer_retries = 2
distractors_per_band = 1
workers = 4
sandbox = "bubblewrap"

[synth-arenas.generator.llm]
name = "openai-compatible"
model = "scripted-capable-model"
base_url = "{base_url}"
api_key_env = "NO_KEY_HERE"
max_retries = 0
cache_dir = "{{config_dir}}/llm-cache"
cache_mode = "{cache_mode}"
"""


@pytest.fixture(scope="module")
def stage(tmp_path_factory) -> tuple[Path, list[Arena], list[dict[str, Any]], dict[str, Any]]:
    work = tmp_path_factory.mktemp("qa")
    write_questions(work / "questions.jsonl")
    with LoopbackServer(handler(AnswerBook(SPECS, QUIRKS))) as server:
        (work / "run.toml").write_text(config_text(server.base_url))
        run(work / "run.toml", work / "out", quiet=True)
    out = work / "out" / "synth-arenas"
    arenas = list(RecordStore(out, Arena).iter_records())
    dropped = [json.loads(line) for line in (out / "dropped.jsonl").read_text().splitlines()]
    return work, arenas, dropped, read_manifest(out) or {}


def test_kept_arenas_cover_the_four_topologies_and_are_sound(stage):
    _, arenas, _, _ = stage
    assert {a.topology for a in arenas} == set(TOPOLOGIES)
    for arena in arenas:
        assert validate_structure(arena) == [], arena.id
        assert llm_written(arena), "every arena marks its tool code as LLM-written"
        assert arena.metadata["generator"] == "qa-llm"
        assert set(arena.metadata["quality"]) == {
            "dependency_consistency",
            "atomicity",
            "sequential_rationality",
            "task_completeness",
        }
    # the non-tool leaf of a parallel-multi question is kept as a leaf, not as a tool step
    assert any(not s.needs_tool for a in arenas for s in a.subquestions)


def test_every_failure_is_dropped_with_its_step_or_repaired(stage):
    _, arenas, dropped, _ = stage
    reasons = {d["reason"] for d in dropped}
    assert "necessity-leaf-rule" in reasons, dropped
    assert "merge-failed" in reasons, dropped
    leaf = next(d for d in dropped if d["reason"] == "necessity-leaf-rule")
    assert "non-tool sub-question '90' is not a leaf" in leaf["detail"]
    merge = next(d for d in dropped if d["reason"] == "merge-failed")
    assert "step merge" in merge["detail"] and "failed 2 times" in merge["detail"]
    questions = {a.question for a in arenas}
    assert MALFORMED in questions, "the malformed decomposition was repaired on the retry"
    assert MERGE_BREAKS not in questions and LEAF not in questions
    hotel = next(a for a in arenas if a.domain == "Hotels")
    attempts = hotel.metadata["tool_attempts"]
    # the tool that raised and the one that printed '\\u20ac' were each repaired once
    assert attempts["1"] == 2 and attempts["3"] == 2 and attempts["2"] == 1


def assert_replay_at_full_reward(arenas: list[Arena]) -> None:
    """Every arena's gold calls pass verification in bubblewrap, and replayed through its
    runtime they score 1.0 with the sub-task F1 verifier."""
    plugins = load_plugins()
    builder = ComponentBuilder(plugins.registry)
    sandbox = builder.build("sandbox", "bubblewrap")
    verifier = builder.build("verifier", "subtask-f1")
    try:
        for arena in arenas:
            assert all(r.passed for r in verify_arena(arena, sandbox, timeout_s=30)), arena.id
            runtime = plugins.hook.astra_arena_runtime(arena=arena, sandbox=sandbox)
            runtime.reset()
            try:
                calls = tuple(runtime.step(sq.call) for sq in arena.needed)
            finally:
                runtime.close()
            assert not any(c.error for c in calls), [c.output for c in calls if c.error]
            reward = verifier.score(arena, Episode(arena_id=arena.id, messages=(), calls=calls))
            assert reward.value == pytest.approx(1.0), (arena.question, reward)
    finally:
        builder.close()


def test_kept_arenas_replay_in_bubblewrap_and_score_one(stage):
    _, arenas, _, _ = stage
    assert_replay_at_full_reward(arenas)


def test_merged_tools_and_distractors(stage):
    _, arenas, _, _ = stage
    merged = [a for a in arenas if a.metadata["merged"]]
    assert merged, "two weather sub-questions share one merged tool"
    for arena in merged:
        for name, members in arena.metadata["merged"].items():
            assert len(members) >= 2
            assert all(arena.tool_code[name] for _ in members)
            assert Counter(arena.tool_names)[name] == 1
    with_distractors = [a for a in arenas if a.distractors]
    assert with_distractors
    for arena in with_distractors:
        domains = arena.metadata["tool_domains"]
        assert all(domains[d] != arena.domain for d in arena.distractors)


def test_manifest_counts_llm_calls_tokens_and_cache_hits_per_step(stage, tmp_path):
    work, arenas, _, manifest = stage
    metrics = manifest["metrics"]["qa-llm"]
    for step in ("decompose", "necessity", "quality", "tool", "merge"):
        assert metrics[f"llm.{step}.calls"] > 0, step
    assert metrics["llm.decompose.retries"] == 1  # the malformed answer, asked again once
    assert metrics["llm.total.prompt_tokens"] > 0
    # only repeated prompts (one tool document scaled up for two questions) hit the cache
    assert metrics["llm.total.cache_hits"] < metrics["llm.total.calls"] / 4
    assert metrics["sandbox_runs"] > 0
    assert manifest["dropped"]["necessity-leaf-rule"] == 1
    # the same config again, with no server: every answer from the cache, the same arenas
    shutil.copy(work / "questions.jsonl", tmp_path / "questions.jsonl")
    shutil.copytree(work / "llm-cache", tmp_path / "llm-cache")
    (tmp_path / "run.toml").write_text(config_text("http://127.0.0.1:9/v1", "replay"))
    run(tmp_path / "run.toml", tmp_path / "out", quiet=True)
    again = read_manifest(tmp_path / "out" / "synth-arenas") or {}
    replay = again["metrics"]["qa-llm"]
    assert replay["llm.total.cache_hits"] == replay["llm.total.calls"] > 0
    ids = {a.id for a in RecordStore(tmp_path / "out" / "synth-arenas", Arena).iter_records()}
    assert ids == {a.id for a in arenas}


THIRD_PARTY_SCORER = '''
"""A rule-based quality scorer from a third party: only astra_core is imported."""
from astra_core import hookimpl
from astra_core.arena_synthesis import QUALITY_SCORES


class NoWeather:
    step = "quality_scorer"

    def score(self, instance, llm):
        bad = "weather" in instance.question.lower()
        return dict.fromkeys(QUALITY_SCORES, 0.0 if bad else 1.0)


@hookimpl
def astra_register_arena_steps(registry):
    registry.add("no-weather", lambda options, builder: NoWeather())
'''


def test_a_third_party_step_replaces_the_quality_scorer_alone(tmp_path):
    (tmp_path / "no_weather.py").write_text(THIRD_PARTY_SCORER)
    write_questions(tmp_path / "questions.jsonl")
    extra = '[plugins]\nfiles = ["no_weather.py"]\n'
    with LoopbackServer(handler(AnswerBook(SPECS))) as server:
        text = config_text(server.base_url, extra=extra).replace(
            "keep_top = 1.0",
            'keep_top = 1.0\nquality_scorer = "no-weather"\nquality_threshold = 0.5',
        )
        (tmp_path / "run.toml").write_text(text)
        run(tmp_path / "run.toml", tmp_path / "out", quiet=True)
        requests = list(server.requests)
    prompts = [r.body["messages"][1]["content"].splitlines()[0] for r in requests]
    assert "# Task: judge the quality of a decomposition" not in prompts
    out = tmp_path / "out" / "synth-arenas"
    manifest = read_manifest(out) or {}
    weather = [s for s in SPECS if "weather" in s["question"].lower()]
    assert manifest["dropped"]["quality-below-cut"] == len(weather)
    kept = list(RecordStore(out, Arena).iter_records())
    assert kept and all("weather" not in a.question.lower() for a in kept)


@pytest.mark.slow
def test_the_example_runs_offline_from_its_shipped_cache(tmp_path):
    """examples/arenas-from-questions.toml: no endpoint, every answer from the recorded cache
    (cache_mode = "replay": a miss would be an error), at least 50 arenas of all four
    topologies, their gold calls verified in bubblewrap."""
    report = run(ROOT / "examples" / "arenas-from-questions.toml", tmp_path / "out", quiet=True)
    (summary,) = report.stages
    assert summary.status == "complete" and summary.dropped == {}
    arenas = list(RecordStore(tmp_path / "out" / "synth-arenas", Arena).iter_records())
    assert len(arenas) >= 50
    assert {a.topology for a in arenas} == set(TOPOLOGIES)
    metrics = summary.metrics["qa-llm"]
    assert metrics["llm.total.cache_hits"] == metrics["llm.total.calls"]
    assert all(llm_written(a) and validate_structure(a) == [] for a in arenas)


SEED_DATA = Path("/work/shared/data/astra-knowledge/en")


@pytest.mark.skipif(not SEED_DATA.is_dir(), reason="the authors' seed data is not on this machine")
def test_the_sources_read_the_authors_seed_data_where_it_lies(tmp_path):
    """qa-file over the authors' 609 questions (with domains, no answers) and knowledge-corpus
    over their domains.jsonl with context.jsonl beside it (read in place, never copied)."""
    from astra_core.context import StageContext

    builder = ComponentBuilder(load_plugins().registry, seed=0)
    ctx = StageContext("synth-arenas", run_dir=tmp_path, builder=builder, quiet=True)
    source = builder.build(
        "arena_step", ComponentSpec("qa-file", {"questions": str(SEED_DATA / "questions.jsonl")})
    )
    items = list(source.load(ctx))
    assert len(items) == 609 and all(i.question and i.domain and not i.answer for i in items)
    corpus = builder.build(
        "arena_step",
        ComponentSpec(
            "knowledge-corpus", {"domains": str(SEED_DATA / "domains.jsonl"), "per_domain": 3}
        ),
    )
    written = list(corpus.load(ctx))
    domains = {json.loads(line)["domain"] for line in (SEED_DATA / "domains.jsonl").open()}
    assert len(written) == 3 * len(domains) and all(not i.question for i in written)
    assert sorted({(i.min_hops, i.max_hops) for i in written}) == [(3, 3), (4, 4), (5, 5)]
    # the authors' domains come with empty corpora (the LLM synthesizes the data); their
    # context.jsonl, given as the domain list, makes one item per context row
    rows = builder.build(
        "arena_step",
        ComponentSpec(
            "knowledge-corpus", {"domains": str(SEED_DATA / "context.jsonl"), "max_items": 12}
        ),
    )
    grounded = list(rows.load(ctx))
    assert len(grounded) == 12 and all(i.context and i.domain for i in grounded)
    builder.close()


def test_an_answer_cut_at_the_token_limit_is_named_to_the_llm_and_in_the_drop():
    """A small model's JSON cut off by ``max_tokens`` (finish_reason "length", as a server sends
    it): the retry tells the LLM why, and the rejection says so."""
    from astra_llm.openai_http import OpenAICompatibleBackend
    from astra_llm.options import OpenAICompatibleOptions

    from astra_core.arena_synthesis import QAItem
    from astra_core.errors import StepRejected

    cut = '{"scenario_type": "Single-Hop", "main_question": "What is the popul'
    body = chat_completion(cut, finish_reason="length", completion_tokens=16)
    with LoopbackServer(lambda _: Reply(body)) as server:
        options = OpenAICompatibleOptions(
            model="small", base_url=server.base_url, api_key_env=None, max_retries=0
        )
        decomposer = ComponentBuilder(load_plugins().registry).build("arena_step", "llm-decomposer")
        with OpenAICompatibleBackend(options) as llm, pytest.raises(StepRejected) as caught:
            decomposer.decompose(QAItem(question="What is the population of Lyon?"), llm)
        retry = server.requests[1].body["messages"][-1]["content"]
    assert caught.value.reason == "decompose-malformed"
    assert "cut off at the token limit" in caught.value.detail
    assert "cut off at the token limit" in retry


@pytest.mark.slow
def test_train_sft_train_rl_and_eval_take_the_example_arenas_unchanged(tmp_path):
    """The example's arenas go through the training stages as any arena does: SFT replays the
    training arenas' LLM-written tools for demonstrations, RL plays them, eval scores the held-out
    ones, every tool loading in bubblewrap."""
    from astra_core.config import parse_config

    out = tmp_path / "out"
    (synth,) = run(ROOT / "examples" / "arenas-from-questions.toml", out, quiet=True).stages
    assert synth.status == "complete"
    arenas = {a.id: a for a in RecordStore(out / "synth-arenas", Arena).iter_records()}
    rollout = {"max_new_tokens": 16, "max_turns": 2, "max_length": 4096}
    tiny = {"vocab_size": 600, "hidden_size": 32, "num_layers": 1, "intermediate_size": 64}
    data = {
        "run": {"seed": 0},
        "train-sft": {
            "trainer": {
                "name": "sft",
                "model": "tiny",
                "tiny": tiny,
                "trajectories": "",
                "arena_demos": "synth-arenas",
                "max_length": 4096,
                "batch_size": 4,
                "max_steps": 2,
            }
        },
        "train-rl": {
            "trainer": {
                "name": "rl",
                "model": "train-sft",
                "steps": 2,
                "groups_per_step": 2,
                "group_size": 2,
                "max_fill_rounds": 1,
                "checkpoint_every": 0,
                "rollout": rollout,
            }
        },
        "eval": {
            "evaluator": {
                "name": "arena-eval",
                "models": ["train-rl"],
                "batch_size": 16,
                "rollout": rollout,
            }
        },
    }
    report = run(parse_config(data), out, quiet=True)
    by_stage = {s.stage: s for s in report.stages}
    assert all(by_stage[n].status == "complete" for n in ("train-sft", "train-rl", "eval"))
    sft = by_stage["train-sft"].metrics
    training = [a for a in arenas.values() if not a.held_out]
    assert sft["data_arena_demonstrations"] == len(training)  # every one replayed its gold calls
    steps = (out / "train-rl" / "metrics.jsonl").read_text(encoding="utf-8").splitlines()
    assert [json.loads(s)["step"] for s in steps] == [1, 2]
    (episodes,) = (out / "eval").glob("episodes-*.jsonl")
    evaluated = [json.loads(line) for line in episodes.read_text(encoding="utf-8").splitlines()]
    assert sorted(e["arena_id"] for e in evaluated) == sorted(
        i for i, a in arenas.items() if a.held_out
    )
