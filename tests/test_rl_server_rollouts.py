"""RL rollouts on an inference server: token ids and log-probs back, the sampler correction,
weight sync, LoRA adapters, and a server that dies mid-step.

vLLM and SGLang need GPUs and cannot run here, so ``ModelServer`` stands in for them: a real
HTTP server on loopback (a thread of this process) that speaks the subset of each server's API
the trainer uses (vLLM: ``/v1/completions`` with token-id prompts, ``logprobs`` and
``return_tokens_as_token_ids``, ``/collective_rpc`` ``reload_weights``, ``/v1/load_lora_adapter``;
SGLang: ``/generate`` with ``input_ids`` and ``return_logprob``, ``/update_weights_from_disk``,
``/load_lora_adapter``) and samples from a REAL transformers model (the tiny Qwen3 model built
here), returning the log-probs of the distribution it sampled from (vLLM's
``--logprobs-mode processed_logprobs``; SGLang's default).
"""

from __future__ import annotations

import copy
import json
import shutil
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import attrs
import pytest
import tomllib
import torch
from astra_training.accelerate_setup import make_accelerator
from astra_training.forward_pass import ForwardArgs, returned_cache
from astra_training.generation import Sampling
from astra_training.logprobs import completion_logprobs
from astra_training.models import load_model_and_tokenizer
from astra_training.rl_options import RLOptions, RolloutOptions
from astra_training.rl_trainer import RLTrainer, make_engine, pad_batch
from astra_training.sampler_correction import (
    sampler_logprob_matrix,
    truncated_importance_weights,
)
from astra_training.server_options import ServerOptions
from astra_training.server_rollout import RolloutServerError
from test_rl_training import make_rl_run

from astra_core import hookimpl
from astra_core.config import parse_config
from astra_core.errors import ConfigError
from astra_core.options import ComponentSpec
from astra_core.pipeline import prepare, run_stage
from astra_core.plugins import load_plugins
from astra_core.records import Arena, Reward
from astra_core.registry import ComponentBuilder, Registrar
from astra_core.store import RecordStore

SANDBOX = "bubblewrap" if shutil.which("bwrap") else "subprocess"


# -- the stand-in server ---------------------------------------------------------------------------


