"""Multi-hop questions over a generated world, in the paper's four topologies.

A question comes with its answer and its decomposition: tool steps (one lookup each) and at
most one non-tool step, always a leaf (a comparison, a sum or a subtraction over tool answers).

* ``single``: one lookup (optionally followed by arithmetic);
* ``parallel-single``: 2+ independent lookups (compared, summed, or asked for together);
* ``multi``: a chain where each lookup takes the previous answer;
* ``parallel-multi``: 2+ chains, at least one of two or more hops, then combined.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from decimal import Decimal

import attrs

from astra_arenas.relations import WORLD_RELATIONS, Relation
from astra_arenas.world import World, format_value

REFERENCE_YEAR = 2025
_PERSON_KINDS = ("person", "artist", "doctor")


class PlanError(Exception):
    """No question of the requested shape could be built from this world."""


@attrs.frozen
class ToolStep:
    id: str
    relation: Relation
    subject: str
    answer: str
    depends_on: tuple[str, ...]
    question: str


@attrs.frozen
class LeafStep:
    id: str
    question: str
    answer: str
    depends_on: tuple[str, ...]


@attrs.frozen
class QAPlan:
    question: str
    answer: str
    topology: str
    steps: tuple[ToolStep | LeafStep, ...]
    hops: int

    @property
    def tool_steps(self) -> tuple[ToolStep, ...]:
        return tuple(s for s in self.steps if isinstance(s, ToolStep))


def gives_away(plan: QAPlan) -> bool:
    """Whether a lookup's gold answer can be read before its own call is made: in the question,
    or in the gold output of a lookup that does not take it as its subject (every output
    repeats its subject), as in "What is the capital of Dusmark, and what is the population of
    Mou?" where Mou is Dusmark's capital. The subtask-f1 verifier would count such a lookup
    solved without it."""
    steps = plan.tool_steps
    for step in steps:
        if step.answer in plan.question:
            return True
        for other in steps:
            if other is step:
                continue
            # a lookup that takes this answer as its subject shows it, rightly, after it
            shown = other.answer
            if step.id not in other.depends_on:
                shown += "\n" + other.subject
            if step.answer in shown:
                return True
    return False


# A hop of a chain: (relation, subject, value).
Hop = tuple[Relation, str, object]


def _wh(relation: Relation) -> str:
    return "Who is" if relation.value in _PERSON_KINDS else "What is"


def _phrase(chain: Sequence[Hop], upto: int | None = None) -> str:
    """ "the population of the home city of Vel Tora" for the first ``upto`` hops."""
    hops = chain[:upto] if upto is not None else chain
    text = str(chain[0][1])
    for relation, _, _ in hops:
        text = f"the {relation.noun} of {text}"
    return text


def _join(items: Sequence[str], last: str = "and") -> str:
    return items[0] if len(items) == 1 else f"{', '.join(items[:-1])} {last} {items[-1]}"


def _ask_all(clauses: Sequence[str]) -> str:
    """ "What is A, who is B, and what is C?" from capitalised clauses."""
    rest = [c[0].lower() + c[1:] for c in clauses[1:]]
    return f"{clauses[0]}, {', '.join(rest[:-1]) + ', ' if rest[:-1] else ''}and {rest[-1]}?"


class QuestionBuilder:
    """Builds ``QAPlan``s of a topology from one world with one random generator."""

    def __init__(
        self,
        world: World,
        rng: random.Random,
        *,
        min_hops: int,
        max_hops: int,
        max_branches: int,
        leaf_probability: float,
        relations: Sequence[Relation] = WORLD_RELATIONS,
    ) -> None:
        self.world = world
        self.relations = tuple(relations)
        self.rng = rng
        self.min_hops = min_hops
        self.max_hops = max_hops
        self.max_branches = max_branches
        self.leaf_probability = leaf_probability
        self._pairs: set[tuple[str, str]] = set()

    # -- chains --------------------------------------------------------------------------------

    def _relations_from(self, kind: str) -> list[Relation]:
        return [r for r in self.relations if r.subject == kind]

    def _numeric(self) -> Relation:
        numeric = [r for r in self.relations if r.is_numeric]
        if not numeric:
            raise PlanError("no numeric relation to compare among the allowed relations")
        return self.rng.choice(numeric)

    def _walk(
        self,
        length: int,
        final: Callable[[Relation], bool],
        *,
        end_kind: str | None = None,
        avoid: set[str] | None = None,
    ) -> list[Hop] | None:
        """A chain of ``length`` lookups whose last relation satisfies ``final``. Entities are
        never revisited and a (relation, subject) pair is never used twice in one question."""
        avoid = avoid or set()
        kinds = [k for k, v in self.world.entities.items() if self._relations_from(k)]
        for _ in range(200):
            kind = self.rng.choice(kinds)
            subject = self.rng.choice(self.world.entities[kind])
            if subject in avoid:
                continue
            seen = {subject}
            chain: list[Hop] = []
            for i in range(length):
                last = i == length - 1
                options = self._relations_from(kind)
                self.rng.shuffle(options)
                picked = None
                for r in options:
                    if (r.name, subject) in self._pairs:
                        continue
                    if last:
                        if final(r) and (end_kind is None or r.subject == end_kind):
                            picked = r
                            break
                    elif r.is_entity and r.value in self.world.entities:
                        nxt = self.world.value(r, subject)
                        if nxt not in seen and nxt not in avoid:
                            picked = r
                            break
                if picked is None:
                    break
                value = self.world.value(picked, subject)
                chain.append((picked, subject, value))
                if not last:
                    seen.add(str(value))
                    kind, subject = picked.value, str(value)
            if len(chain) == length:
                self._pairs.update((r.name, s) for r, s, _ in chain)
                return chain
        return None

    def _steps(self, chain: Sequence[Hop], first_id: int) -> list[ToolStep]:
        steps: list[ToolStep] = []
        for i, (r, subject, value) in enumerate(chain):
            sid = f"q{first_id + i}"
            deps = (steps[-1].id,) if steps else ()
            question = f"{_wh(r)} the {r.noun} of {subject}?"
            steps.append(ToolStep(sid, r, subject, format_value(value), deps, question))  # type: ignore[arg-type]
        return steps

    # -- leaves --------------------------------------------------------------------------------

    def _years_since(self, last: ToolStep, phrase: str, sid: str) -> tuple[str, str, LeafStep]:
        years = REFERENCE_YEAR - int(last.answer)
        question = f"How many years before {REFERENCE_YEAR} was {phrase}?"
        leaf = LeafStep(
            sid,
            f"How many years are there between {last.answer} and {REFERENCE_YEAR}?",
            str(years),
            (last.id,),
        )
        return question, str(years), leaf

    def _combine(
        self,
        relation: Relation,
        subjects: Sequence[str],
        phrases: Sequence[str],
        finals: Sequence[ToolStep],
        sid: str,
        kind: str,
    ) -> tuple[str, str, LeafStep]:
        """Compare (or sum) the same numeric relation over several subjects."""
        values = [Decimal(s.answer) for s in finals]
        deps = tuple(s.id for s in finals)
        can_sum = relation.value in ("count", "money")
        if can_sum and self.rng.random() < 0.35:
            total = sum(values, Decimal(0))
            answer = f"{total:.2f}" if relation.value == "money" else str(int(total))
            question = f"What is the combined {relation.noun} of {_join(list(phrases))}?"
            listed = " + ".join(s.answer for s in finals)
            return question, answer, LeafStep(sid, f"What is {listed}?", answer, deps)
        largest = self.rng.random() < 0.5
        pick = values.index(max(values) if largest else min(values))
        if relation.value == "year":
            word = "latest" if largest else "earliest"
        else:
            word = "largest" if largest else "smallest"
        answer = subjects[pick]
        if kind:
            question = f"Which {kind} has the {word} {relation.noun}: {_join(list(phrases), 'or')}?"
        else:
            question = f"Which of {_join(list(phrases))} has the {word} {relation.noun}?"
        pairs = ", ".join(f"{s} ({f.answer})" for s, f in zip(subjects, finals, strict=True))
        leaf = LeafStep(sid, f"Which of {pairs} has the {word} {relation.noun}?", answer, deps)
        return question, answer, leaf

    # -- topologies ----------------------------------------------------------------------------

    def build(self, topology: str) -> QAPlan:
        self._pairs = set()
        make = {
            "single": self.single,
            "parallel-single": self.parallel_single,
            "multi": self.multi,
            "parallel-multi": self.parallel_multi,
        }[topology]
        for _ in range(20):
            plan = make()
            if plan is not None and not gives_away(plan):
                return plan
            self._pairs = set()
        raise PlanError(f"no {topology} question could be built from this world")

    def single(self) -> QAPlan | None:
        with_leaf = self.rng.random() < self.leaf_probability
        chain = self._walk(1, (lambda r: r.value == "year") if with_leaf else (lambda r: True))
        if chain is None:
            return None
        (step,) = self._steps(chain, 1)
        if with_leaf:
            question, answer, leaf = self._years_since(step, _phrase(chain), "q2")
            return QAPlan(question, answer, "single", (step, leaf), 1)
        question = f"{_wh(chain[0][0])} {_phrase(chain)}?"
        return QAPlan(question, step.answer, "single", (step,), 1)

    def parallel_single(self) -> QAPlan | None:
        k = self.rng.randint(2, max(2, self.max_branches))
        if self.rng.random() < 0.6:  # the same numeric relation over k subjects, then a leaf
            relation = self._numeric()
            subjects = list(self.world.entities[relation.subject])
            if len(subjects) < k:
                return None
            subjects = self.rng.sample(subjects, k)
            chains = [[(relation, s, self.world.value(relation, s))] for s in subjects]
            steps = [self._steps(c, i + 1)[0] for i, c in enumerate(chains)]
            if len({s.answer for s in steps}) < k:
                return None
            question, answer, leaf = self._combine(
                relation, subjects, subjects, steps, f"q{k + 1}", ""
            )
            return QAPlan(question, answer, "parallel-single", (*steps, leaf), 1)
        steps = []
        clauses = []
        for i in range(k):
            chain = self._walk(1, lambda r: True)
            if chain is None:
                return None
            steps.extend(self._steps(chain, i + 1))
            clauses.append(f"{_wh(chain[0][0])} {_phrase(chain)}")
        question = _ask_all(clauses)
        answer = "; ".join(s.answer for s in steps)
        return QAPlan(question, answer, "parallel-single", tuple(steps), 1)

    def _hops(self) -> int:
        low = max(2, self.min_hops)
        return self.rng.randint(low, max(low, self.max_hops))

    def multi(self) -> QAPlan | None:
        length = self._hops()
        with_leaf = self.rng.random() < self.leaf_probability
        final = (lambda r: r.value == "year") if with_leaf else (lambda r: True)
        chain = self._walk(length, final)
        if chain is None:
            return None
        steps = self._steps(chain, 1)
        if with_leaf:
            question, answer, leaf = self._years_since(steps[-1], _phrase(chain), f"q{length + 1}")
            return QAPlan(question, answer, "multi", (*steps, leaf), length)
        question = f"{_wh(chain[-1][0])} {_phrase(chain)}?"
        return QAPlan(question, steps[-1].answer, "multi", tuple(steps), length)

    def parallel_multi(self) -> QAPlan | None:
        k = self.rng.randint(2, max(2, min(self.max_branches, 3)))
        longest = self._hops()
        lengths = [longest] + [self.rng.randint(1, longest) for _ in range(k - 1)]
        self.rng.shuffle(lengths)
        if self.rng.random() < 0.6:
            return self._parallel_multi_combined(lengths)
        chains = []
        for n in lengths:
            chain = self._walk(n, lambda r: True)
            if chain is None:
                return None
            chains.append(chain)
        steps: list[ToolStep] = []
        clauses = []
        for chain in chains:
            steps.extend(self._steps(chain, len(steps) + 1))
            clauses.append(f"{_wh(chain[-1][0])} {_phrase(chain)}")
        question = _ask_all(clauses)
        finals = [s for s in steps if not any(s.id in t.depends_on for t in steps)]
        answer = "; ".join(s.answer for s in finals)
        return QAPlan(question, answer, "parallel-multi", tuple(steps), longest)

    def _parallel_multi_combined(self, lengths: Sequence[int]) -> QAPlan | None:
        relation = self._numeric()
        chains = []
        ends: set[str] = set()
        for n in lengths:
            chain = self._walk(n, lambda r: r.name == relation.name, avoid=ends)
            if chain is None:
                return None
            ends.add(str(chain[-1][1]))
            chains.append(chain)
        steps: list[ToolStep] = []
        finals: list[ToolStep] = []
        for chain in chains:
            part = self._steps(chain, len(steps) + 1)
            steps.extend(part)
            finals.append(part[-1])
        if len({s.answer for s in finals}) < len(finals):
            return None
        subjects = [str(c[-1][1]) for c in chains]
        phrases = [_phrase(c, len(c) - 1) for c in chains]
        question, answer, leaf = self._combine(
            relation, subjects, phrases, finals, f"q{len(steps) + 1}", relation.subject
        )
        return QAPlan(question, answer, "parallel-multi", (*steps, leaf), max(lengths))
