"""Hook implementations of the bundled tool-call-parser plugin."""

from __future__ import annotations

from typing import Any

from astra_core import hookimpl
from astra_core.registry import Registrar
from astra_tool_call_parsers.hermes import HermesParser
from astra_tool_call_parsers.json_calls import JSONCallsParser
from astra_tool_call_parsers.options import HermesOptions, JSONCallsOptions


def hermes(options: HermesOptions, builder: Any) -> HermesParser:
    return HermesParser(options)


def json_calls(options: JSONCallsOptions, builder: Any) -> JSONCallsParser:
    return JSONCallsParser(options)


@hookimpl
def astra_register_tool_call_parsers(registry: Registrar) -> None:
    registry.add(
        "hermes",
        hermes,
        options=HermesOptions,
        description='Hermes/Qwen <tool_call>{"name", "arguments"}</tool_call> blocks; malformed '
        "blocks become errors, never exceptions.",
    )
    registry.add(
        "json",
        json_calls,
        options=JSONCallsOptions,
        description="A bare JSON list of calls (or one call object) at the end of the turn, "
        "optionally after prose or in a ```json fence.",
    )
