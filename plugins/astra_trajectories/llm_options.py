"""Options of the LLM-driven synthesis components (TOML tables under a component choice)."""

from __future__ import annotations

from typing import Any

import attrs

from astra_core.options import KIND_METADATA_KEY, ComponentSpec, at_least, component, option, within

# The paper's authors' agent system prompt, with the server named so the model knows its tools.
DEFAULT_AGENT_SYSTEM_PROMPT = (
    "You are an assistant with access to the tools of {title}. {description}\n"
    "Plan and think about the task before calling functions in every turn. Call only the tools "
    "you are offered, with arguments that follow their schemas, and finish with an answer "
    "based on what the tools returned. The language must be consistent with the user's language."
)
DEFAULT_PERSONAS = (
    "a busy professional who writes short, direct requests",
    "a newcomer who is unsure of the right terms and explains the situation at length",
    "an expert who states precise constraints and expects exact figures",
    "a careful planner who mentions preferences and a follow-up need",
)
AUGMENTATION_MODES = ("paraphrase", "complexity", "persona")
TASK_SCORE_DIMENSIONS = (
    "question_quality",
    "scenario_realism",
    "tool_necessity",
    "difficulty",
    "uniqueness",
)
DEFAULT_TASK_THRESHOLDS = {"question_quality": 3.0, "scenario_realism": 3.0, "tool_necessity": 3.0}


def _llm_metadata(text: str) -> dict[str, str]:
    # A nested llm_backend that may be left out (None: fall back to another option).
    return {KIND_METADATA_KEY: "llm_backend", "help": text}


def _modes(_: Any, attribute: attrs.Attribute, value: tuple[str, ...]) -> None:
    unknown = [m for m in value if m not in AUGMENTATION_MODES]
    if unknown:
        raise ValueError(
            f"{attribute.name}: unknown augmentation {unknown[0]!r}; "
            f"available: {', '.join(AUGMENTATION_MODES)}"
        )


def _thresholds(_: Any, attribute: attrs.Attribute, value: dict[str, float]) -> None:
    unknown = [k for k in value if k not in TASK_SCORE_DIMENSIONS]
    if unknown:
        raise ValueError(
            f"{attribute.name}: unknown task score {unknown[0]!r}; "
            f"the scores are: {', '.join(TASK_SCORE_DIMENSIONS)}"
        )
    bad = [k for k, v in value.items() if not 1.0 <= v <= 5.0]
    if bad:
        raise ValueError(f"{attribute.name}.{bad[0]} must be within [1, 5] (scores are 1-5)")


def _tool_counts(_: Any, attribute: attrs.Attribute, value: tuple[int, ...]) -> None:
    if any(n < 1 for n in value):
        raise ValueError(f"{attribute.name}: every tool count must be >= 1, got {list(value)}")


