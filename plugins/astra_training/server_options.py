"""The options of RL rollouts on an inference server (``generation_backend = "server"``), apart
from ``server_rollout`` so that reading a config does not import torch."""

from __future__ import annotations

from typing import Literal

import attrs

from astra_core.options import at_least, greater_than, option


@attrs.frozen
class ServerOptions:
    """The rollout server of ``generation_backend = "server"``."""

    url: str | None = option(
        "base URL of the rollout server, e.g. http://127.0.0.1:8000 (a trailing /v1 is accepted)",
        None,
    )
    kind: Literal["vllm", "sglang"] = option(
        "the server's API: vLLM's OpenAI server (/v1/completions, /collective_rpc, "
        "/v1/load_lora_adapter) or SGLang's (/generate, /update_weights_from_disk, "
        "/load_lora_adapter)",
        "vllm",
    )
    model: str = option("model name the server serves (vLLM: --served-model-name)", "policy")
    sync_every: int = option("push weights to the server every N steps", 1, at_least(1))
    sync_dir: str = option(
        "directory the trainer saves weights into for the server to load (shared with the "
        "server); vLLM reloads from the directory it was started on, so start it on this one; "
        "empty: RUN/train-rl/weights-sync",
        "",
    )
    tis_cap: float = option(
        "truncated importance sampling: each sampled token's loss is weighted by "
        "min(exp(logp_trainer - logp_server), tis_cap), the server's log-probs against the "
        "trainer's at the rollout's weights (0: off)",
        2.0,
        at_least(0),
    )
    retries: int = option(
        "retries of a request that failed on the wire or with 5xx/429 before the step fails",
        3,
        at_least(0),
    )
    retry_backoff_s: float = option(
        "wait before the first retry, doubled at each next one", 1.0, at_least(0)
    )
    timeout_s: float = option("seconds a request may take", 600.0, greater_than(0))
    max_concurrency: int = option("requests in flight at once", 64, at_least(1))