class ModelServer:
    """vLLM's or SGLang's API over a real transformers model, on loopback HTTP.

    ``posts`` lists every request that is not a generation, as (path, body); ``generations`` the
    bodies of generation requests. ``die_after_syncs = n``: the first generation request after
    the n-th weight update kills the server (listener closed, that connection and every later
    one cut without an answer), as a crashed server would.
    """

    def __init__(self, model_dir: Path, kind: str, *, port: int = 0, seed: int = 0) -> None:
        self.kind = kind
        self.model_dir = model_dir
        self.model = self._load(model_dir)
        self.adapters: dict[str, Any] = {}
        self.lock = threading.Lock()
        self.rng = torch.Generator().manual_seed(seed)
        self.posts: list[tuple[str, dict]] = []
        self.generations: list[dict] = []
        self.events: list[str] = []  # "gen:<adapter or ->" and "post:<path>", in order
        self.received = 0  # every POST, answered or not
        self.die_after_syncs: int | None = None
        self.dead = False
        self.port = port
        self._http: ThreadingHTTPServer | None = None

    @staticmethod
    def _load(path: Path) -> Any:
        return load_model_and_tokenizer(str(path))[0].eval()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}" + ("/v1" if self.kind == "vllm" else "")

    def start(self) -> ModelServer:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                server.received += 1
                if server.dead or server._should_die(self.path):
                    self.close_connection = True
                    return  # no answer: the client sees the connection cut
                status, answer = server.route(self.path, body)
                data = json.dumps(answer).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self._http = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._http.daemon_threads = True
        self.port = self._http.server_address[1]
        threading.Thread(target=self._http.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._http is not None:
            self._http.shutdown()
            self._http.server_close()
            self._http = None

    def _should_die(self, path: str) -> bool:
        syncs = sum(1 for p, _ in self.posts if "weights" in p or "lora" in p or "rpc" in p)
        if self.die_after_syncs is None or syncs < self.die_after_syncs:
            return False
        if path.endswith(("/completions", "/generate")):
            self.dead = True
            threading.Thread(target=self.stop, daemon=True).start()
            return True
        return False

    # -- the API ---------------------------------------------------------------------------------

    def route(self, path: str, body: dict) -> tuple[int, Any]:
        if path == "/v1/completions" and self.kind == "vllm":
            return self._vllm_completion(body)
        if path == "/generate" and self.kind == "sglang":
            return self._sglang_generate(body)
        with self.lock:
            self.posts.append((path, body))
            self.events.append(f"post:{path}")
            if path == "/collective_rpc" and self.kind == "vllm":
                if body.get("method") != "reload_weights":
                    return 400, {"detail": f"no method {body.get('method')}"}
                self.model = self._load(self.model_dir)  # vLLM reloads its own model path
                return 200, {"results": [None]}
            if path == "/update_weights_from_disk" and self.kind == "sglang":
                self.model = self._load(Path(body["model_path"]))
                return 200, {"success": True, "message": "Succeeded to update model weights."}
            lora = "/v1" if self.kind == "vllm" else ""
            if path == f"{lora}/load_lora_adapter":
                from peft import PeftModel

                if body["lora_name"] in self.adapters:
                    return 400, {"message": f"adapter {body['lora_name']} is already loaded"}
                adapted = PeftModel.from_pretrained(copy.deepcopy(self.model), body["lora_path"])
                self.adapters[body["lora_name"]] = adapted.merge_and_unload().eval()
                return 200, {"success": True}
            if path == f"{lora}/unload_lora_adapter":
                self.adapters.pop(body["lora_name"])
                return 200, {"success": True}
        return 404, {"detail": f"no route {path} on a {self.kind} server"}

    def _vllm_completion(self, body: dict) -> tuple[int, Any]:
        model = self.adapters.get(body["model"]) if body["model"] != "policy" else self.model
        if model is None:
            return 404, {"message": f"The model `{body['model']}` does not exist."}
        assert body["return_tokens_as_token_ids"] and body["logprobs"] is not None
        ids, lps = self.sample(model, body["prompt"], body["max_tokens"], body, body)
        self.generations.append(body)
        self.events.append(f"gen:{body['model'] if body['model'] != 'policy' else '-'}")
        logprobs = {"tokens": [f"token_id:{t}" for t in ids], "token_logprobs": lps}
        return 200, {"object": "text_completion", "choices": [{"index": 0, "logprobs": logprobs}]}

    def _sglang_generate(self, body: dict) -> tuple[int, Any]:
        model = self.adapters[body["lora_path"]] if body.get("lora_path") else self.model
        params = body["sampling_params"]
        assert body["return_logprob"]
        ids, lps = self.sample(model, body["input_ids"], params["max_new_tokens"], params, params)
        self.generations.append(body)
        self.events.append(f"gen:{body.get('lora_path') or '-'}")
        pairs = [[lp, t, None] for t, lp in zip(ids, lps, strict=True)]
        return 200, {"output_ids": ids, "meta_info": {"output_token_logprobs": pairs}}

    @torch.no_grad()
    def sample(
        self, model: Any, prompt: list[int], limit: int, params: dict, stops: dict
    ) -> tuple[list[int], list[float]]:
        """Decode with a key/value cache; temperature, then top-k, then top-p, as vLLM does;
        each token's log-prob under the distribution it was drawn from."""
        temperature, top_k, top_p = params["temperature"], params["top_k"], params["top_p"]
        stop_ids = set(stops.get("stop_token_ids") or ())
        with self.lock:
            out = model(input_ids=torch.tensor([prompt]), use_cache=True)
            ids: list[int] = []
            lps: list[float] = []
            for _ in range(limit):
                logits = out.logits[0, -1].float()
                if temperature > 0:
                    logits = logits / temperature
                    if top_k > 0:
                        kth = torch.topk(logits, top_k).values[-1]
                        logits = logits.masked_fill(logits < kth, -torch.inf)
                    if top_p < 1:
                        sorted_logits, order = torch.sort(logits, descending=True)
                        probs = torch.softmax(sorted_logits, -1)
                        drop = probs.cumsum(-1) - probs > top_p
                        logits[order[drop]] = -torch.inf
                logp = torch.log_softmax(logits, -1)
                if temperature > 0:
                    token = int(torch.multinomial(logp.exp(), 1, generator=self.rng))
                else:
                    token = int(logp.argmax())
                ids.append(token)
                lps.append(float(logp[token]))
                if token in stop_ids:
                    break
                cache = {ForwardArgs.of(model).cache: returned_cache(out)}
                out = model(input_ids=torch.tensor([[token]]), use_cache=True, **cache)
        return ids, lps

    def weights(self) -> dict[str, torch.Tensor]:
        return self.model.state_dict()


# -- fixtures --------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    """12 arenas from the offline world and an untrained tiny model saved as train-sft's output."""
    return make_rl_run(tmp_path_factory.mktemp("rl-server-run"), count=12)


def perturbed_copy(src: Path, dst: Path, scale: float) -> Path:
    """The model of ``src`` with gaussian noise on every weight: a sampler whose weights differ."""
    model, tokenizer = load_model_and_tokenizer(str(src))
    gen = torch.Generator().manual_seed(7)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn(p.shape, generator=gen) * scale * float(p.std().clamp_min(1e-3)))
    model.save_pretrained(dst)
    tokenizer.save_pretrained(dst)
    return dst


