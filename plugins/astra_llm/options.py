"""Options of the LLM backends (TOML tables under an ``llm_backend`` choice)."""

from __future__ import annotations

import re
from typing import Any, Literal

import attrs

from astra_core.options import KIND_METADATA_KEY, at_least, greater_than, option

# A nested component that may be left out: ``None`` means the built-in Hermes parsing.
_PARSER_METADATA = {
    KIND_METADATA_KEY: "tool_call_parser",
    "help": "tool_call_parser component that reads calls out of generated text "
    "(None: the built-in Hermes <tool_call> JSON parsing)",
}


_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def _env_var_name(_: Any, attribute: attrs.Attribute, value: str | None) -> None:
    # Keys never live in configs: a value that is not a variable name is most likely a key.
    if value is not None and not _ENV_NAME.match(value):
        raise ValueError(
            f"{attribute.name} names the environment variable that holds the API key "
            "(e.g. OPENAI_API_KEY), not the key itself; never put a key in a config"
        )


CacheMode = Literal["use", "refresh", "replay"]
_CACHE_MODE_HELP = (
    '"use": answer from the cache, call and store on a miss; "refresh": always call, store '
    'the answer; "replay": cache only, a miss is an LLMCacheMiss (tests, audits)'
)
_CACHE_DIR_HELP = (
    "directory of the response cache (relative paths are under the stage's directory; "
    "{config_dir} is the run config's directory, for answers shipped beside a config; "
    "None: no cache)"
)


@attrs.frozen
class BackoffOptions:
    """Exponential backoff with jitter between attempts; the jitter is drawn from a generator
    seeded by the run seed."""

    base_s: float = option("wait before the first retry, in seconds", 0.5, validator=at_least(0))
    factor: float = option("growth of the wait per attempt", 2.0, validator=greater_than(0))
    max_s: float = option("longest wait between two attempts", 30.0, validator=at_least(0))
    jitter: float = option(
        "fraction of each wait drawn at random (0: none, 1: anywhere in [0, wait])", 0.5
    )

    @jitter.validator
    def _check_jitter(self, attribute: attrs.Attribute, value: float) -> None:
        if not 0.0 <= value <= 1.0:
            raise ValueError(f"jitter must be within [0, 1], got {value!r}")


@attrs.frozen
class OpenAICompatibleOptions:
    model: str = attrs.field(
        metadata={"help": "model name the server knows (vLLM --served-model-name, Ollama tag...)"}
    )
    base_url: str = option(
        "server root up to /v1; requests go to {base_url}/chat/completions",
        "http://127.0.0.1:8000/v1",
    )
    api_key_env: str | None = option(
        "environment variable holding the API key (sent as a Bearer token when set; "
        "None or unset: no key)",
        "OPENAI_API_KEY",
        validator=_env_var_name,
    )
    timeout_s: float = option(
        "limit on one HTTP attempt, in seconds", 120.0, validator=greater_than(0)
    )
    max_retries: int = option(
        "retries after the first attempt on timeouts, connection errors, 408/409/429 and 5xx; "
        "then LLMRetriesExhausted",
        4,
        validator=at_least(0),
    )
    max_wait_s: float = option(
        "longest single wait between attempts, a server's Retry-After included",
        60.0,
        validator=at_least(0),
    )
    backoff: BackoffOptions = attrs.field(
        factory=BackoffOptions, metadata={"help": "exponential backoff with seeded jitter"}
    )
    max_concurrency: int = option(
        "requests in flight at once from this backend (sync, async and batch calls together)",
        8,
        validator=greater_than(0),
    )
    tool_call_mode: Literal["native", "parsed"] = option(
        '"native": send tools and read tool_calls; "parsed": render tools into the system '
        "prompt and parse <tool_call> blocks out of the text",
        "native",
    )
    tool_call_parser: Any = attrs.field(default=None, metadata=_PARSER_METADATA)
    tools_prompt: str | None = option(
        'system-prompt text offering the tools in "parsed" mode; {tools} is replaced by one '
        "JSON tool per line (None: the Hermes/Qwen prompt)",
        None,
    )
    sampling: dict[str, Any] = attrs.field(
        factory=dict,
        metadata={
            "help": "default sampling parameters sent with every request (temperature, top_p, "
            "max_tokens, seed, ...); a call's keyword arguments override them"
        },
    )
    headers: dict[str, str] = attrs.field(
        factory=dict, metadata={"help": "extra HTTP headers (never a key: use api_key_env)"}
    )
    cache_dir: str | None = attrs.field(default=None, metadata={"help": _CACHE_DIR_HELP})
    cache_mode: CacheMode = attrs.field(default="use", metadata={"help": _CACHE_MODE_HELP})


@attrs.frozen
class TransformersLocalOptions:
    model: str = attrs.field(metadata={"help": "local directory or hub id of a causal LM"})
    device: str = option('"cpu", "cuda", "cuda:1", ... or "auto" (cuda when available)', "cpu")
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = option("weights dtype", "auto")
    max_new_tokens: int = option(
        "tokens generated per call unless a call passes max_tokens", 512, validator=greater_than(0)
    )
    batch_size: int = option(
        "prompts generated together by chat_many", 8, validator=greater_than(0)
    )
    sampling: dict[str, Any] = attrs.field(
        factory=dict,
        metadata={
            "help": "default sampling (temperature: 0 is greedy, top_p, top_k, seed, "
            "repetition_penalty, stop); a call's keyword arguments override them"
        },
    )
    chat_template_kwargs: dict[str, Any] = attrs.field(
        factory=dict,
        metadata={"help": "extra variables for the chat template (e.g. enable_thinking = false)"},
    )
    tool_call_parser: Any = attrs.field(default=None, metadata=_PARSER_METADATA)
    trust_remote_code: bool = option("allow code shipped with the model to run", False)
    cache_dir: str | None = attrs.field(default=None, metadata={"help": _CACHE_DIR_HELP})
    cache_mode: CacheMode = attrs.field(default="use", metadata={"help": _CACHE_MODE_HELP})
