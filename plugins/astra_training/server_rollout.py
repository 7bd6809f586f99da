"""Rollouts on an inference server (vLLM or SGLang): token ids in, token ids and their log-probs
out, and the trainer's weights pushed to the server through its own weight-update API.

Requests (one per live episode and turn, ``max_concurrency`` at a time):

* vLLM: ``POST /v1/completions`` with the prompt as token ids, ``logprobs`` and
  ``return_tokens_as_token_ids`` (the sampled tokens come back as ``"token_id:N"``);
* SGLang: ``POST /generate`` with ``input_ids`` and ``return_logprob`` (``output_ids`` and
  ``meta_info.output_token_logprobs`` come back).

Weight sync (from the main process only; the trainer holds the other ranks at a barrier):

* vLLM, full weights: the model is saved into ``sync_dir``, the directory the server was started
  on, and ``POST /collective_rpc {"method": "reload_weights"}`` (``VLLM_SERVER_DEV_MODE=1``)
  makes every worker reload it;
* SGLang, full weights: the model is saved into ``sync_dir`` and
  ``POST /update_weights_from_disk {"model_path": sync_dir}`` loads it;
* LoRA (both): only the adapter is saved, into a new sub-directory of ``sync_dir``, and loaded
  under a new name (vLLM ``POST /v1/load_lora_adapter``, SGLang ``POST /load_lora_adapter``);
  later requests name it (vLLM: as the ``model``, SGLang: as ``lora_path``) and the previous
  adapter is unloaded.

A request that fails on the wire or with a 5xx/429 is retried ``retries`` times with doubling
backoff; then the step fails with ``RolloutServerError``, before anything of it is trained on,
and a rerun resumes from the last checkpoint (pushing that checkpoint's weights first).
"""

from __future__ import annotations

import secrets
import shutil
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from astra_core.errors import AstraError
from astra_training.generation import SampledTurn, Sampling, cut_turn
from astra_training.lora import is_adapted
from astra_training.models import save_model
from astra_training.server_options import ServerOptions


class RolloutServerError(AstraError):
    """The rollout server refused a request or stayed unreachable through every retry."""


def server_root(url: str) -> str:
    """The server's root URL: ``url`` without a trailing ``/`` or ``/v1``."""
    root = url.rstrip("/")
    return root[: -len("/v1")] if root.endswith("/v1") else root