class CoinVerifier:
    """Rewards drawn at random (seeded): the untrained model never earns a real one, and an
    update needs rewards that differ within a group. These tests are about the server path."""

    def __init__(self) -> None:
        import random

        self.rng = random.Random(0)

    def score(self, arena: Arena, episode: object) -> Reward:
        return Reward(value=float(self.rng.random() < 0.5))


class CoinPlugin:
    @hookimpl
    def astra_register_verifiers(self, registry: Registrar) -> None:
        registry.add("coin", lambda options, builder: CoinVerifier())


RL_CONFIG = """
[run]
seed = 5
[train-rl.trainer]
name = "rl"
sandbox = "{sandbox}"
verifier = "coin"
steps = {steps}
groups_per_step = 2
group_size = 3
max_fill_rounds = 1
lr = 1e-2
temperature = 1.0
top_k = {top_k}
checkpoint_every = 1
[train-rl.trainer.rollout]
max_turns = 2
max_new_tokens = 16
generation_backend = "server"
[train-rl.trainer.rollout.server]
url = "{url}"
kind = "{kind}"
sync_every = {sync_every}
sync_dir = "{sync_dir}"
retries = 2
retry_backoff_s = 0.05
"""


def rl_run(run_dir: Path, out: Path, server: ModelServer, **fields: Any) -> Any:
    """A train-rl stage with the coin verifier against ``server`` (a fresh copy of the run)."""
    if not (out / "synth-arenas").exists():
        shutil.copytree(run_dir / "synth-arenas", out / "synth-arenas")
        shutil.copytree(run_dir / "train-sft", out / "train-sft")
    values = {"steps": 2, "sync_every": 1, "top_k": 0, "sync_dir": str(out / "sync"), **fields}
    data = tomllib.loads(
        RL_CONFIG.format(sandbox=SANDBOX, url=server.url, kind=server.kind, **values)
    )
    if fields.get("lora"):
        data["train-rl"]["trainer"]["lora"] = {"r": 4}
    plugins = load_plugins(objects=[("coin", CoinPlugin())])
    config, plugins = prepare(parse_config(data), plugins=plugins)
    return run_stage("train-rl", config, plugins, out, quiet=True)


def engine_on(run_dir: Path, server: ModelServer, **server_fields: Any) -> Any:
    plugins = prepare(parse_config({}))[1]
    builder = ComponentBuilder(plugins.registry, hook=plugins.hook)
    model, tokenizer = load_model_and_tokenizer(str(run_dir / "train-sft" / "model"))
    options = RolloutOptions(
        max_turns=2,
        max_new_tokens=16,
        generation_backend="server",
        server=ServerOptions(url=server.url, kind=server.kind, **server_fields),  # type: ignore[arg-type]
    )
    engine = make_engine(
        model,
        tokenizer,
        options,
        parser=builder.build("tool_call_parser", "hermes"),
        verifier=CoinVerifier(),
        sandbox=builder.build("sandbox", SANDBOX),
        hook=plugins.hook,
    )
    return engine, model, tokenizer


