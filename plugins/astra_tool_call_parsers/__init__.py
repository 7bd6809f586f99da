"""Tool-call parsers: Hermes/Qwen ``<tool_call>`` JSON blocks (the default) and bare JSON lists."""

from astra_tool_call_parsers.hermes import HermesParser
from astra_tool_call_parsers.json_calls import JSONCallsParser

__all__ = ["HermesParser", "JSONCallsParser"]
