"""The ``transformers-local`` LLM backend: a causal LM loaded with transformers, in-process.

The model's own chat template renders the conversation and the tools (when the template does
not take tools, they are offered in the system prompt the Hermes way); the generated text is
split into prose and ``<tool_call>`` calls by the built-in Hermes parser or a configured
``tool_call_parser``. ``chat_many`` generates up to ``batch_size`` prompts together (left
padding) when they share sampling parameters. Answers can be cached on disk like the HTTP
backend's (same key, same format).
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from astra_core.protocols import ChatResponse, ToolCallParser
from astra_core.records import JSONDict, canonical_json
from astra_llm.chat_request import ChatRequest, cache_request, effective_sampling, request_key
from astra_llm.errors import LLMCacheMiss, LLMCallFailed
from astra_llm.hermes_format import format_hermes, parse_hermes
from astra_llm.openai_http import resolve_cache_dir
from astra_llm.openai_messages import (
    arguments_as_objects,
    messages_with_text_tools,
    response_from_text,
)
from astra_llm.options import TransformersLocalOptions
from astra_llm.response_cache import ResponseCache, seed_cache

log = logging.getLogger("astra.llm")

NAME = "transformers-local"

# OpenAI parameters that mean nothing to local generation: accepted, ignored, warned about once.
IGNORED = frozenset(
    {
        "frequency_penalty",
        "presence_penalty",
        "tool_choice",
        "parallel_tool_calls",
        "response_format",
        "logprobs",
        "top_logprobs",
        "logit_bias",
        "user",
        "store",
        "metadata",
        "stream_options",
    }
)
SUPPORTED = (
    "temperature",
    "top_p",
    "top_k",
    "max_tokens",
    "max_new_tokens",
    "max_completion_tokens",
    "seed",
    "stop",
    "repetition_penalty",
    "n",
)


class TransformersLocalBackend:
    """Chat with a local transformers model; see the module docstring."""

    def __init__(
        self,
        options: TransformersLocalOptions,
        *,
        workdir: str | Path = ".",
        parser: ToolCallParser | None = None,
        config_file: str | None = None,
    ) -> None:
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        self.options = options
        self._parser = parser
        self._torch = torch
        self.tokenizer = AutoTokenizer.from_pretrained(
            options.model, padding_side="left", trust_remote_code=options.trust_remote_code
        )
        template = self.tokenizer.chat_template
        if not template:
            raise ValueError(
                f"{options.model}: the tokenizer has no chat template; a chat backend needs one"
            )
        text = template if isinstance(template, str) else canonical_json(template)
        self.native_tools = "tools" in text
        if self.tokenizer.pad_token_id is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        self.device = options.device
        if self.device == "auto":
            self.device = "cuda" if torch.cuda.is_available() else "cpu"
        dtype = {
            "auto": "auto",
            "float32": torch.float32,
            "bfloat16": torch.bfloat16,
            "float16": torch.float16,
        }[options.dtype]
        model: Any = AutoModelForCausalLM.from_pretrained(
            options.model, dtype=dtype, trust_remote_code=options.trust_remote_code
        )
        self.model: Any = model.to(self.device)
        self.model.eval()
        eos = self.model.generation_config.eos_token_id
        eos_ids = set(eos if isinstance(eos, list) else [eos] if eos is not None else [])
        if self.tokenizer.eos_token_id is not None:
            eos_ids.add(self.tokenizer.eos_token_id)
        self.eos_ids = frozenset(eos_ids)
        cache_dir = resolve_cache_dir(options.cache_dir, workdir, config_file)
        self.cache = ResponseCache(cache_dir, backend=NAME) if cache_dir else None
        self._lock = threading.Lock()
        self._warned: set[str] = set()
        self._counts = {"requests": 0, "generated": 0, "batches": 0}

    # -- public API ----------------------------------------------------------------------------

    def chat(
        self,
        messages: Sequence[Mapping[str, Any]],
        *,
        tools: Sequence[Mapping[str, Any]] | None = None,
        **sampling: Any,
    ) -> ChatResponse:
        result = self.chat_many([ChatRequest(messages, tools, sampling)], return_exceptions=False)
        return result[0]  # type: ignore[return-value]

    async def achat(
        self,
        messages: Sequence[Mapping[str, Any]],
        *,
        tools: Sequence[Mapping[str, Any]] | None = None,
        **sampling: Any,
    ) -> ChatResponse:
        return await asyncio.to_thread(self.chat, messages, tools=tools, **sampling)

    def chat_many(
        self,
        requests: Sequence[ChatRequest | Mapping[str, Any]],
        *,
        return_exceptions: bool = True,
    ) -> list[ChatResponse | LLMCallFailed]:
        """Answers in request order; requests with equal sampling are generated in batches."""
        batch = [ChatRequest.coerce(r, i) for i, r in enumerate(requests)]
        out: list[ChatResponse | LLMCallFailed | None] = [None] * len(batch)
        todo: dict[str, list[tuple[int, ChatRequest, JSONDict, str | None]]] = {}
        for index, request in enumerate(batch):
            sampling = effective_sampling(self.options.sampling, request.sampling)
            self._check_sampling(sampling)
            with self._lock:
                self._counts["requests"] += 1
            key: str | None = None
            if self.cache is not None:
                body = cache_request(self.options.model, request.messages, request.tools, sampling)
                key = request_key(body)
                hit = None if self.options.cache_mode == "refresh" else self.cache.get(key)
                if hit is not None:
                    out[index] = hit
                    continue
                if self.options.cache_mode == "replay":
                    miss = LLMCacheMiss(
                        f"cache_mode is 'replay' and {self.cache.path(key)} does not exist",
                        backend=NAME,
                        key=key,
                    )
                    if not return_exceptions:
                        raise miss
                    out[index] = miss
                    continue
            todo.setdefault(canonical_json(sampling), []).append((index, request, sampling, key))
        for group in todo.values():
            for start in range(0, len(group), self.options.batch_size):
                chunk = group[start : start + self.options.batch_size]
                answers = self._generate([r for _, r, _, _ in chunk], chunk[0][2])
                for (index, request, sampling, key), answer in zip(chunk, answers, strict=True):
                    out[index] = answer
                    if self.cache is not None and key is not None:
                        body = cache_request(
                            self.options.model, request.messages, request.tools, sampling
                        )
                        try:
                            self.cache.put(key, body, answer)
                        except OSError as exc:  # keep the answer even if it cannot be stored
                            log.warning("could not store an LLM answer: %s", exc)
        return [r for r in out if r is not None]

    def render_prompt(
        self,
        messages: Sequence[Mapping[str, Any]],
        tools: Sequence[Mapping[str, Any]] | None = None,
    ) -> str:
        """The exact text the model is asked to continue."""
        kwargs = dict(self.options.chat_template_kwargs)
        if tools and not self.native_tools:
            fmt = self._parser.format if self._parser is not None else format_hermes
            conversation = messages_with_text_tools(messages, tools, format_calls=fmt)
            tools = None
        else:
            conversation = arguments_as_objects(messages)
        return str(
            self.tokenizer.apply_chat_template(
                conversation,
                tools=[dict(t) for t in tools] if tools else None,
                add_generation_prompt=True,
                tokenize=False,
                **kwargs,
            )
        )

    def response_from_ids(
        self,
        ids: Sequence[int],
        *,
        prompt_tokens: int,
        max_new_tokens: int,
        stop: Sequence[str] = (),
    ) -> ChatResponse:
        """Generated ids (pads and all) to a response: cut at the first end-of-turn token,
        decode with special tokens kept (``<tool_call>`` often is one), cut the text before the
        first stop string (as OpenAI does), parse the calls."""
        ids = list(ids)
        finish = "length"
        for i, token in enumerate(ids):
            if token in self.eos_ids:
                ids, finish = ids[:i], "stop"
                break
        pad = self.tokenizer.pad_token_id
        while ids and ids[-1] == pad:
            ids.pop()
        if finish == "length" and len(ids) < max_new_tokens:
            finish = "stop"  # a stop string ended it
        text = str(self.tokenizer.decode(ids, skip_special_tokens=False))
        cuts = [i for i in (text.find(s) for s in stop if s) if i >= 0]
        if cuts:
            text, finish = text[: min(cuts)], "stop"
        parse = self._parser.parse if self._parser is not None else parse_hermes
        usage = {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": len(ids),
            "total_tokens": prompt_tokens + len(ids),
        }
        return response_from_text(text, finish_reason=finish, usage=usage, parse=parse)

    def seed_cache(
        self, pairs: Sequence[tuple[Mapping[str, Any], Mapping[str, Any] | ChatResponse]]
    ) -> list[str]:
        if self.cache is None:
            raise ValueError(f"llm_backend {NAME!r}: seed_cache needs the cache_dir option")
        return seed_cache(
            self.cache.directory,
            pairs,
            model=self.options.model,
            sampling=self.options.sampling,
            backend=NAME,
        )

    @property
    def stats(self) -> dict[str, int]:
        with self._lock:
            counts = dict(self._counts)
        if self.cache is not None:
            counts.update(self.cache.stats())
        return counts

    def close(self) -> None:
        """Nothing to release that garbage collection does not (kept for symmetry)."""

    # -- generation ----------------------------------------------------------------------------

    def _check_sampling(self, sampling: Mapping[str, Any]) -> None:
        unknown = sorted(set(sampling) - IGNORED - set(SUPPORTED))
        if unknown:
            raise ValueError(
                f"llm_backend {NAME!r}: unknown sampling parameter {unknown[0]!r}; "
                f"supported: {', '.join(SUPPORTED)}"
            )
        if sampling.get("n", 1) != 1:
            raise ValueError("n > 1 is not supported; ask again with seed=i for more samples")
        for name in sorted(set(sampling) & IGNORED):
            if name not in self._warned:
                self._warned.add(name)
                log.warning("%s ignores the sampling parameter %r", NAME, name)

    def _generate(self, requests: list[ChatRequest], sampling: Mapping[str, Any]) -> list[Any]:
        torch = self._torch
        max_new = int(
            sampling.get("max_tokens")
            or sampling.get("max_new_tokens")
            or sampling.get("max_completion_tokens")
            or self.options.max_new_tokens
        )
        kwargs: dict[str, Any] = {"max_new_tokens": max_new}
        temperature = sampling.get("temperature")
        if temperature is not None:
            kwargs["do_sample"] = float(temperature) > 0
            if float(temperature) > 0:
                kwargs["temperature"] = float(temperature)
        for name in ("top_p", "top_k", "repetition_penalty"):
            if name in sampling:
                kwargs[name] = sampling[name]
        if not kwargs.get("do_sample", True):
            kwargs.update(top_p=None, top_k=None, temperature=None)  # silence greedy warnings
        stop = sampling.get("stop")
        if stop:
            kwargs["stop_strings"] = [stop] if isinstance(stop, str) else list(stop)
            kwargs["tokenizer"] = self.tokenizer
        prompts = [self.render_prompt(r.messages, r.tools) for r in requests]
        with self._lock:
            if "seed" in sampling:
                torch.manual_seed(int(sampling["seed"]))
            encoded = self.tokenizer(
                prompts, return_tensors="pt", padding=True, add_special_tokens=False
            ).to(self.device)
            with torch.no_grad():
                output = self.model.generate(
                    **encoded,
                    **kwargs,
                    pad_token_id=self.tokenizer.pad_token_id,
                    eos_token_id=sorted(self.eos_ids) or None,
                )
            self._counts["generated"] += len(requests)
            self._counts["batches"] += 1
        width = encoded["input_ids"].shape[1]
        answers = []
        for row, mask in zip(output[:, width:].tolist(), encoded["attention_mask"], strict=True):
            answers.append(
                self.response_from_ids(
                    row,
                    prompt_tokens=int(mask.sum()),
                    max_new_tokens=max_new,
                    stop=kwargs.get("stop_strings", ()),
                )
            )
        return answers
