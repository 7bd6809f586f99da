"""What the ``openai-compatible`` backend needs before a run starts: a server that answers at
``base_url``. One quick ``GET {base_url}/models`` with a short timeout; any HTTP answer but a
refused key counts as reachable. Skipped when ``cache_mode = "replay"``: then every answer comes
from the response cache and no server is needed (with ``"use"`` a miss still calls the server,
so it is probed)."""

from __future__ import annotations

import os
from pathlib import Path

import httpx

from astra_core.preflight import Problem
from astra_llm.options import OpenAICompatibleOptions

PROBE_TIMEOUT_S = 3.0


def endpoint_problems(options: OpenAICompatibleOptions, base_dir: Path) -> list[Problem]:
    """The server at ``base_url`` does not answer, or refuses the key."""
    if options.cache_mode == "replay":
        return []
    url = options.base_url.rstrip("/") + "/models"
    headers = dict(options.headers)
    key = os.environ.get(options.api_key_env) if options.api_key_env else None
    if key:
        headers["Authorization"] = f"Bearer {key}"
    try:
        response = httpx.get(url, headers=headers, timeout=PROBE_TIMEOUT_S)
    except httpx.TimeoutException:
        why = f"no answer within {PROBE_TIMEOUT_S:g} s"
    except httpx.HTTPError as exc:
        why = f"{type(exc).__name__}: {exc}"
    else:
        if response.status_code in (401, 403):
            where = f"${options.api_key_env}" if options.api_key_env else "api_key_env"
            return [
                Problem(
                    f"the server at {options.base_url} refuses the API key "
                    f"(GET /models: HTTP {response.status_code})",
                    f"put a valid key in {where}",
                )
            ]
        return []
    return [
        Problem(
            f"cannot reach the LLM server at {options.base_url} ({why})",
            "start the server (e.g. vllm serve MODEL), correct base_url, or set "
            'cache_mode = "replay" to answer from the response cache alone',
        )
    ]
