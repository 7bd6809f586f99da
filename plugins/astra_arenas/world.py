"""A small generated world of entities and facts, fresh for every arena.

People, companies, cities, countries and products with attributes and relations between them.
Every relation of ``WORLD_RELATIONS`` has exactly one value per subject, so every chain of
lookups has one answer. A few facts are kept consistent on purpose (a country's capital lies in
that country, a CEO works for the company), the rest are drawn at random.
"""

from __future__ import annotations

import random
from decimal import Decimal

import attrs

from astra_arenas.names import NameForge
from astra_arenas.relations import WORLD_KINDS, WORLD_RELATIONS, Relation

Value = str | int | float


def format_value(value: Value) -> str:
    """The text of a value as a tool prints it (JSON) and as a gold answer holds it."""
    if isinstance(value, bool):
        raise TypeError("facts are never booleans")
    if isinstance(value, float):
        return f"{value:.2f}"
    return str(value)


def draw_attribute(relation: Relation, rng: random.Random) -> Value:
    """A random attribute value for ``relation`` (year, count, money or label)."""
    if relation.value in ("year", "count"):
        return rng.randint(relation.low, relation.high)
    if relation.value == "money":
        # A non-zero last cent digit: JSON prints 12.49 as "12.49", never "12.5" for "12.50".
        cents = rng.choice([c for c in range(1, 100) if c % 10])
        value = float(Decimal(rng.randint(relation.low, relation.high - 1)) + Decimal(cents) / 100)
        assert repr(value) == format_value(value), value
        return value
    if relation.value == "label":
        return rng.choice(relation.choices)
    raise ValueError(f"relation {relation.name} has entity values, not attributes")


@attrs.define
class World:
    """Entities by kind and facts by relation name then subject."""

    entities: dict[str, list[str]]
    facts: dict[str, dict[str, Value]]

    def value(self, relation: Relation, subject: str) -> Value:
        return self.facts[relation.name][subject]

    def rows(self, relation: Relation) -> list[tuple[str, Value]]:
        return list(self.facts[relation.name].items())


def build_world(rng: random.Random, forge: NameForge, size: int = 6) -> World:
    """A world with ``size`` entities of each kind (fewer countries, each with >= 1 city)."""
    counts = {kind: size for kind in WORLD_KINDS}
    counts["country"] = max(2, size // 2)
    counts["person"] = size + 2  # CEOs and mayors are distinct people
    entities = {kind: [forge.new(kind) for _ in range(n)] for kind, n in counts.items()}
    facts: dict[str, dict[str, Value]] = {r.name: {} for r in WORLD_RELATIONS}

    # Cities spread over countries (every country gets one), capitals inside their country.
    countries, cities = entities["country"], entities["city"]
    city_country = {c: countries[i % len(countries)] for i, c in enumerate(cities)}
    facts["get_city_country"] = dict(city_country)
    facts["get_country_capital"] = {
        k: rng.choice([c for c in cities if city_country[c] == k]) for k in countries
    }
    # Each company has its own CEO, who works there.
    people = list(entities["person"])
    rng.shuffle(people)
    ceos: dict[str, Value] = dict(
        zip(entities["company"], people[: len(entities["company"])], strict=True)
    )
    facts["get_company_ceo"] = ceos
    employer: dict[str, Value] = {p: rng.choice(entities["company"]) for p in entities["person"]}
    employer.update({str(p): c for c, p in ceos.items()})
    facts["get_person_employer"] = employer

    for relation in WORLD_RELATIONS:
        table = facts[relation.name]
        if table:
            continue
        subjects = entities[relation.subject]
        if relation.is_entity and relation.value in entities:
            for s in subjects:
                table[s] = rng.choice(entities[relation.value])
        elif relation.is_entity:  # a value kind with its own fresh names (currencies)
            for s in subjects:
                table[s] = forge.new(relation.value)
        else:
            # Distinct values per relation, so "which has the largest ..." has one answer.
            seen: set[Value] = set()
            for s in subjects:
                value = draw_attribute(relation, rng)
                while value in seen and relation.value != "label":
                    value = draw_attribute(relation, rng)
                seen.add(value)
                table[s] = value
    return World(entities=entities, facts=facts)


def decoy_rows(
    relation: Relation, rng: random.Random, forge: NameForge, n: int
) -> list[tuple[str, Value]]:
    """Rows about fresh entities that belong to no question: the data of a distractor tool."""
    rows: list[tuple[str, Value]] = []
    for _ in range(n):
        subject = forge.new(relation.subject)
        value: Value = (
            forge.new(relation.value) if relation.is_entity else draw_attribute(relation, rng)
        )
        rows.append((subject, value))
    return rows