def trainer_logprobs(model: Any, rollouts: list, pad_id: int, temperature: float) -> tuple:
    ids, attention, mask = pad_batch(rollouts, pad_id)
    with torch.no_grad():
        return completion_logprobs(model, ids, attention, mask, temperature), mask, ids


# -- tests -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["vllm", "sglang"])
def test_token_ids_and_logprobs_come_back_and_match_the_trainer(run_dir, tmp_path, kind):
    """Same weights on both sides: the server's log-prob of every sampled token is the
    trainer's, so the correction weights are 1. (With top-k or top-p the server's log-probs are
    those of the truncated distribution it sampled from, and the weights correct for that.)"""
    server = ModelServer(run_dir / "train-sft" / "model", kind).start()
    try:
        engine, model, tokenizer = engine_on(run_dir, server)
        arenas = list(RecordStore(run_dir / "synth-arenas", Arena).iter_records())[:3]
        sampling = Sampling(do_sample=True, temperature=0.8)
        rollouts, stats = engine.run([a for a in arenas for _ in range(2)], sampling)
    finally:
        server.stop()
    assert stats.generated_tokens > 0 and len(server.generations) >= 6
    params = [g if kind == "vllm" else g["sampling_params"] for g in server.generations]
    assert all(p["top_k"] == -1 and p["temperature"] == 0.8 for p in params)  # -1: no top-k
    for r in rollouts:  # one log-prob per id, set exactly on the sampled ones
        assert len(r.sampler_logprobs) == len(r.ids)
        assert all((lp < 0) == bool(m) for lp, m in zip(r.sampler_logprobs, r.mask, strict=True))
    old, mask, _ = trainer_logprobs(model, rollouts, int(tokenizer.pad_token_id), 0.8)
    sampler = sampler_logprob_matrix(rollouts, mask.shape[1] + 1)
    on = mask.bool()
    assert torch.allclose(old[on], sampler[on], atol=1e-4)
    weights, metrics = truncated_importance_weights(old, sampler, mask, 2.0)
    assert torch.allclose(weights, torch.ones_like(weights), atol=1e-3)
    assert metrics["sampler_kl"] < 1e-6 and metrics["tis_capped_fraction"] == 0.0


def test_a_mismatched_sampler_gets_capped_weights_and_the_loss_changes(run_dir, tmp_path):
    """A server holding other weights: the per-token weights differ from 1 and none exceeds
    the cap, some are cut to it; the update's loss with the correction is not the one without."""
    served = perturbed_copy(run_dir / "train-sft" / "model", tmp_path / "other", scale=4.0)
    server = ModelServer(served, "vllm").start()
    try:
        engine, model, tokenizer = engine_on(run_dir, server)
        arenas = list(RecordStore(run_dir / "synth-arenas", Arena).iter_records())[:2]
        sampling = Sampling(do_sample=True, temperature=1.0)
        rollouts, _ = engine.run([a for a in arenas for _ in range(3)], sampling)
    finally:
        server.stop()
    pad = int(tokenizer.pad_token_id)
    old, mask, _ = trainer_logprobs(model, rollouts, pad, 1.0)
    sampler = sampler_logprob_matrix(rollouts, mask.shape[1] + 1)
    weights, metrics = truncated_importance_weights(old, sampler, mask, 2.0)
    on = mask.bool()
    assert (weights[on] - 1).abs().max() > 0.1
    assert float(weights[on].max()) == pytest.approx(2.0) and metrics["tis_capped_fraction"] > 0
    assert (weights[~on] == 1).all()
    assert 0 < metrics["tis_weight_mean"] < 2 and metrics["sampler_kl"] > 0.01

    # rewards that differ within each group, so the update has advantages to weight
    rollouts = [
        attrs.evolve(r, episode=attrs.evolve(r.episode, reward=Reward(value=float(i % 2))))
        for i, r in enumerate(rollouts)
    ]
    batch = [rollouts[:3], rollouts[3:]]
    builder = ComponentBuilder(prepare(parse_config({}))[1].registry)

    def update(tis_cap: float) -> dict[str, float]:
        options = RLOptions(
            max_grad_norm=0.0,
            rollout=RolloutOptions(
                generation_backend="server",
                server=ServerOptions(url=server.url, tis_cap=tis_cap),
            ),
        )
        trainer = RLTrainer(options, builder)
        fresh = copy.deepcopy(model)
        optimizer = torch.optim.SGD(fresh.parameters(), lr=0.0)
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda _: 1.0)
        return trainer._update(fresh, optimizer, scheduler, make_accelerator(), batch, tokenizer)

    corrected, plain = update(2.0), update(0.0)
    assert "tis_weight_mean" not in plain
    assert corrected["tis_capped_fraction"] == pytest.approx(metrics["tis_capped_fraction"])
    assert corrected["loss"] != pytest.approx(plain["loss"], rel=1e-3)
    assert corrected["grad_norm"] != pytest.approx(plain["grad_norm"], rel=1e-3)