class ServerGenerate:
    """Generation on a vLLM or SGLang server: prompt token ids in, each turn's token ids and
    the server's log-prob of each out (``SampledTurn``), token-in/token-out."""

    returns_logprobs = True

    def __init__(self, options: ServerOptions, *, stop_ids: Sequence[int] = ()) -> None:
        import httpx

        if not options.url:
            raise AstraError("generation_backend = 'server' needs rollout.server.url")
        self.options = options
        self.root = server_root(options.url)
        self.stop_ids = list(stop_ids)
        # the adapter requests name; None: the served model itself
        self.adapter: str | None = None
        self.client = httpx.Client(timeout=options.timeout_s)

    def close(self) -> None:
        self.client.close()

    # -- generation ------------------------------------------------------------------------------

    def generate(
        self, prompts: Sequence[Sequence[int]], max_new_tokens: Sequence[int], sampling: Sampling
    ) -> list[SampledTurn]:
        if not prompts:
            return []
        workers = min(self.options.max_concurrency, len(prompts))
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="astra-server") as pool:
            return list(
                pool.map(
                    lambda args: self._one(args[0], args[1], sampling),
                    zip(prompts, max_new_tokens, strict=True),
                )
            )

    def _one(self, prompt: Sequence[int], limit: int, sampling: Sampling) -> SampledTurn:
        if self.options.kind == "sglang":
            ids, logprobs = self._sglang(prompt, limit, sampling)
        else:
            ids, logprobs = self._vllm(prompt, limit, sampling)
        if len(ids) != len(logprobs):
            raise RolloutServerError(
                f"rollout server {self.root} returned {len(ids)} tokens but {len(logprobs)} "
                "log-probs"
            )
        kept = cut_turn(ids, limit, self.stop_ids, -1)
        return SampledTurn(tuple(kept), tuple(float(x) for x in logprobs[: len(kept)]))

    def _sampling_params(self, sampling: Sampling) -> dict[str, Any]:
        if not sampling.do_sample:
            return {"temperature": 0.0, "top_p": 1.0, "top_k": -1}
        return {
            "temperature": sampling.temperature,
            "top_p": sampling.top_p,
            "top_k": sampling.top_k or -1,  # both servers: -1 is no top-k
        }

    def _vllm(
        self, prompt: Sequence[int], limit: int, sampling: Sampling
    ) -> tuple[list[int], list[float]]:
        body: dict[str, Any] = {
            "model": self.adapter or self.options.model,
            "prompt": list(prompt),
            "max_tokens": max(1, limit),
            **self._sampling_params(sampling),
            "logprobs": 1,  # token_logprobs: the sampled token's own log-prob
            "return_tokens_as_token_ids": True,
            "skip_special_tokens": False,
            "stop_token_ids": self.stop_ids,
        }
        answer = self.post("/v1/completions", body, "completion")
        try:
            logprobs = answer["choices"][0]["logprobs"]
            ids = [int(str(t).split(":", 1)[1]) for t in logprobs["tokens"]]
            values = [float(x) for x in logprobs["token_logprobs"]]
        except (KeyError, IndexError, TypeError, ValueError) as exc:
            raise RolloutServerError(
                f"rollout server {self.root} (vllm): the completion holds no token ids with "
                f"log-probs ({type(exc).__name__}: {exc}); it must support 'logprobs' and "
                "'return_tokens_as_token_ids' (vLLM's OpenAI server does)"
            ) from None
        return ids, values

    def _sglang(
        self, prompt: Sequence[int], limit: int, sampling: Sampling
    ) -> tuple[list[int], list[float]]:
        body: dict[str, Any] = {
            "input_ids": list(prompt),
            "sampling_params": {
                "max_new_tokens": max(1, limit),
                **self._sampling_params(sampling),
                "stop_token_ids": self.stop_ids,
                "skip_special_tokens": False,
            },
            "return_logprob": True,
        }
        if self.adapter:
            body["lora_path"] = self.adapter
        answer = self.post("/generate", body, "generation")
        try:
            pairs = answer["meta_info"]["output_token_logprobs"]  # [logprob, id, text]
            ids = [int(p[1]) for p in pairs]
            values = [float(p[0]) for p in pairs]
        except (KeyError, IndexError, TypeError, ValueError) as exc:
            raise RolloutServerError(
                f"rollout server {self.root} (sglang): the answer holds no "
                f"meta_info.output_token_logprobs ({type(exc).__name__}: {exc})"
            ) from None
        return ids, values

    # -- the wire --------------------------------------------------------------------------------

    def post(self, path: str, body: dict[str, Any], what: str) -> Any:
        """POST ``body`` to ``path`` of the server; retried on the wire and on 5xx/429."""
        import httpx

        url = self.root + path
        tries = self.options.retries + 1
        last = ""
        for attempt in range(1, tries + 1):
            try:
                response = self.client.post(url, json=body)
            except httpx.TransportError as exc:
                last = f"{type(exc).__name__}: {exc}"
            else:
                if response.status_code == 200:
                    return response.json()
                last = f"HTTP {response.status_code}: {response.text[:300]}"
                if response.status_code < 500 and response.status_code != 429:
                    raise RolloutServerError(f"rollout server {url}: {what} refused ({last})")
            if attempt < tries:
                time.sleep(self.options.retry_backoff_s * 2 ** (attempt - 1))
        raise RolloutServerError(
            f"rollout server {url}: {what} failed after {tries} tries ({last}); this step "
            "failed before any update, and a rerun resumes from the last checkpoint"
        )

    # -- weight sync -----------------------------------------------------------------------------

    def load_weights(self, directory: Path) -> None:
        """Make the server serve the full model saved in ``directory``."""
        if self.options.kind == "sglang":
            answer = self.post(
                "/update_weights_from_disk", {"model_path": str(directory)}, "weight update"
            )
            if isinstance(answer, dict) and answer.get("success") is False:
                raise RolloutServerError(
                    f"rollout server {self.root}: update_weights_from_disk of {directory} "
                    f"failed: {answer.get('message', answer)}"
                )
        else:
            # vLLM reloads from the directory it was started on, which sync_dir must be
            self.post("/collective_rpc", {"method": "reload_weights"}, "weight reload")

    def load_adapter(self, directory: Path, name: str) -> None:
        """Load the LoRA adapter saved in ``directory`` under ``name``, serve it from now on
        and unload the one served before."""
        prefix = "/v1" if self.options.kind == "vllm" else ""
        body = {"lora_name": name, "lora_path": str(directory)}
        self.post(f"{prefix}/load_lora_adapter", body, "adapter load")
        previous, self.adapter = self.adapter, name
        if previous:
            self.post(f"{prefix}/unload_lora_adapter", {"lora_name": previous}, "adapter unload")


class WeightSync:
    """Pushes the policy to the rollout server: the main process saves and POSTs, every process
    waits at a barrier, then all request the adapter's new name."""

    def __init__(self, generator: ServerGenerate, sync_dir: Path, accelerator: Any) -> None:
        self.generator = generator
        self.sync_dir = sync_dir
        self.accelerator = accelerator
        # names a run's adapters apart from those a killed run left on the server
        self.run_tag = _shared(accelerator, secrets.token_hex(3))

    def push(self, policy: Any, tokenizer: Any, step: int, state_dict: Any = None) -> None:
        """``state_dict``: the full weights, gathered by every process, under sharded
        parameters (``sharding.full_state_dict``)."""
        acc = self.accelerator
        adapted = is_adapted(policy)
        name = f"{self.generator.options.model}-lora-{self.run_tag}-{step:06d}" if adapted else None
        if acc.is_main_process:
            if adapted:
                directory = self.sync_dir / name
                _save_adapter(policy, directory)
                self.generator.load_adapter(directory, name)
                for old in self.sync_dir.glob(f"{self.generator.options.model}-lora-*"):
                    if old.name != name:  # the server holds what it loaded: the files can go
                        shutil.rmtree(old, ignore_errors=True)
            else:
                save_model(policy, tokenizer, self.sync_dir, state_dict=state_dict)
                self.generator.load_weights(self.sync_dir)
        acc.wait_for_everyone()
        if adapted and not acc.is_main_process:
            self.generator.adapter = name


def _save_adapter(model: Any, directory: Path) -> None:
    """The adapter alone (peft's ``save_pretrained``), moved into place when complete."""
    tmp = directory.with_name(f".tmp-{directory.name}")
    shutil.rmtree(tmp, ignore_errors=True)
    model.save_pretrained(tmp)
    shutil.rmtree(directory, ignore_errors=True)
    tmp.rename(directory)


def _shared(accelerator: Any, value: str) -> str:
    """The main process's ``value`` on every process."""
    if accelerator.num_processes == 1:
        return value
    from accelerate.utils import broadcast_object_list

    return str(broadcast_object_list([value])[0])
