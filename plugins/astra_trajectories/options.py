"""Options of the trajectory samplers (TOML tables under a component choice)."""

from __future__ import annotations

import attrs

from astra_core.options import ComponentSpec, at_least, component, option

DEFAULT_SYSTEM_PROMPT = (
    "You are a helpful assistant with access to the tools of {title}. {description} "
    "Plan before you call a tool, call the tools the request needs one at a time, use the ids "
    "and values they return, and finish with a short answer based on what they returned."
)


@attrs.frozen
class OfflineChainWalkOptions:
    """Options of the ``offline-chain-walk`` trajectory sampler (no LLM anywhere)."""

    min_length: int = option("fewest tools in a chain (the paper: 2)", 2, validator=at_least(1))
    max_length: int = option("most tools in a chain (the paper: 5)", 5, validator=at_least(1))
    acyclic: bool = option("walks never visit a tool twice", True)
    walks_per_server: int = option(
        "random-walk attempts per server graph", 400, validator=at_least(1)
    )
    max_chains_per_server: int = option(
        "distinct chains kept per server (walks stop once reached)", 40, validator=at_least(1)
    )
    tasks_per_chain: int = option(
        "tasks written per verified chain, each with other user values", 2, validator=at_least(1)
    )
    min_match_score: float = option(
        "smallest name/type/description score for an output to fill a later parameter",
        0.5,
        validator=at_least(0.0),
    )
    require_flow: bool = option(
        "every step after the first must use an output of an earlier step", True
    )
    max_turns: int = option(
        "most assistant turns with tool calls in a rollout", 8, validator=at_least(1)
    )
    # the tool executor that runs the calls (a fresh session per trajectory when it has
    # ``open_session``); ``component()`` takes no help text yet
    executor: ComponentSpec = component("tool_executor", default="python-catalog")
    # the four steps are registered trajectory_step components, chosen by name: a plugin
    # replaces one of them alone (their own options default to the ones above of the same name)
    chain_verifier: str = option(
        "chain check: argument-dependency (every required argument comes from the task or an "
        "earlier output)",
        "argument-dependency",
    )
    task_generator: str = option(
        "task writer: offline-template (a request built from the chain, the schemas and real "
        "values from the server's state)",
        "offline-template",
    )
    agent: str = option(
        "rollout agent: offline-chain-executor (runs the verified chain through the executor)",
        "offline-chain-executor",
    )
    judge: str = option(
        "trajectory judge: offline-rules (rule-based checks, not the paper's LLM judge)",
        "offline-rules",
    )
    system_prompt: str = option(
        "system message; {title} and {description} are the server's", DEFAULT_SYSTEM_PROMPT
    )

    def __attrs_post_init__(self) -> None:
        if self.max_length < self.min_length:
            raise ValueError(
                f"max_length ({self.max_length}) must be >= min_length ({self.min_length})"
            )


# Options of the four bundled steps. Their fields carry the names of the sampler's options: the
# sampler hands its values on, so a config sets them once, on the sampler, as before.


@attrs.frozen
class ArgumentDependencyOptions:
    """Options of the ``argument-dependency`` chain verifier (a ``trajectory_step``)."""

    min_match_score: float = option(
        "smallest name/type/description score for an output to fill a later parameter",
        0.5,
        validator=at_least(0.0),
    )
    require_flow: bool = option(
        "every step after the first must use an output of an earlier step", True
    )


@attrs.frozen
class TemplateTaskOptions:
    """Options of the ``offline-template`` task generator (a ``trajectory_step``)."""

    tasks_per_chain: int = option(
        "tasks written per verified chain, each with other user values", 2, validator=at_least(1)
    )


@attrs.frozen
class ChainExecutorOptions:
    """Options of the ``offline-chain-executor`` agent (a ``trajectory_step``)."""

    executor: ComponentSpec = component("tool_executor", default="python-catalog")
    max_turns: int = option(
        "most assistant turns with tool calls in a rollout", 8, validator=at_least(1)
    )
    system_prompt: str = option(
        "system message; {title} and {description} are the server's", DEFAULT_SYSTEM_PROMPT
    )
