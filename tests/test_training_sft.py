"""The ``sft`` trainer: learning, assistant-only loss, exact resume, gradient accumulation,
packing and shared-prefix equivalence, trajectory input and the run config."""

from __future__ import annotations

import itertools
import json
import math
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
import torch
from astra_training.assistant_mask import tokenize_conversation
from astra_training.batches import collate, make_rows
from astra_training.chat_template import CHAT_TEMPLATE
from astra_training.conversations import normalize_messages
from astra_training.forward_pass import ForwardArgs
from astra_training.models import load_model_and_tokenizer
from astra_training.sft_loss import assistant_nll, common_prefix_length
from astra_training.tiny_model import build_tiny_model, render_conversations
from conftest import PLUGIN_FILES
from safetensors.torch import load_file
from test_training_conversations import make_conversations, write_conversations
from transformers import AutoModelForCausalLM, AutoTokenizer

from astra_core.context import StageContext
from astra_core.errors import AstraError, ConfigError
from astra_core.options import ComponentSpec
from astra_core.plugins import load_plugins
from astra_core.records import Task, Trajectory
from astra_core.registry import ComponentBuilder
from astra_core.store import RecordStore

SMALL = {"vocab_size": 512, "hidden_size": 64, "num_layers": 2, "intermediate_size": 128}


class Recorder:
    """A tracker that keeps what it is sent."""

    def __init__(self) -> None:
        self.steps: list[tuple[int, dict[str, float]]] = []

    def log(self, metrics: Mapping[str, float], step: int) -> None:
        self.steps.append((step, dict(metrics)))

    def close(self) -> None:
        pass


@pytest.fixture(scope="module")
def registry() -> Any:
    return load_plugins().registry


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_conversations(tmp_path_factory.mktemp("data") / "train.jsonl", 64, seed=0)


@pytest.fixture(scope="module")
def base_model(tmp_path_factory: pytest.TempPathFactory, data: Path) -> Path:
    from astra_training.conversations import read_jsonl
    from astra_training.sft_options import TinyModelOptions

    texts = render_conversations(read_jsonl(data))
    return build_tiny_model(
        texts, tmp_path_factory.mktemp("model") / "base", TinyModelOptions(**SMALL), seed=0
    )


def run_sft(
    registry: Any, run_dir: Path, trackers: tuple[Any, ...] = (), seed: int = 0, **options: Any
) -> tuple[dict[str, Any], Any]:
    builder = ComponentBuilder(registry, seed=seed, workdir=run_dir)
    trainer = builder.build("trainer", ComponentSpec("sft", options))
    ctx = StageContext("train-sft", run_dir=run_dir, builder=builder, quiet=True, trackers=trackers)
    return trainer.run(ctx), trainer


def weights(path: Path) -> dict[str, torch.Tensor]:
    return load_file(str(path / "model.safetensors"))


def mean_loss(model: Any, tokenizer: Any, rows: list[dict[str, Any]]) -> float:
    total = count = 0.0
    with torch.no_grad():
        for row in rows:
            msgs = normalize_messages(row["messages"], "eval")
            tc = tokenize_conversation(tokenizer, msgs, row["tools"])
            batch = collate([(0,)], [tc], tokenizer.pad_token_id, packed=False)
            total += float(assistant_nll(model, batch))
            count += batch.targets[:, 1:].sum().item()
    return total / count