def test_a_refused_request_is_not_retried_and_names_the_server_answer(run_dir):
    """A 4xx (here: a model name the server does not serve) fails at once, with the answer."""
    server = ModelServer(run_dir / "train-sft" / "model", "vllm").start()
    try:
        engine, _, _ = engine_on(run_dir, server, model="nope", retries=3)
        arena = next(iter(RecordStore(run_dir / "synth-arenas", Arena).iter_records()))
        with pytest.raises(RolloutServerError, match=r"completion refused \(HTTP 404: .*nope"):
            engine.run([arena], Sampling(do_sample=False))
    finally:
        server.stop()
    assert server.received == 1


def test_buffered_episodes_keep_their_sampler_logprobs_through_a_checkpoint(run_dir):
    from astra_training.rl_trainer import _decode, _encode

    server = ModelServer(run_dir / "train-sft" / "model", "sglang").start()
    try:
        engine, _, _ = engine_on(run_dir, server)
        arena = next(iter(RecordStore(run_dir / "synth-arenas", Arena).iter_records()))
        (rollout,), _ = engine.run([arena], Sampling(do_sample=True))
    finally:
        server.stop()
    assert rollout.sampler_logprobs
    again = _decode(json.loads(json.dumps(_encode(rollout))))
    assert again.sampler_logprobs == rollout.sampler_logprobs and again.ids == rollout.ids


def test_gspo_with_the_correction_is_refused():
    builder = ComponentBuilder(prepare(parse_config({}))[1].registry)
    options = RLOptions(
        algorithm=ComponentSpec("gspo"),
        rollout=RolloutOptions(generation_backend="server", server=ServerOptions(url="http://x")),
    )
    with pytest.raises(ConfigError, match=r"tis_cap = 2\.0 .* rl_algorithm 'gspo'"):
        RLTrainer(options, builder)


def greedy_logprobs(server: ModelServer, prompt: list[int]) -> list[float]:
    """The served model's log-probs of its greedy answer to ``prompt`` (model weights only)."""
    model = server.adapters[max(server.adapters)] if server.adapters else server.model
    return server.sample(model, prompt, 6, {"temperature": 0, "top_k": -1, "top_p": 1.0}, {})[1]


def sync_posts(server: ModelServer) -> list[str]:
    return [path for path, _ in server.posts]


