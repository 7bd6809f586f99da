"""Every hook ASTRA calls, grouped by phase.

A plugin is a module (or an object) with functions named like these hooks, marked with
``@astra_core.hookimpl``. It may implement any subset, and may take any subset of a hook's
arguments (pluggy matches them by name). Unmarked functions whose name starts with ``astra_`` are
treated as hook implementations too, so a misspelt hook is an error at start-up, not silence.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from astra_core._markers import hookspec

if TYPE_CHECKING:
    import argparse
    import random

    from astra_core.config import RunConfig
    from astra_core.context import StageContext
    from astra_core.protocols import ArenaRuntime, Sandbox
    from astra_core.records import Arena, Trajectory
    from astra_core.registry import Registrar
    from astra_core.report import StageSummary

__all__ = [
    "astra_add_commands",
    "astra_arena_demonstrations",
    "astra_arena_renamed",
    "astra_arena_runtime",
    "astra_arena_verifier",
    "astra_filter_record",
    "astra_record_dropped",
    "astra_record_kept",
    "astra_register_arena_steps",
    "astra_register_environment_generators",
    "astra_register_evaluators",
    "astra_register_llm_backends",
    "astra_register_rl_algorithms",
    "astra_register_sandboxes",
    "astra_register_tool_call_parsers",
    "astra_register_tool_executors",
    "astra_register_tool_graph_builders",
    "astra_register_tool_graph_sources",
    "astra_register_trackers",
    "astra_register_trainers",
    "astra_register_trajectory_samplers",
    "astra_register_trajectory_steps",
    "astra_register_verifiers",
    "astra_report_sections",
    "astra_run_end",
    "astra_run_start",
    "astra_stage_end",
    "astra_stage_start",
    "astra_train_step_end",
]

# ---------------------------------------------------------------------------------------------
# Registration: fired once per plugin while plugins are loaded, before any config is read.
# Each receives a ``registry`` bound to the calling plugin; ``registry.add(name, factory,
# options=OptionsClass, description=...)`` makes a component selectable by ``name`` in a config.
# A factory is called as ``factory(options, builder)`` and returns an object that satisfies the
# kind's Protocol in ``astra_core.protocols``. ``preflight=check`` adds what the component needs
# of the machine: ``check(options, base_dir)`` returns ``astra_core.preflight.Problem`` s, asked by
# ``astra config check`` and before the first stage of ``astra run``. A name registered twice is
# an error naming both plugins. Return value: ignored.


@hookspec
def astra_register_tool_graph_sources(registry: Registrar) -> None:
    """Register tool-graph sources: components whose ``load(ctx)`` yields one ``ToolGraph`` per
    tool server (from a catalog file, live MCP servers, ...). Used by ``synth-trajectories``."""


@hookspec
def astra_register_tool_graph_builders(registry: Registrar) -> None:
    """Register tool-graph builders: components whose ``build(server)`` returns the
    ``ToolGraph`` of one ``ToolServer`` (its edges: which tool's output can feed which tool).
    Used by tool-graph sources, which build the one their ``graph_builder`` option names."""


@hookspec
def astra_register_trajectory_steps(registry: Registrar) -> None:
    """Register trajectory steps: components with a ``step`` attribute naming the slot of a
    sampler they fill (``chain_verifier``, ``task_generator``, ``agent``, ``judge``) and that
    slot's call. Used by trajectory samplers, which build the step their options name."""


@hookspec
def astra_register_trajectory_samplers(registry: Registrar) -> None:
    """Register trajectory samplers: components whose ``sample(graph, ctx)`` turns one server's
    tool graph into SFT ``Trajectory`` records. Used by ``synth-trajectories``."""


@hookspec
def astra_register_environment_generators(registry: Registrar) -> None:
    """Register environment generators: components whose ``generate(ctx)`` yields verified
    ``Arena`` records (RL environments). Used by ``synth-arenas``."""


@hookspec
def astra_register_arena_steps(registry: Registrar) -> None:
    """Register arena steps: components with a ``step`` attribute naming the slot of an
    environment generator they fill (``qa_source``, ``decomposer``, ``necessity_checker``,
    ``quality_scorer``, ``tool_writer``, ``tool_merger``) and that slot's call. Used by
    environment generators, which build the step their options name."""


@hookspec
def astra_register_verifiers(registry: Registrar) -> None:
    """Register verifiers: components whose ``score(arena, episode)`` returns a ``Reward``
    computed by rules, ``Reward.success`` saying whether the episode succeeded. Used by RL
    training and eval (see ``astra_arena_verifier``)."""


@hookspec
def astra_register_rl_algorithms(registry: Registrar) -> None:
    """Register RL algorithms: components with ``advantages(rewards)`` and
    ``policy_loss(logprobs, old_logprobs, advantages, mask)``. Used by ``train-rl``."""


@hookspec
def astra_register_llm_backends(registry: Registrar) -> None:
    """Register LLM backends: components with ``chat(messages, tools=..., **sampling)`` returning
    a ``ChatResponse``. Built by other components through ``builder.build("llm_backend", ...)``."""


@hookspec
def astra_register_tool_executors(registry: Registrar) -> None:
    """Register tool executors: components with ``call(server, call)`` returning a
    ``ToolCallResult`` (live MCP call, Python implementation, LLM emulator)."""


@hookspec
def astra_register_sandboxes(registry: Registrar) -> None:
    """Register sandboxes: components with ``run(code, timeout_s=...)`` returning a
    ``SandboxResult``. Everything untrusted runs in one."""


@hookspec
def astra_register_tool_call_parsers(registry: Registrar) -> None:
    """Register tool-call parsers: components with ``parse(text)`` returning a ``ParsedTurn`` and
    ``format(calls)`` returning text in the same format."""


@hookspec
def astra_register_trackers(registry: Registrar) -> None:
    """Register trackers: components with ``log(metrics, step)`` and ``close()``."""


@hookspec
def astra_register_trainers(registry: Registrar) -> None:
    """Register trainers: components with ``run(ctx)`` returning a dict of metrics. The
    ``train-sft`` and ``train-rl`` stages each run the trainer their section names."""


@hookspec
def astra_register_evaluators(registry: Registrar) -> None:
    """Register evaluators: components with ``run(ctx)`` returning a dict of metrics. Fired once
    when the plugins are loaded, like every registration hook; the ``eval`` stage runs the
    evaluator its ``[eval.evaluator]`` section names. Return value: ignored."""


# ---------------------------------------------------------------------------------------------
# Command line: fired once when the ``astra`` parser is built.


@hookspec
def astra_add_commands(subparsers: argparse._SubParsersAction[Any]) -> None:
    """Add sub-commands to ``astra``. Call ``subparsers.add_parser(...)`` and give the parser a
    ``func`` default: ``parser.set_defaults(func=callable)``; the callable receives the parsed
    ``argparse.Namespace`` and returns an exit status. Pass
    ``parents=[astra_core.cli.common_options()]`` to accept ``-v``/``-q``/``--plugin`` after the
    sub-command as the core commands do. Return value: ignored."""


# ---------------------------------------------------------------------------------------------
# Runs and stages: fired by ``astra_core.run`` and by every stage run alone.


@hookspec
def astra_run_start(config: RunConfig, out_dir: str) -> None:
    """Fired before the first stage of ``astra run``. Return value: ignored."""


@hookspec
def astra_run_end(config: RunConfig, out_dir: str, summaries: list[StageSummary]) -> None:
    """Fired after the last stage of ``astra run``, after ``report.json`` is written, with one
    summary per stage that ran. Return value: ignored."""


@hookspec
def astra_report_sections(out_dir: str, summaries: list[StageSummary]) -> list[str] | None:
    """Fired while ``report.md`` is written, after every stage of ``astra run``. Return Markdown
    sections (each starting with a ``##`` heading) to append to the report, e.g. an eval table or
    a plot a plugin saved under ``out_dir``; return ``None`` to add nothing."""


@hookspec
def astra_stage_start(stage: str, ctx: StageContext) -> None:
    """Fired when a stage starts (also when it resumes), before it produces anything.
    Return value: ignored."""


@hookspec
def astra_stage_end(stage: str, ctx: StageContext, summary: StageSummary) -> None:
    """Fired when a stage has finished and its manifest is written. Return value: ignored."""


# ---------------------------------------------------------------------------------------------
# Records: fired for every record a synthesis stage produces.


@hookspec(firstresult=True)
def astra_filter_record(stage: str, record: Any) -> str | None:
    """Decide whether a record (``Trajectory``, ``Arena``) is kept. Return a reason string to
    drop it, or ``None`` to keep it; the first reason returned wins and is counted in the stage
    manifest."""


@hookspec
def astra_record_kept(stage: str, record: Any) -> None:
    """Fired after a record was written to the stage's dataset. Return value: ignored."""


@hookspec
def astra_record_dropped(stage: str, record_id: str, reason: str) -> None:
    """Fired when a record was dropped (by a component or by ``astra_filter_record``), with the
    reason counted in the manifest. Return value: ignored."""


# ---------------------------------------------------------------------------------------------
# Arenas: fired by trainers and evaluators (``train-sft``, ``train-rl``, ``eval``) for each arena
# they use. Every hook here is firstresult: the plugin that knows the arena's kind (e.g. by its
# ``metadata["source"]``) answers, the others return ``None``; the ``arenas`` plugin answers
# last, for any arena. So arenas of several kinds mix in one run, each handled by its own rules.


@hookspec(firstresult=True)
def astra_arena_runtime(arena: Arena, sandbox: Sandbox) -> ArenaRuntime | None:
    """Fired once per episode: return the runtime that plays ``arena`` with ``sandbox`` (an
    ``ArenaRuntime``: ``reset()``, ``step(call) -> ToolCallResult``, ``close()``; a
    ``MultiTurnRuntime`` for arenas with several user turns also has ``next_turn()``, asked
    for when the model answers without a call, and ``tools``, the schemas offered now), or
    ``None`` to leave the arena to another plugin."""


@hookspec(firstresult=True)
def astra_arena_verifier(arena: Arena) -> str | None:
    """Fired once per arena a trainer or evaluator scores, unless its options name one
    verifier for all arenas: return the registered name of the verifier that scores
    ``arena`` (e.g. ``"subtask-f1"``), or ``None`` to leave it to another plugin. Each name is
    built once per stage, with its default options."""


@hookspec(firstresult=True)
def astra_arena_renamed(arena: Arena, rng: random.Random) -> Arena | None:
    """Fired when ``train-rl`` (``rename_arenas``) picks ``arena`` for a group: return the
    same arena over fresh entity names drawn from ``rng``, or ``None`` when this plugin does
    not rename arenas of this kind (the first plugin that does wins; an arena no plugin
    renames is played as it is)."""


@hookspec(firstresult=True)
def astra_arena_demonstrations(
    arena: Arena, sandbox: Sandbox, renamings: int, retries: int, seed: int
) -> list[Trajectory] | None:
    """Fired by ``train-sft`` (``arena_demos``) for each training arena: return demonstrations
    of ``arena`` (its verified gold calls replayed with ``sandbox``, followed by ``renamings``
    copies over fresh names drawn from ``seed``, the first ``retries`` of which recover from
    one misspelt call), or ``None`` when this plugin cannot demonstrate arenas of this kind."""


# ---------------------------------------------------------------------------------------------
# Training: fired by trainers.


@hookspec
def astra_train_step_end(stage: str, step: int, metrics: dict[str, float]) -> None:
    """Fired after every optimizer step of a trainer, with that step's metrics (loss, reward and
    its parts, throughput, ...). Return value: ignored."""