@attrs.frozen
class LLMPipelineOptions:
    """Options of the ``llm-pipeline`` trajectory sampler (the paper's pipeline 1 with an LLM)."""

    llm: ComponentSpec = component(
        "llm_backend",
        help="the LLM that proposes chains, verifies them, writes, augments and scores tasks, "
        "and acts as the agent",
    )
    judge_llm: Any = attrs.field(
        default=None,
        metadata=_llm_metadata("a separate LLM for the trajectory judge (None: llm)"),
    )
    emulator_llm: Any = attrs.field(
        default=None,
        metadata=_llm_metadata(
            "the LLM behind an llm-emulator executor that names none itself (None: llm)"
        ),
    )
    executor: ComponentSpec = component(
        "tool_executor",
        default="llm-emulator",
        help="runs the agent's calls: python-catalog (bundled tools), mcp (live MCP servers) "
        "or llm-emulator (servers with no implementation)",
    )
    workers: int = option(
        "chains, tasks and rollouts worked on at once (LLM requests are further bounded by "
        "the backend's max_concurrency)",
        8,
        validator=at_least(1),
    )
    # -- step 1: LLM-proposed chains -> graph edges
    propose_chains: bool = option(
        "ask the LLM for (task, chain) pairs per server and add an edge for each consecutive "
        "pair (weight = count), unioned with the source's edges",
        True,
    )
    proposal_samples: int = option(
        "chain-proposal answers drawn per server (seed=i each)", 1, validator=at_least(1)
    )
    # -- step 2: random walks
    min_length: int = option("fewest tools in a chain (the paper: 2)", 2, validator=at_least(1))
    max_length: int = option("most tools in a chain (the paper: 5)", 5, validator=at_least(1))
    acyclic: bool = option("walks never visit a tool twice", True)
    walks_per_server: int = option(
        "random-walk attempts per server graph", 200, validator=at_least(1)
    )
    max_chains_per_server: int = option(
        "distinct chains kept per server (walks stop once reached)", 8, validator=at_least(1)
    )
    # -- step 3: chain verification
    check_arguments: bool = option(
        "drop chains whose steps need an argument the schemas say comes from a tool that does "
        "not run earlier in the chain",
        True,
    )
    vote_samples: int = option(
        "LLM votes on whether a chain makes a coherent task (majority; 0: no vote)",
        3,
        validator=at_least(0),
    )
    back_translation: bool = option(
        "chain -> query -> chain round trip; the chain is kept only when it comes back unchanged",
        True,
    )
    # -- step 4: tasks
    tasks_per_chain: int = option(
        "chain-conditioned tasks written per verified chain", 1, validator=at_least(0)
    )
    server_tasks: int = option(
        "server-only tasks written per server (for each entry of server_task_tools)",
        1,
        validator=at_least(0),
    )
    server_task_tools: tuple[int, ...] = option(
        "how many tools a server-only task should need; one request per entry (the authors "
        "merge 2 and 3)",
        (2, 3),
        validator=_tool_counts,
    )
    augmentations: tuple[str, ...] = option(
        "rewrites of each task: paraphrase (other wording, same intent), complexity (added "
        "constraints, same goal), persona (a user persona); () for none",
        ("paraphrase", "complexity", "persona"),
        validator=_modes,
    )
    variations: int = option(
        "rewrites asked for per task and augmentation", 1, validator=at_least(1)
    )
    personas: tuple[str, ...] = option(
        "personas the persona augmentation draws from (seeded)", DEFAULT_PERSONAS
    )
    task_thresholds: dict[str, float] = attrs.field(
        factory=lambda: dict(DEFAULT_TASK_THRESHOLDS),
        validator=_thresholds,
        metadata={
            "help": "minimum 1-5 score per task dimension (question_quality, scenario_realism, "
            "tool_necessity, difficulty, uniqueness); a task below any is dropped"
        },
    )
    # -- step 5: rollout
    max_turns: int = option(
        "most assistant turns per rollout (the authors: 20 LLM calls); a rollout that still "
        "calls tools at the cap fails",
        10,
        validator=at_least(1),
    )
    system_prompt: str = option(
        "the agent's system message; {title} and {description} are the server's",
        DEFAULT_AGENT_SYSTEM_PROMPT,
    )
    keep_invalid_calls: bool = option(
        "keep trajectories in which the agent named a tool it was not offered or sent "
        "arguments that fail the schema (they got an error observation); False: such "
        "trajectories fail, so every call in the data is valid",
        False,
    )
    # -- step 6: judge
    judge_threshold: float = option(
        "trajectories whose mean of the seven judge scores is below this fail (0-1)",
        0.6,
        validator=within(0, 1),
    )
    judge_max_output_chars: int = option(
        "tool outputs are cut to this length in judge prompts", 2000, validator=at_least(100)
    )
    # -- sampling per role
    synthesis_sampling: dict[str, Any] = attrs.field(
        factory=dict,
        metadata={"help": "sampling overrides for chain, task and verification calls"},
    )
    agent_sampling: dict[str, Any] = attrs.field(
        factory=dict, metadata={"help": "sampling overrides for the agent's calls"}
    )
    judge_sampling: dict[str, Any] = attrs.field(
        factory=dict, metadata={"help": "sampling overrides for the judge's calls"}
    )

    def __attrs_post_init__(self) -> None:
        if self.max_length < self.min_length:
            raise ValueError(
                f"max_length ({self.max_length}) must be >= min_length ({self.min_length})"
            )
        if "persona" in self.augmentations and not self.personas:
            raise ValueError("personas: the persona augmentation needs at least one persona")


@attrs.frozen
class LLMEmulatorOptions:
    """Options of the ``llm-emulator`` tool executor."""

    llm: Any = attrs.field(
        default=None,
        metadata=_llm_metadata(
            "the LLM that plays the tools (None: the sampler's emulator_llm or llm)"
        ),
    )
    failure_rate: float = option(
        "probability that a call fails with a timeout or unreachable-service error instead of "
        "being answered (the paper: 0.2); drawn from a generator seeded by the run seed and "
        "the session",
        0.2,
        validator=within(0, 1),
    )
    history_window: int = option(
        "earlier calls of the session shown to the emulator for consistency (the authors: 5)",
        5,
        validator=at_least(0),
    )
    show_task_probability: float = option(
        "probability that a session's emulator also sees the user's request (the authors: 0.5)",
        0.5,
        validator=within(0, 1),
    )
    max_output_chars: int = option(
        "emulated outputs longer than this are cut (with a note)", 8000, validator=at_least(100)
    )
    sampling: dict[str, Any] = attrs.field(
        factory=dict, metadata={"help": "sampling overrides for the emulator's calls"}
    )