def test_weights_reach_the_server_every_sync_every_steps_with_one_post_each(run_dir, tmp_path):
    """vLLM: the trainer saves into the directory the server was started on and POSTs
    /collective_rpc reload_weights, once per sync, from the main process; the server's answers
    change, and in the end it serves exactly the trained model."""
    out = tmp_path / "run"
    sync_dir = out / "sync"
    shutil.copytree(run_dir / "train-sft" / "model", sync_dir)  # `vllm serve RUN/sync`
    server = ModelServer(sync_dir, "vllm").start()
    prompt = list(range(3, 40))
    before = greedy_logprobs(server, prompt)
    try:
        summary = rl_run(run_dir, out, server, steps=4, sync_every=2, top_k=50)
    finally:
        server.stop()
    assert summary.metrics["trained_sequences"] > 0
    assert sync_posts(server) == ["/collective_rpc", "/collective_rpc"]  # steps 2 and 4
    assert all(body == {"method": "reload_weights"} for _, body in server.posts)
    assert all(g["top_k"] == 50 for g in server.generations)  # the trainer's top_k
    after = greedy_logprobs(server, prompt)
    assert max(abs(a - b) for a, b in zip(before, after, strict=False)) > 1e-3
    trained = load_model_and_tokenizer(str(out / "train-rl" / "model"))[0].state_dict()
    served = server.weights()
    assert all(torch.equal(trained[k], served[k]) for k in trained)
    rows = [json.loads(x) for x in (out / "train-rl" / "metrics.jsonl").read_text().splitlines()]
    # the server's log-probs were used: the weights hover around 1, the sampler lags a step
    # the server's log-probs were used: it samples from the top 50 of ~600 near-uniform
    # tokens, so the trainer finds each sampled token less likely than it did: weights < 1
    assert all(0 < r["tis_weight_mean"] < 1 for r in rows if r["trained_sequences"])


def test_lora_adapters_are_loaded_under_a_new_name_at_each_sync(run_dir, tmp_path):
    """SGLang with LoRA: only the adapter is saved, loaded under a new name per sync (the one
    before unloaded), and the next requests name it; the base weights are never reloaded."""
    out = tmp_path / "run"
    server = ModelServer(run_dir / "train-sft" / "model", "sglang").start()
    try:
        rl_run(run_dir, out, server, steps=2, sync_every=1, lora=True)
    finally:
        server.stop()
    loads = [body for path, body in server.posts if path == "/load_lora_adapter"]
    unloads = [body for path, body in server.posts if path == "/unload_lora_adapter"]
    assert sync_posts(server) == [
        "/load_lora_adapter",
        "/load_lora_adapter",
        "/unload_lora_adapter",
    ]
    names = [b["lora_name"] for b in loads]
    assert len(set(names)) == 2 and unloads == [{"lora_name": names[0]}]
    assert list(server.adapters) == [names[1]]
    # the adapter alone, not the model; the files of the one unloaded are gone
    last = Path(loads[1]["lora_path"])
    files = {p.name for p in last.iterdir()}
    assert {"adapter_config.json", "adapter_model.safetensors"} <= files
    assert not any(name.startswith("model") for name in files)
    assert not Path(loads[0]["lora_path"]).exists()
    asked = [g.get("lora_path") for g in server.generations]
    assert asked[0] is None and asked[-1] == names[0]  # step 2 sampled from step 1's adapter
    trained = load_model_and_tokenizer(str(out / "train-rl" / "model"))[0].state_dict()
    served = server.adapters[names[1]].state_dict()
    assert all(torch.allclose(trained[k], served[k], atol=1e-6) for k in trained)


