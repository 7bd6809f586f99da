"""Hook implementations of the bundled LLM-backend plugin."""

from __future__ import annotations

from typing import Any

from astra_core import hookimpl
from astra_core.registry import ComponentBuilder, Registrar
from astra_llm.openai_http import OpenAICompatibleBackend
from astra_llm.options import OpenAICompatibleOptions, TransformersLocalOptions
from astra_llm.preflight import endpoint_problems


def _parser(options: Any, builder: ComponentBuilder) -> Any:
    spec = options.tool_call_parser
    return None if spec is None else builder.build("tool_call_parser", spec)


def openai_compatible(
    options: OpenAICompatibleOptions, builder: ComponentBuilder
) -> OpenAICompatibleBackend:
    return OpenAICompatibleBackend(
        options,
        rng=builder.rng(f"llm_backend:openai-compatible:{options.model}"),
        workdir=builder.workdir,
        parser=_parser(options, builder),
        config_file=builder.file,
    )


def transformers_local(options: TransformersLocalOptions, builder: ComponentBuilder) -> Any:
    from astra_llm.transformers_local import TransformersLocalBackend  # imports torch

    return TransformersLocalBackend(
        options, workdir=builder.workdir, parser=_parser(options, builder), config_file=builder.file
    )


@hookimpl
def astra_register_llm_backends(registry: Registrar) -> None:
    registry.add(
        "openai-compatible",
        openai_compatible,
        options=OpenAICompatibleOptions,
        description="Chat completions over HTTP (vLLM, SGLang, Ollama, hosted APIs): bounded "
        "concurrency and retries, 429/Retry-After, native or parsed tool calls, disk cache.",
        preflight=endpoint_problems,
    )
    registry.add(
        "transformers-local",
        transformers_local,
        options=TransformersLocalOptions,
        description="A local transformers causal LM: the model's chat template with tools, "
        "Hermes <tool_call> parsing, batched chat_many, disk cache.",
    )