def test_sft_learns_and_saves_the_model(registry: Any, data: Path, tmp_path: Path) -> None:
    recorder = Recorder()
    steps = 30
    summary, _ = run_sft(
        registry,
        tmp_path,
        (recorder,),
        model="tiny",
        tiny=SMALL,
        trajectories="",
        data_files=[str(data)],
        batch_size=8,
        max_steps=steps,
        lr=3e-3,
        warmup_ratio=0.1,
    )
    out = tmp_path / "train-sft"
    losses = [m["loss"] for _, m in recorder.steps]
    assert [s for s, _ in recorder.steps] == list(range(1, steps + 1))
    assert sum(losses[-5:]) / 5 < 0.6 * losses[0], losses
    for _, m in recorder.steps:
        assert {"loss", "lr", "grad_norm", "tokens", "tokens_per_s", "target_tokens"} <= set(m)
        assert 0 < m["target_tokens"] < m["tokens"]  # the loss counts assistant tokens only
    # cosine with warmup: rises for 3 steps, peaks at lr, decays towards 0
    lrs = [m["lr"] for _, m in recorder.steps]
    assert lrs[0] < lrs[1] < lrs[2] < lrs[3] == pytest.approx(3e-3)
    assert all(a >= b for a, b in itertools.pairwise(lrs[3:])) and lrs[-1] < 1e-4
    assert summary["loss_first"] == losses[0] and summary["loss_last"] == losses[-1]
    assert summary["steps"] == steps and summary["conversations"] == 64
    # the next stage loads the trained model like any other, and it beats the untrained one
    held_out = make_conversations(16, seed=99)
    trained, tok = load_model_and_tokenizer(str(out / "model"))
    base, _ = load_model_and_tokenizer(str(out / "base"))
    assert mean_loss(trained, tok, held_out) < 0.7 * mean_loss(base, tok, held_out)
    lines = (out / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(x)["step"] for x in lines] == list(range(1, steps + 1))
    # running the finished stage again trains nothing and reports the same
    again = Recorder()
    assert (
        run_sft(
            registry,
            tmp_path,
            (again,),
            model="tiny",
            tiny=SMALL,
            trajectories="",
            data_files=[str(data)],
            batch_size=8,
            max_steps=steps,
            lr=3e-3,
            warmup_ratio=0.1,
        )[0]
        == summary
    )
    assert again.steps == []


@pytest.mark.parametrize(
    "precision",
    [{"mixed_precision": "bf16"}, {"dtype": "bfloat16"}],
    ids=["bf16-autocast", "bfloat16-weights"],
)
def test_trains_in_bfloat16(
    registry: Any, data: Path, base_model: Path, tmp_path: Path, precision: dict[str, str]
) -> None:
    """The GPU settings, on the CPU: autocast through accelerate, or the weights themselves."""
    recorder = Recorder()
    summary, _ = run_sft(
        registry,
        tmp_path,
        (recorder,),
        model=str(base_model),
        trajectories="",
        data_files=[str(data)],
        batch_size=8,
        max_steps=12,
        lr=3e-3,
        **precision,
    )
    losses = [m["loss"] for _, m in recorder.steps]
    assert all(map(math.isfinite, losses)) and sum(losses[-3:]) / 3 < 0.9 * losses[0], losses
    model, _ = load_model_and_tokenizer(str(tmp_path / "train-sft" / "model"), dtype="auto")
    want = torch.bfloat16 if "dtype" in precision else torch.float32
    assert next(model.parameters()).dtype == want
    assert summary["steps"] == 12


def test_each_stage_sets_its_own_mixed_precision() -> None:
    """Accelerate's process-wide state used to keep the first setting (and refuse another)."""
    from astra_training.accelerate_setup import make_accelerator

    assert make_accelerator("bf16").mixed_precision == "bf16"
    assert make_accelerator("no").mixed_precision == "no"


SFT_CONFIG = """
[run]
seed = 0
[train-sft.trainer]
name = "sft"
model = "{model}"
trajectories = ""
data_files = ["{data}"]
batch_size = 4
grad_accum = 2
max_steps = 8
lr = 3e-3
checkpoint_every = 2
keep_full_state = 1
group_by_length = true  # the grouped order must resume exactly too
"""
# what differs between two runs of the same steps: wall-clock times
TIMINGS = ("tokens_per_s", "step_s")


def _sft_metrics(out: Path) -> list[dict[str, Any]]:
    rows = (out / "train-sft" / "metrics.jsonl").read_text().splitlines()
    return [{k: v for k, v in json.loads(x).items() if k not in TIMINGS} for x in rows]