def test_a_server_killed_mid_step_fails_the_step_then_the_run_resumes(run_dir, tmp_path):
    """The server dies at step 2's first request: bounded retries with backoff, then a clear
    error; step 1's metrics and checkpoint are intact. A server started again (on the synced
    weights) and the same command again: the run resumes from step 1's checkpoint, pushes
    its weights to the server first, and finishes."""
    out = tmp_path / "run"
    sync_dir = out / "sync"
    shutil.copytree(run_dir / "train-sft" / "model", sync_dir)
    server = ModelServer(sync_dir, "vllm").start()
    server.die_after_syncs = 1
    t0 = time.monotonic()
    try:
        with pytest.raises(RolloutServerError) as failed:
            rl_run(run_dir, out, server, steps=3, sync_every=1)
    finally:
        server.stop()
    waited = time.monotonic() - t0
    message = str(failed.value)
    assert "/v1/completions: completion failed after 3 tries" in message
    assert "resumes from the last checkpoint" in message
    assert server.dead and waited < 60
    rows = [json.loads(x) for x in (out / "train-rl" / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [1]
    assert (out / "train-rl" / "checkpoints" / "step-000001").exists()

    again = ModelServer(sync_dir, "vllm", port=server.port).start()  # as `vllm serve` again
    try:
        rl_run(run_dir, out, again, steps=3, sync_every=1)
    finally:
        again.stop()
    # the resume push (step 1's weights), then the syncs of steps 2 and 3
    assert sync_posts(again) == ["/collective_rpc"] * 3
    rows = [json.loads(x) for x in (out / "train-rl" / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [1, 2, 3]


# Run by every process of `accelerate launch`: the train-rl stage with the coin verifier.
SCRIPT = """
import sys
from pathlib import Path
import tomllib
from test_rl_server_rollouts import CoinPlugin
from astra_core.context import StageContext
from astra_core.options import ComponentSpec
from astra_core.plugins import load_plugins
from astra_core.registry import ComponentBuilder

out, config = Path(sys.argv[1]), tomllib.loads(Path(sys.argv[2]).read_text())
options = {k: v for k, v in config["train-rl"]["trainer"].items() if k != "name"}
plugins = load_plugins(objects=[("coin", CoinPlugin())])
builder = ComponentBuilder(plugins.registry, hook=plugins.hook, seed=5, workdir=out)
trainer = builder.build("trainer", ComponentSpec("rl", options))
trainer.run(StageContext("train-rl", run_dir=out, builder=builder, hook=plugins.hook, quiet=True))
"""


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["vllm", "sglang"])
def test_two_processes_sync_once_per_step_from_the_main_process(run_dir, tmp_path, kind):
    """Two processes (gloo) roll out on the same server: each sync is one POST, sent by the
    main process while the other waits; both then sample from the new weights (with LoRA:
    both name the new adapter)."""
    import os
    import subprocess
    import sys

    from test_training_multiprocess import free_port

    out = tmp_path / "run"
    shutil.copytree(run_dir / "synth-arenas", out / "synth-arenas")
    shutil.copytree(run_dir / "train-sft", out / "train-sft")
    sync_dir = out / "sync"
    shutil.copytree(run_dir / "train-sft" / "model", sync_dir)
    lora = kind == "sglang"
    server = ModelServer(sync_dir, kind).start()
    config = RL_CONFIG.format(
        sandbox=SANDBOX, url=server.url, kind=kind, steps=2, sync_every=1, top_k=0,
        sync_dir=str(sync_dir),
    ) + ("[train-rl.trainer.lora]\nr = 4\n" if lora else "")  # fmt: skip
    (tmp_path / "rl.toml").write_text(config)
    (tmp_path / "train.py").write_text(SCRIPT)
    env = {
        **os.environ,
        "ACCELERATE_USE_CPU": "1",
        "OMP_NUM_THREADS": "1",
        "PYTHONPATH": os.pathsep.join(
            [str(Path(__file__).parent), os.environ.get("PYTHONPATH", "")]
        ),
    }
    cmd = [
        sys.executable, "-m", "accelerate.commands.launch",
        "--multi_gpu", "--num_processes", "2", "--num_machines", "1",
        "--mixed_precision", "no", "--dynamo_backend", "no",
        "--main_process_port", str(free_port()),
        str(tmp_path / "train.py"), str(out), str(tmp_path / "rl.toml"),
    ]  # fmt: skip
    try:
        done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    finally:
        server.stop()
    assert done.returncode == 0, done.stderr[-4000:]
    syncs = [e for e in server.events if e.startswith("post:")]
    if lora:
        assert syncs == ["post:/load_lora_adapter"] * 2 + ["post:/unload_lora_adapter"]
    else:
        assert syncs == ["post:/collective_rpc"] * 2
    first = server.events.index(syncs[0])
    before, after = server.events[:first], server.events[first + 1 :]
    # the processes rolled out step 1 (2 groups of 3 episodes, a group each: data-parallel)
    # before the first sync ...
    assert len(before) >= 6 and set(before) == {"gen:-"}
    # ... and step 2 after it, every request naming the new adapter when there is one
    gens = [e for e in after if e.startswith("gen:")]
    assert len(gens) >= 6
    # (with LoRA: the adapter of step 1, loaded under its name by the main process alone)
    assert set(gens) == ({f"gen:{server.posts[0][1]['lora_name']}"} if lora else {"gen:-"})
