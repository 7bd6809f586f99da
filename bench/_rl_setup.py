"""Shared setup of the RL benchmarks (``grpo_vs_trl.py``, ``rollout_vs_generate.py``).

It builds, once per cache directory, what both benchmarks run on:

* arenas of the ``offline-world`` generator, their tool code verified in the sandbox;
* their tool schemas rewritten as ``transformers.utils.get_json_schema`` renders Python
  functions (TRL exposes tools as functions, so both sides then see token-identical prompts);
* a ~1 M-parameter Qwen3 model (``TinyModelOptions()``) with a BPE tokenizer trained on the
  arenas' gold demonstrations, fine-tuned until it has memorised them (150 full-batch steps,
  about a minute on 2 cores): an untrained model never calls a tool, which would leave the
  multi-turn tool round-trips unmeasured. Decoded with top-k 1 it replays each arena's gold
  episode (1-3 rounds of calls with real sandbox outputs, then an answer) nearly every time.

Not a benchmark itself (the leading underscore); the scripts import it from ``bench/``.
"""

from __future__ import annotations

import argparse
import inspect
import json
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import attrs

from astra_core.records import Arena

SANDBOX = "bubblewrap" if shutil.which("bwrap") else "subprocess"
SYSTEM_PROMPT = (
    "You are a helpful assistant that answers questions by calling tools. Call the tools you "
    "need, one step at a time, then give the final answer."
)
_TYPES: dict[str, type] = {"string": str, "integer": int, "number": float, "boolean": bool}


def add_setup_arguments(parser: argparse.ArgumentParser) -> None:
    """The options both RL benchmarks share: the arenas, the warm-started policy, the rollouts."""
    parser.add_argument("--max-new-tokens", type=int, default=64, help="cap per turn")
    parser.add_argument("--max-turns", type=int, default=4)
    parser.add_argument("--temperature", type=float, default=1.0)
    parser.add_argument("--top-k", type=int, default=1, help="0: sample the full distribution")
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch threads, both sides (1: a 1 M model gains little from 2, and with any "
        "other load on 2 cores OpenMP barriers made 2 threads >10x slower)",
    )
    parser.add_argument("--arenas", type=int, default=4, help="candidate arenas to generate")
    parser.add_argument("--sft-steps", type=int, default=150, help="warm start of the policy")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--cache", default=os.path.join(tempfile.gettempdir(), "astra-bench"))


def tool_function(tool: dict[str, Any], call: Callable[[Any, str, dict[str, Any]], str]) -> Any:
    """A method ``(self, **arguments) -> str`` that TRL can expose as the tool ``tool``; it
    forwards to ``call(self, name, arguments)``. Signature and docstring come from the schema,
    so ``get_json_schema`` gives the schema back (minus ``additionalProperties``)."""
    fn = tool["function"]
    params = fn.get("parameters") or {}
    props: dict[str, Any] = params.get("properties") or {}
    required = set(params.get("required") or ())
    name = str(fn["name"])

    def method(self: Any, **arguments: Any) -> str:
        return call(self, name, arguments)

    annotations = {k: _TYPES.get(str(v.get("type")), str) for k, v in props.items()}
    parameters = [inspect.Parameter("self", inspect.Parameter.POSITIONAL_OR_KEYWORD)] + [
        inspect.Parameter(
            k,
            inspect.Parameter.KEYWORD_ONLY,
            annotation=annotations[k],
            **({} if k in required else {"default": None}),
        )
        for k in props
    ]
    method.__name__ = method.__qualname__ = name
    method.__signature__ = inspect.Signature(parameters)  # type: ignore[attr-defined]
    method.__annotations__ = dict(annotations)
    args = "".join(
        f"\n    {k}: {' '.join(str(v.get('description') or k).split())}" for k, v in props.items()
    )
    method.__doc__ = str(fn.get("description") or name) + (f"\n\nArgs:{args}" if args else "")
    return method


def functions_shaped(arena: Arena) -> Arena:
    """``arena`` with its tools as TRL renders them: ``get_json_schema`` of the tool functions,
    sorted by name (TRL lists an environment's methods alphabetically)."""
    from transformers.utils import get_json_schema

    tools = sorted(arena.tools, key=lambda t: str(t["function"]["name"]))
    shaped = tuple(get_json_schema(tool_function(t, lambda *_: "")) for t in tools)
    return attrs.evolve(arena, tools=shaped)


@attrs.frozen
class Setup:
    arenas: tuple[Arena, ...]
    model_dir: Path
    sandbox: str
    seconds: float

    def summary(self) -> dict[str, Any]:
        return {
            "arenas": len(self.arenas),
            "topologies": sorted({a.topology for a in self.arenas}),
            "sandbox": self.sandbox,
            "model_dir": str(self.model_dir),
            "setup_s": round(self.seconds, 1),
        }


def builder() -> Any:
    from astra_core.config import parse_config
    from astra_core.pipeline import prepare
    from astra_core.registry import ComponentBuilder

    plugins = prepare(parse_config({}))[1]
    return ComponentBuilder(plugins.registry, hook=plugins.hook)