@pytest.mark.slow
@pytest.mark.parametrize("lora", [False, True], ids=["full", "lora"])
def test_sigkill_mid_run_then_resume_is_exact(
    data: Path, base_model: Path, tmp_path: Path, lora: bool
) -> None:
    """``astra run`` killed with SIGKILL during step 6 (checkpoints at 2 and 4, step 5 already
    logged) resumes from step 4 and ends with the losses and weights of an unbroken run."""
    cfg = tmp_path / "sft.toml"
    config = SFT_CONFIG.format(model=base_model, data=data)
    if lora:
        config += '[train-sft.trainer.lora]\nr = 4\ntarget_modules = ["q_proj", "v_proj"]\n'
    cfg.write_text(config)
    cmd = [sys.executable, "-m", "astra_core.cli", "-q", "run", str(cfg), "--out"]
    whole = tmp_path / "whole"
    done = subprocess.run([*cmd, str(whole)], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]

    broken, flag = tmp_path / "broken", tmp_path / "hanging"
    env = {**os.environ, "ASTRA_TEST_HANG_AT_STEP": "6", "ASTRA_TEST_HANG_FLAG": str(flag)}
    env.pop("ASTRA_PLUGINS", None)
    proc = subprocess.Popen(
        [*cmd, str(broken), "--plugin", str(PLUGIN_FILES / "hang_at_step.py")],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 300
        while not flag.exists() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert flag.exists(), "the run never reached step 6"
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    assert proc.returncode == -signal.SIGKILL
    out = broken / "train-sft"
    ckpts = out / "checkpoints"
    assert sorted(p.name for p in ckpts.iterdir()) == ["step-000002", "step-000004"]
    assert not (ckpts / "step-000002" / "state").exists()  # keep_full_state = 1
    assert (ckpts / "step-000004" / "state").is_dir()
    assert not (out / "model").exists()
    assert [r["step"] for r in _sft_metrics(broken)] == [1, 2, 3, 4, 5]  # 5: after the checkpoint

    resumed = subprocess.run([*cmd, str(broken)], capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    summary = json.loads((out / "manifest.json").read_text())["metrics"]
    assert summary["resumed_from_step"] == 4
    assert (summary["trainable_parameters"] < summary["parameters"] / 5) is lora
    # each step logged once (the killed attempt's step 5 was cut off), as the unbroken run did
    want, got = _sft_metrics(whole), _sft_metrics(broken)
    assert [r["step"] for r in got] == list(range(1, 9))
    for a, b in zip(want, got, strict=True):
        assert b.keys() == a.keys()
        for key in a:
            assert b[key] == pytest.approx(a[key], rel=1e-6, abs=0), (a["step"], key)
    a, b = weights(whole / "train-sft" / "model"), weights(out / "model")
    assert a.keys() == b.keys()
    for name in a:
        torch.testing.assert_close(b[name], a[name], rtol=0, atol=1e-6)
    # the saved model is a plain one (adapters merged); with LoRA only the adapted matrices moved
    start = weights(base_model)
    assert a.keys() == start.keys()
    moved = {k for k in a if not torch.equal(a[k], start[k])}
    if lora:
        assert moved and all(k.endswith(("q_proj.weight", "v_proj.weight")) for k in moved)
    else:
        assert any("mlp" in k for k in moved)


def test_group_by_length_keeps_every_row_once_per_epoch_and_cuts_padding() -> None:
    from astra_training.batches import GROUP_WINDOW, RowStream

    gen = torch.Generator().manual_seed(0)
    lengths = torch.randint(20, 600, (300,), generator=gen).tolist()
    batch = 8
    plain = RowStream(len(lengths), seed=5)
    grouped = RowStream(len(lengths), seed=5, lengths=lengths, batch=batch)
    for epoch in range(2):
        assert sorted(grouped.order(epoch)) == list(range(len(lengths)))
    assert grouped.order(0) != grouped.order(1)
    again = RowStream(len(lengths), seed=5, lengths=lengths, batch=batch)
    assert again.take(290, 40) == grouped.take(290, 40)  # drawn from (seed, epoch) alone

    def padded(stream: RowStream) -> int:
        order = stream.order(0)
        steps = [order[i : i + batch] for i in range(0, len(order), batch)]
        return sum(len(s) * max(lengths[i] for i in s) for s in steps)

    assert padded(grouped) < 0.75 * padded(plain)
    # the long steps are not all at the start of a window
    firsts = [
        max(lengths[i] for i in grouped.order(0)[k * batch : (k + 1) * batch])
        for k in range(GROUP_WINDOW)
    ]
    assert firsts != sorted(firsts, reverse=True)


def test_gradient_accumulation_matches_a_bigger_batch(
    registry: Any, data: Path, base_model: Path, tmp_path: Path
) -> None:
    common = dict(model=str(base_model), trajectories="", data_files=[str(data)], max_steps=2)
    runs = {}
    for batch, accum in ((8, 1), (4, 2), (1, 8)):
        run_sft(registry, tmp_path / f"{batch}", batch_size=batch, grad_accum=accum, **common)
        runs[batch] = weights(tmp_path / f"{batch}" / "train-sft" / "model")
    before = weights(base_model)
    name = "model.layers.0.mlp.up_proj.weight"
    assert not torch.equal(runs[8][name], before[name])
    for other in (4, 1):
        for key in runs[8]:
            torch.testing.assert_close(runs[other][key], runs[8][key], rtol=0, atol=2e-6)


def test_packing_and_shared_prefix_give_the_plain_loss(base_model: Path) -> None:
    model, tok = load_model_and_tokenizer(str(base_model))
    rows = make_conversations(12, seed=7)
    examples = [
        tokenize_conversation(tok, normalize_messages(r["messages"], "x"), r["tools"]) for r in rows
    ]
    plain_batch = collate(make_rows(examples, 2048, packing=False), examples, 0, packed=False)
    packed_rows = make_rows(examples, 2048, packing=True)
    assert len(packed_rows) < len(examples)
    packed_batch = collate(packed_rows, examples, 0, packed=True)
    assert common_prefix_length(plain_batch) > 100  # system prompt + tool schemas

    def loss_and_grads(batch: Any, **kwargs: Any) -> tuple[float, torch.Tensor]:
        model.zero_grad()
        loss = assistant_nll(model, batch, **kwargs)
        loss.backward()
        return float(loss.detach()), torch.cat([p.grad.flatten() for p in model.parameters()])

    reference = loss_and_grads(plain_batch, args=ForwardArgs())  # full logits, one pass
    for batch, kwargs in (
        (plain_batch, {}),
        (plain_batch, {"shared_prefix": True}),
        (packed_batch, {}),
    ):
        loss, grads = loss_and_grads(batch, **kwargs)
        assert loss == pytest.approx(reference[0], rel=1e-5)
        # float32 sums in another order differ by a few 1e-6 in single elements (4e-6 seen on
        # one CPU, with elements up to ~200); a wrong mask or position is far above both bounds
        ref = reference[1]
        assert float((grads - ref).norm() / ref.norm()) < 1e-5
        torch.testing.assert_close(grads, ref, rtol=1e-4, atol=1e-7 * float(ref.abs().max()))


def test_trains_on_ok_trajectories_of_the_run(
    registry: Any, base_model: Path, tmp_path: Path
) -> None:
    rows = make_conversations(10, seed=3)
    with RecordStore(tmp_path / "synth-trajectories", Trajectory).open() as store:
        for i, row in enumerate(rows):
            store.write(
                Trajectory(
                    messages=tuple(row["messages"]),
                    tools=tuple(row["tools"]),
                    task=Task(query=f"q{i}", server_id="s"),
                    status="failed" if i == 0 else "ok",
                )
            )
    summary, _ = run_sft(registry, tmp_path, model=str(base_model), batch_size=4, max_steps=2)
    assert summary["data_trajectories"] == 9 and summary["data_trajectories_skipped"] == 1
    assert (tmp_path / "train-sft" / "model" / "config.json").exists()


def test_a_template_without_generation_markers_trains(
    registry: Any, data: Path, base_model: Path, tmp_path: Path
) -> None:
    local = tmp_path / "local-model"
    shutil.copytree(base_model, local)
    tok = AutoTokenizer.from_pretrained(local)
    tok.chat_template = re.sub(r"\{%-? ?(end)?generation ?-?%\}", "", CHAT_TEMPLATE)
    tok.save_pretrained(local)
    summary, _ = run_sft(
        registry,
        tmp_path,
        model=str(local),
        trajectories="",
        data_files=[str(data)],
        batch_size=4,
        max_steps=3,
        lr=3e-3,
    )
    assert summary["loss_last"] < summary["loss_first"]
    AutoModelForCausalLM.from_pretrained(tmp_path / "train-sft" / "model")


def test_errors_name_what_is_missing(
    registry: Any, data: Path, base_model: Path, tmp_path: Path
) -> None:
    with pytest.raises(AstraError, match="no conversations to train on"):
        run_sft(registry, tmp_path / "a", model=str(base_model))
    with pytest.raises(AstraError, match="within max_length=32"):
        run_sft(
            registry,
            tmp_path / "b",
            model=str(base_model),
            trajectories="",
            data_files=[str(data)],
            max_length=32,
            overlong="drop",
        )


def test_retried_demonstrations_need_as_many_renamed_copies(registry: Any) -> None:
    builder = ComponentBuilder(registry, seed=0)
    spec = {"arena_demos": "synth-arenas", "arena_demo_renamings": 2, "arena_demo_retries": 3}
    with pytest.raises(ConfigError, match=r"arena_demo_retries \(3\) must be at most"):
        builder.build("trainer", ComponentSpec("sft", spec))
    trainer = builder.build("trainer", ComponentSpec("sft", {**spec, "arena_demo_retries": 2}))
    assert trainer.options.arena_demo_retries == 2


def test_runs_from_a_toml_config(data: Path, tmp_path: Path) -> None:
    import astra_core

    shutil.copy(data, tmp_path / "train.jsonl")
    config = tmp_path / "run.toml"
    config.write_text(
        """
[run]
seed = 1
stages = ["train-sft"]

[train-sft.trainer]
name = "sft"
model = "tiny"
trajectories = ""
data_files = ["train.jsonl"]
max_steps = 3
batch_size = 4
tiny = { vocab_size = 512, hidden_size = 64, num_layers = 2, intermediate_size = 128 }
""",
        encoding="utf-8",
    )
    report = astra_core.run(config, tmp_path / "out", quiet=True)
    (stage,) = report.stages
    assert stage.status == "complete" and stage.metrics["steps"] == 3
    model = AutoModelForCausalLM.from_pretrained(tmp_path / "out" / "train-sft" / "model")
    assert model.config.hidden_size == 64


def test_tokenizing_shows_a_bar_over_every_conversation(data: Path, base_model: Path) -> None:
    """The quickstart tokenizes 15,040 conversations (~30 s): the stage's progress bar says so."""
    from astra_training.conversations import read_jsonl
    from astra_training.sft import SFTTrainer
    from astra_training.sft_options import SFTOptions

    conversations = list(read_jsonl(data))
    _, tokenizer = load_model_and_tokenizer(str(base_model))
    bars: list[dict[str, Any]] = []
    seen: list[Any] = []

    def progress(items: Any, **bar: Any) -> Any:
        bars.append(bar)
        for item in items:
            seen.append(item)
            yield item

    trainer = SFTTrainer(SFTOptions(max_length=4096), builder=None)  # type: ignore[arg-type]
    with_bar, _ = trainer.tokenize(tokenizer, conversations, progress)
    without, _ = trainer.tokenize(tokenizer, conversations)
    assert bars == [{"total": len(conversations), "desc": "tokenize", "unit": "conv"}]
    assert seen == conversations and with_bar == without and len(without) == len(conversations)
