"""Offline, template-driven task writing: a user request for a verified chain that names the
concrete values its first tool needs (and any other value the user must state), taken from the
server's real state, phrased from the tools' phrases or descriptions."""

from __future__ import annotations

import json
import random
import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, ClassVar

import attrs

from astra_core.records import Task, ToolChain, ToolServer
from astra_core.tool_schemas import tool_phrases
from astra_trajectories.chain_verification import Binding, ChainPlan, scenarios, schema_values

if TYPE_CHECKING:
    from astra_core.registry import ComponentBuilder
    from astra_trajectories.options import TemplateTaskOptions

GENERATOR = "offline-template"
PLACEHOLDER = re.compile(r"\{(\w+)\}")
OPENERS = ("", "", "Hi! ", "Hello. ", "I need some help. ", "Quick request: ")
LEADS = (("Please", "."), ("Can you", "?"), ("I'd like you to", "."), ("Could you", "?"))
CLOSINGS = (
    "",
    "",
    " Tell me what you find.",
    " Let me know how it goes.",
    " A short summary at the end is enough.",
)


def humanise(param: str) -> str:
    return param.replace("_", " ").strip()


def noun_of(param: str) -> str:
    words = humanise(param)
    return words[:-3] if words.endswith(" id") else words


def format_value(param: str, value: Any) -> str:
    """A stated value as it reads in a request: ids with their noun ("order ORD-1003")."""
    text = json.dumps(value, ensure_ascii=False) if isinstance(value, (dict, list)) else str(value)
    if isinstance(value, bool):
        text = "yes" if value else "no"
    if param.endswith("_id") or param == "id":
        return f"{noun_of(param)} {text}".strip()
    return text


def reference(binding: Binding) -> str:
    """How a request points at a value an earlier step will return."""
    noun = binding.entity or noun_of(binding.param)
    return f"the first {noun} found" if binding.from_array else f"that {noun}"


def phrase_template(server: ToolServer, tool: str) -> str:
    phrases = tool_phrases(server)
    if tool in phrases:
        return phrases[tool]
    # no phrase: the first sentence of the description, as an instruction
    description = str(server.tool(tool)["function"].get("description") or tool)
    sentence = description.split(". ")[0].rstrip(".").strip()
    return sentence[:1].lower() + sentence[1:] if sentence else tool.replace("_", " ")


def render_step(template: str, rendered: Mapping[str, str]) -> str:
    """Fill ``{param}`` placeholders; required values the template does not mention are
    appended, so the request always names what the call needs."""
    used = set(PLACEHOLDER.findall(template))
    text = PLACEHOLDER.sub(lambda m: rendered.get(m.group(1), humanise(m.group(1))), template)
    extra = [f"{humanise(p)}: {v}" for p, v in rendered.items() if p not in used]
    return f"{text} ({', '.join(extra)})" if extra else text


@attrs.frozen
class GeneratedTask:
    task: Task
    values: dict[str, Any]  # what the user stated, by parameter name


class TemplateTaskGenerator:
    """Writes ``tasks_per_chain`` requests per chain, each from another scenario of the server
    (another customer, city, book...), so the data varies in entities and values."""

    name: ClassVar[str] = GENERATOR
    step: ClassVar[str] = "task_generator"

    def __init__(self, options: TemplateTaskOptions, builder: ComponentBuilder) -> None:
        self.count = options.tasks_per_chain

    def value_sets(
        self, server: ToolServer, plan: ChainPlan, rng: random.Random
    ) -> list[dict[str, Any]]:
        needed = plan.user_params
        fallback = schema_values(server)
        pool = scenarios(server) or [{}]
        rng.shuffle(pool)
        out: list[dict[str, Any]] = []
        seen: set[str] = set()
        for scenario in pool:
            values: dict[str, Any] = {}
            for param in needed:
                if param in scenario:
                    values[param] = scenario[param]
                elif fallback.get(param):
                    values[param] = rng.choice(fallback[param])
                else:
                    break
            else:
                key = json.dumps(values, sort_keys=True, default=str)
                if key not in seen:
                    seen.add(key)
                    out.append(values)
            if len(out) >= self.count:
                break
        return out

    def query(
        self, server: ToolServer, plan: ChainPlan, values: Mapping[str, Any], rng: random.Random
    ) -> str:
        steps = []
        for step in plan.steps:
            rendered = {
                b.param: format_value(b.param, values[b.param])
                if b.source == "user"
                else reference(b)
                for b in step.bindings
            }
            steps.append(render_step(phrase_template(server, step.tool), rendered))
        lead, stop = rng.choice(LEADS)
        if len(steps) == 1:
            body = steps[0]
        elif len(steps) == 2:
            body = f"{steps[0]}, and then {steps[1]}"
        else:
            body = f"{steps[0]}, then " + ", then ".join(steps[1:-1]) + f", and finally {steps[-1]}"
        return f"{rng.choice(OPENERS)}{lead} {body}{stop}{rng.choice(CLOSINGS)}".strip()

    def generate(
        self, server: ToolServer, plan: ChainPlan, chain: ToolChain, rng: random.Random
    ) -> list[GeneratedTask]:
        out = []
        for values in self.value_sets(server, plan, rng):
            task = Task(
                query=self.query(server, plan, values, rng),
                server_id=server.id,
                target_tools=plan.tools,
                origin="chain",
                chain_id=chain.id,
                metadata={
                    "generator": GENERATOR,
                    "user_values": json.dumps(values, ensure_ascii=False, sort_keys=True),
                },
            )
            out.append(GeneratedTask(task, values))
        return out