def prepare_setup(
    cache: Path, *, arena_count: int = 4, sft_steps: int = 150, seed: int = 3, log: bool = True
) -> Setup:
    """Arenas and a tool-calling tiny policy in ``cache`` (built on the first call, reused after:
    the key is the arguments)."""
    t0 = time.perf_counter()
    key = f"arenas{arena_count}-sft{sft_steps}-seed{seed}-{SANDBOX}"
    root = cache / key
    arena_file = root / "arenas.jsonl"
    model_dir = root / "policy"
    if not (arena_file.exists() and (model_dir / "config.json").exists()):
        shutil.rmtree(root, ignore_errors=True)
        root.mkdir(parents=True)
        arenas = [functions_shaped(a) for a in _generate_arenas(root / "run", arena_count, seed)]
        _say(log, f"{len(arenas)} arenas in {time.perf_counter() - t0:.1f} s")
        _build_policy(arenas, model_dir, sft_steps, seed, log)
        arena_file.write_text("".join(json.dumps(a.to_dict()) + "\n" for a in arenas))
    arenas = [Arena.from_dict(json.loads(line)) for line in arena_file.read_text().splitlines()]
    return Setup(tuple(arenas), model_dir, SANDBOX, time.perf_counter() - t0)


def _say(log: bool, text: str) -> None:
    if log:
        print(f"[setup] {text}", flush=True)


def _generate_arenas(out: Path, count: int, seed: int) -> list[Arena]:
    from astra_core.config import parse_config
    from astra_core.pipeline import prepare, run_stage
    from astra_core.store import RecordStore

    config = parse_config(
        {
            "run": {"seed": seed},
            "synth-arenas": {
                "generator": {
                    "name": "offline-world",
                    "count": count,
                    "sandbox": SANDBOX,
                    "distractors_per_band": 0,
                }
            },
        }
    )
    config, plugins = prepare(config)
    run_stage("synth-arenas", config, plugins, out, quiet=True)
    return list(RecordStore(out / "synth-arenas", Arena).iter_records())


def demonstrations(arenas: Sequence[Arena], sandbox: Any) -> list[dict[str, Any]]:
    """Gold multi-turn conversations (verified calls replayed in the sandbox)."""
    from astra_arenas.demonstrations import arena_demonstration
    from astra_arenas.runtime import ToolCodeRuntime

    out = []
    for arena in arenas:
        with ToolCodeRuntime(arena, sandbox) as runtime:
            demo = arena_demonstration(arena, runtime, SYSTEM_PROMPT)
        out.append({"messages": list(demo.messages), "tools": list(arena.tools)})
    return out


def _build_policy(
    arenas: Sequence[Arena], model_dir: Path, sft_steps: int, seed: int, log: bool
) -> None:
    import torch
    from astra_training.sft_options import TinyModelOptions
    from astra_training.tiny_model import (
        build_tiny_model,
        count_parameters,
        render_conversations,
    )
    from transformers import AutoModelForCausalLM, AutoTokenizer

    t0 = time.perf_counter()
    demos = demonstrations(arenas, builder().build("sandbox", SANDBOX))
    base = model_dir.with_name("base")
    # the tokenizer learns the pieces of exactly these rendered conversations
    texts = list(render_conversations(SimpleNamespace(**d) for d in demos))
    build_tiny_model(texts, base, TinyModelOptions(), seed=seed)
    tokenizer = AutoTokenizer.from_pretrained(base, padding_side="left")
    model = AutoModelForCausalLM.from_pretrained(base, dtype=torch.float32)
    _say(log, f"tiny model: {count_parameters(model) / 1e6:.2f} M parameters")
    examples = []
    for d in demos:
        enc = tokenizer.apply_chat_template(
            d["messages"],
            tools=d["tools"],
            tokenize=True,
            return_dict=True,
            return_assistant_tokens_mask=True,
        )
        ids = torch.tensor([enc["input_ids"]])
        labels = torch.where(torch.tensor([enc["assistant_masks"]]) == 1, ids, -100)
        examples.append((ids, labels))
    targets = sum(int((labels[:, 1:] != -100).sum()) for _, labels in examples)
    torch.manual_seed(seed)
    optimizer = torch.optim.AdamW(model.parameters(), lr=6e-3)
    # a high lr (memorising is the goal) with a short warmup for the fresh model
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: min(1.0, (s + 1) / 10))
    model.train()
    loss = 0.0
    for _ in range(sft_steps):
        optimizer.zero_grad(set_to_none=True)
        loss = 0.0
        # one example per forward: no padding (the demos differ in length by 2x)
        for ids, labels in examples:
            logits = model(input_ids=ids).logits[:, :-1]
            part = (
                torch.nn.functional.cross_entropy(
                    logits.reshape(-1, logits.shape[-1]),
                    labels[:, 1:].reshape(-1),
                    ignore_index=-100,
                    reduction="sum",
                )
                / targets
            )
            part.backward()
            loss += float(part.detach())
        optimizer.step()
        scheduler.step()
    model.save_pretrained(model_dir)
    tokenizer.save_pretrained(model_dir)
    _say(log, f"{sft_steps} SFT steps (final loss {loss:.3f}) in {time.perf_counter() - t0:.1f} s")
