"""Options of the ``mcp-probe`` trajectory sampler (a TOML table under a component choice)."""

from __future__ import annotations

import attrs

from astra_core.options import ComponentSpec, at_least, component, option

DEFAULT_PROBE_SYSTEM_PROMPT = (
    "You are a helpful assistant with access to the tools of {title}. {description} "
    "Call the tools the request needs, one at a time, and answer from what they return."
)


@attrs.frozen
class McpProbeOptions:
    """Options of the ``mcp-probe`` trajectory sampler (offline; no LLM)."""

    executor: ComponentSpec = component(
        "tool_executor", default="mcp", help="the tool executor that makes the live calls"
    )
    trajectories_per_server: int = option(
        "distinct call plans recorded per server", 8, validator=at_least(1)
    )
    min_calls: int = option("fewest tool calls in a trajectory", 1, validator=at_least(1))
    max_calls: int = option("most tool calls in a trajectory", 3, validator=at_least(1))
    attempts_per_server: int = option(
        "random plan attempts per server (plans repeat; attempts stop once enough differ)",
        200,
        validator=at_least(1),
    )
    allow_writes: bool = option(
        "also call tools the server annotates as not read-only or destructive; tools without "
        "annotations are called either way (list them in skip_tools to avoid them)",
        False,
    )
    skip_tools: tuple[str, ...] = option("tools never called, by name (any server)", ())
    min_match_score: float = option(
        "smallest name/type/description score for an earlier output to fill a parameter",
        0.5,
        validator=at_least(0.0),
    )
    system_prompt: str = option(
        "system message; {title} and {description} are the server's",
        DEFAULT_PROBE_SYSTEM_PROMPT,
    )

    def __attrs_post_init__(self) -> None:
        if self.max_calls < self.min_calls:
            raise ValueError(
                f"max_calls ({self.max_calls}) must be >= min_calls ({self.min_calls})"
            )
