"""A scripted stand-in for a capable LLM, answering the prompts of the ``qa-llm`` generator.

RECORDED / SYNTHETIC: no model wrote these answers. They are written by this script, per
prompt, in the shape a capable instruction-following model gives to the project's own prompts
(``astra_qa_arenas/prompts.py``): JSON decompositions in the authors' format, tool documents,
call statements and standard-library Python tools holding mock data. The answers come from a
table of question families below, so the example and the tests can show the whole pipeline
without an endpoint. ``record_cache.py`` serves this model on loopback and stores its answers
in the response cache shipped with ``examples/arenas-from-questions.toml``.

``quirks`` make it answer like a fallible model on chosen questions (used by
tests/test_qa_arenas.py): ``malformed`` (broken JSON first, repaired when the parse error is
shown), ``leaf`` (a non-tool step that another step needs), ``raises`` (tool code that raises,
repaired from the traceback), ``wrong`` (tool code that prints the answer escaped, repaired from
the output), ``merge_breaks`` (every merge answer loses the base row).
"""

from __future__ import annotations

import json
import random
import re
from collections.abc import Mapping, Sequence
from typing import Any

# -- the question families ----------------------------------------------------------------------
# A step: (id, question template, answer key, tool, parameter, value key, depends on)
CITIES = [
    "Lisbon",
    "Porto",
    "Valencia",
    "Lyon",
    "Kraków",
    "Tallinn",
    "Gothenburg",
    "Bologna",
    "Ghent",
    "Ljubljana",
    "Aarhus",
    "Seville",
    "Bergen",
    "Graz",
    "Turku",
    "Split",
]
PRODUCTS = [
    "Aurora X2 e-bike",
    "Nimbus 7 drone",
    "Stratus home router",
    "Kestrel trail shoe",
    "Lumen desk lamp",
    "Orca sea kayak",
    "Vega espresso machine",
    "Tundra parka",
]
COMPANIES = [
    "Halvorsen Mobility",
    "Brightwater Labs",
    "Coastal Dynamics",
    "Fjell Outdoor",
    "Meridian Home",
    "Northwind Craft",
    "Solace Appliances",
    "Polar Thread",
]
PEOPLE = [
    "Ingrid Solberg",
    "Tomás Ferreira",
    "Amara Okafor",
    "Lukas Brandt",
    "Mei Tanaka",
    "Rafael Duarte",
    "Sanna Virtanen",
    "Jonas Weber",
    "Clara Moreau",
    "Arjun Mehta",
]
HOTELS = [
    "Hotel Miradouro",
    "Casa do Rio",
    "The Lantern Inn",
    "Harbour View Suites",
    "Villa Aurelia",
    "Grand Hotel Tivoli",
    "Pension Sonne",
    "The Quarry House",
]
TICKERS = ["NRDX", "QLMT", "VSTA", "HLCN", "BRWT", "ZENQ", "PLRX", "ORCA"]
BOOKS = [
    "The Salt Orchard",
    "Winter Cartography",
    "A Ledger of Tides",
    "Glass Harbour",
    "The Quiet Engine",
    "Lanterns in Fog",
]

TOOLS: dict[str, dict[str, Any]] = {
    "get_city_population": {
        "description": "Look up the latest population estimate of a city.",
        "param": ("city", "Name of the city"),
        "field": "population",
        "extra": ("year", "integer", "Census year of the estimate (default: latest)", None),
    },
    "get_current_weather": {
        "description": "Get the current weather conditions of a city.",
        "param": ("city", "Name of the city"),
        "field": "temperature",
        "extra": ("units", "string", "Temperature units", ["celsius", "fahrenheit", "kelvin"]),
    },
    "get_stock_price": {
        "description": "Get the latest traded price of a stock by its ticker symbol.",
        "param": ("ticker", "Ticker symbol of the stock"),
        "field": "price",
        "extra": ("exchange", "string", "Exchange to quote from", ["NASDAQ", "NYSE", "LSE"]),
    },
    "get_city_timezone": {
        "description": "Get the IANA time zone a city observes.",
        "param": ("city", "Name of the city"),
        "field": "timezone",
        "extra": ("include_offset", "boolean", "Also return the UTC offset", None),
    },
    "find_product_manufacturer": {
        "description": "Find the company that manufactures a consumer product.",
        "param": ("product_name", "Commercial name of the product"),
        "field": "manufacturer",
        "extra": ("region", "string", "Market region of the product", ["EU", "US", "APAC"]),
    },
    "get_company_ceo": {
        "description": "Get the current chief executive officer of a company.",
        "param": ("company_name", "Registered name of the company"),
        "field": "ceo",
        "extra": ("as_of", "string", "Date (YYYY-MM-DD) the answer should hold for", None),
    },
    "get_person_birth_year": {
        "description": "Get the birth year of a public figure.",
        "param": ("full_name", "Full name of the person"),
        "field": "birth_year",
        "extra": ("source", "string", "Reference source", ["registry", "press", "wiki"]),
    },
    "get_hotel_nightly_rate": {
        "description": "Get the standard nightly rate of a hotel room.",
        "param": ("hotel_name", "Name of the hotel"),
        "field": "nightly_rate",
        "extra": ("room_type", "string", "Room category", ["standard", "deluxe", "suite"]),
    },
    "find_nearest_airport": {
        "description": "Find the airport code nearest to a hotel.",
        "param": ("hotel_name", "Name of the hotel"),
        "field": "airport_code",
        "extra": ("max_distance_km", "integer", "Search radius in kilometres", None),
    },
    "get_taxi_fare": {
        "description": "Estimate the taxi fare from an airport to the city centre.",
        "param": ("airport_code", "IATA code of the airport"),
        "field": "fare",
        "extra": ("vehicle", "string", "Vehicle class", ["standard", "van", "premium"]),
    },
    "get_book_author": {
        "description": "Find the author of a book by its title.",
        "param": ("title", "Title of the book"),
        "field": "author",
        "extra": ("edition", "string", "Edition", ["first", "latest"]),
    },
    "get_person_hometown": {
        "description": "Get the hometown of a person.",
        "param": ("full_name", "Full name of the person"),
        "field": "hometown",
        "extra": ("detail", "string", "Level of detail", ["city", "region"]),
    },
}


def _tool_doc(name: str) -> dict[str, Any]:
    spec = TOOLS[name]
    param, desc = spec["param"]
    return {
        "name": name,
        "description": spec["description"],
        "parameters": {
            "type": "object",
            "properties": {param: {"type": "string", "description": desc}},
            "required": [param],
        },
    }


def _scaled(doc: Mapping[str, Any]) -> dict[str, Any]:
    spec = TOOLS[doc["name"]]
    extra, kind, desc, enum = spec["extra"]
    prop: dict[str, Any] = {"type": kind, "description": desc}
    if enum:
        prop["enum"] = enum
    scaled = json.loads(json.dumps(doc))
    scaled["parameters"]["properties"][extra] = prop
    scaled["description"] += " Optional parameters refine the query."
    return scaled


def build_questions(seed: int = 7, per_family: int = 2) -> list[dict[str, Any]]:
    """The example's question specs: questions, answers and their decompositions. Facts are
    drawn once per entity (a city has one population in every question that asks for it)."""
    rng = random.Random(seed)
    facts: dict[tuple[str, str], str] = {}

    def fact(kind: str, key: str, make: Any) -> str:
        if (kind, key) not in facts:
            facts[(kind, key)] = make()
        return facts[(kind, key)]

    def pop(c: str) -> str:
        return fact(
            "population", c, lambda: f"{rng.randint(120, 990)},{rng.randint(100, 999)} residents"
        )

    def temp(c: str) -> str:
        sky = ["sunny", "overcast", "light rain"]
        return fact("weather", c, lambda: f"{rng.randint(-3, 31)}°C and {rng.choice(sky)}")

    def price(t: str) -> str:
        return fact("price", t, lambda: f"${rng.randint(12, 480)}.{rng.randint(10, 99)}")

    zones = ["Europe/Lisbon", "Europe/Madrid", "Europe/Paris", "Europe/Warsaw", "Europe/Oslo"]
    airports = ["LIS", "OPO", "VLC", "LYS", "KRK"]
    out: list[dict[str, Any]] = []
    for _ in range(per_family):
        c = rng.choice(CITIES)
        out.append(
            {
                "scenario": "Single-Hop",
                "domain": "Demographics",
                "question": f"How many people live in {c}?",
                "answer": pop(c),
                "steps": [
                    (1, f"What is the population of {c}?", pop(c), "get_city_population", c, [])
                ],
            }
        )
        t = rng.choice(TICKERS)
        out.append(
            {
                "scenario": "Single-Hop",
                "domain": "Finance",
                "question": f"What is the latest share price of {t}?",
                "answer": price(t),
                "steps": [
                    (
                        1,
                        f"What is the latest price of the stock {t}?",
                        price(t),
                        "get_stock_price",
                        t,
                        [],
                    )
                ],
            }
        )
        c1, c2 = rng.sample(CITIES, 2)
        out.append(
            {
                "scenario": "Parallel Single-Hop",
                "domain": "Weather",
                "question": f"What is the weather like right now in {c1} and in {c2}?",
                "answer": f"{c1}: {temp(c1)}; {c2}: {temp(c2)}",
                "steps": [
                    (
                        1,
                        f"What is the current weather in {c1}?",
                        temp(c1),
                        "get_current_weather",
                        c1,
                        [],
                    ),
                    (
                        2,
                        f"What is the current weather in {c2}?",
                        temp(c2),
                        "get_current_weather",
                        c2,
                        [],
                    ),
                ],
            }
        )
        c1, c2 = rng.sample(CITIES, 2)
        tz = fact("timezone", c2, lambda: rng.choice(zones))
        out.append(
            {
                "scenario": "Parallel Single-Hop",
                "domain": "Travel",
                "question": f"What is the population of {c1}, and which time zone is {c2} in?",
                "answer": f"{pop(c1)}; {tz}",
                "steps": [
                    (1, f"What is the population of {c1}?", pop(c1), "get_city_population", c1, []),
                    (2, f"Which time zone does {c2} observe?", tz, "get_city_timezone", c2, []),
                ],
            }
        )
        p = rng.choice(PRODUCTS)
        co = fact("maker", p, lambda: rng.choice(COMPANIES))
        ceo = fact("ceo", co, lambda: rng.choice(PEOPLE))
        out.append(
            {
                "scenario": "Multi-Hop",
                "domain": "Consumer Electronics",
                "question": f"Who runs the company that makes the {p}?",
                "answer": ceo,
                "steps": [
                    (
                        1,
                        f"Which company manufactures the {p}?",
                        co,
                        "find_product_manufacturer",
                        p,
                        [],
                    ),
                    (2, f"Who is the CEO of {co}?", ceo, "get_company_ceo", co, [1]),
                ],
            }
        )
        p = rng.choice(PRODUCTS)
        co = fact("maker", p, lambda: rng.choice(COMPANIES))
        ceo = fact("ceo", co, lambda: rng.choice(PEOPLE))
        year = fact("born", ceo, lambda: str(rng.randint(1958, 1989)))
        out.append(
            {
                "scenario": "Multi-Hop",
                "domain": "Enterprise Software",
                "question": f"In which year was the chief executive of the maker of the {p} born?",
                "answer": year,
                "steps": [
                    (
                        1,
                        f"Which company manufactures the {p}?",
                        co,
                        "find_product_manufacturer",
                        p,
                        [],
                    ),
                    (2, f"Who is the CEO of {co}?", ceo, "get_company_ceo", co, [1]),
                    (3, f"In which year was {ceo} born?", year, "get_person_birth_year", ceo, [2]),
                ],
            }
        )
        h = rng.choice(HOTELS)
        rate = fact("rate", h, lambda: f"€{rng.randint(80, 320)} per night")
        code = fact("airport", h, lambda: rng.choice(airports))
        fare = fact("fare", code, lambda: f"€{rng.randint(18, 60)}")
        total = f"{rate} plus a {fare} taxi"
        out.append(
            {
                "scenario": "Parallel Multi-Hop",
                "domain": "Hotels",
                "question": f"How much would one night at {h} plus the taxi from the nearest "
                "airport cost?",
                "answer": total,
                "steps": [
                    (1, f"What is the nightly rate of {h}?", rate, "get_hotel_nightly_rate", h, []),
                    (2, f"Which airport is nearest to {h}?", code, "find_nearest_airport", h, []),
                    (
                        3,
                        f"What is the taxi fare from airport {code} to the city centre?",
                        fare,
                        "get_taxi_fare",
                        code,
                        [2],
                    ),
                ],
                "leaf": (4, "What is the total cost of the night and the taxi?", total, [1, 3]),
            }
        )
        b = rng.choice(BOOKS)
        c2 = rng.choice(CITIES)
        author = fact("author", b, lambda: rng.choice(PEOPLE))
        town = fact("hometown", author, lambda: rng.choice(CITIES))
        both = f"{town}: {temp(town)}; {c2}: {temp(c2)}"
        if town != c2:
            out.append(
                {
                    "scenario": "Parallel Multi-Hop",
                    "domain": "Books",
                    "question": f"Compare the weather now in the hometown of the author of '{b}' "
                    f"with the weather in {c2}.",
                    "answer": both,
                    "steps": [
                        (1, f"Who wrote the book '{b}'?", author, "get_book_author", b, []),
                        (
                            2,
                            f"What is the hometown of {author}?",
                            town,
                            "get_person_hometown",
                            author,
                            [1],
                        ),
                        (
                            3,
                            f"What is the current weather in {town}?",
                            temp(town),
                            "get_current_weather",
                            town,
                            [2],
                        ),
                        (
                            4,
                            f"What is the current weather in {c2}?",
                            temp(c2),
                            "get_current_weather",
                            c2,
                            [],
                        ),
                    ],
                    "leaf": (5, "Which of the two places is warmer right now?", both, [3, 4]),
                }
            )
    unique: dict[str, dict[str, Any]] = {}
    for spec in out:
        unique.setdefault(spec["question"], spec)
    return list(unique.values())


# -- code the "model" writes --------------------------------------------------------------------


def tool_code(
    name: str, rows: Mapping[str, str], *, ensure_ascii: bool = False, raises: bool = False
) -> str:
    """A standard-library tool serving ``rows`` (key -> value) as JSON."""
    spec = TOOLS[name]
    param, _ = spec["param"]
    extra = spec["extra"][0]
    field = spec["field"]
    data = json.dumps({k.lower(): v for k, v in rows.items()}, ensure_ascii=False, indent=4)
    lookup = f"_DATA[{param}]" if raises else f"_DATA.get({param}.strip().lower())"
    dumps = "json.dumps(result)" if ensure_ascii else "json.dumps(result, ensure_ascii=False)"
    return f'''import json

_DATA = {data}


def {name}({param}, {extra}=None):
    """{spec["description"]}"""
    if not isinstance({param}, str) or not {param}.strip():
        return json.dumps({{"error": "{param} must be a non-empty string"}})
    record = {lookup}
    if record is None:
        return json.dumps({{"error": "no record for " + {param}}})
    result = {{"{param}": {param}, "{field}": record, "status": "ok"}}
    if {extra} is not None:
        result["{extra}"] = {extra}
    return {dumps}
'''


def _decoys(name: str, keep: str, seed: str) -> dict[str, str]:
    rng = random.Random(seed)
    pools = {
        "city": CITIES,
        "ticker": TICKERS,
        "product_name": PRODUCTS,
        "company_name": COMPANIES,
        "full_name": PEOPLE,
        "hotel_name": HOTELS,
        "airport_code": ["FAO", "BCN", "NCE", "GDN"],
        "title": BOOKS,
    }
    param = TOOLS[name]["param"][0]
    keys = [k for k in pools[param] if k.lower() != keep.lower()]
    return {k: f"(record {rng.randint(100, 999)})" for k in rng.sample(keys, 2)}


class AnswerBook:
    """Answers each prompt of ``qa-llm`` from the question specs; see the module docstring."""

    def __init__(
        self, specs: Sequence[Mapping[str, Any]], quirks: Mapping[str, Sequence[str]] | None = None
    ) -> None:
        self.specs = {s["question"]: s for s in specs}
        self.steps: dict[str, tuple[Mapping[str, Any], tuple]] = {}
        self.steps_by_call: dict[str, tuple] = {}
        for spec in specs:
            for step in spec["steps"]:
                self.steps[step[1]] = (spec, step)
                self.steps_by_call[self._statement(step)] = step
        self.quirks = {k: set(v) for k, v in (quirks or {}).items()}

    def quirk(self, kind: str, question: str) -> bool:
        return question in self.quirks.get(kind, set())

    # -- dispatch ---------------------------------------------------------------------------------

    def answer(self, messages: Sequence[Mapping[str, Any]]) -> str:
        users = [str(m.get("content") or "") for m in messages if m.get("role") == "user"]
        prompt, retry = users[0], len(users) > 1
        task = prompt.splitlines()[0]
        handlers = {
            "# Task: decompose a question into atomic sub-questions": self.decompose,
            "# Task: decide which sub-questions need a tool": self.necessity,
            "# Task: judge the quality of a decomposition": self.quality,
            "# Task: write the document of a tool": self.document,
            "# Task: scale up the complexity of a tool document": self.scaling,
            "# Task: write the call of a tool": self.call,
            "# Task: implement a tool in Python": self.code,
            "# Task: repair a tool that failed verification": self.repair,
            "# Task: group tools with the same intent": self.clusters,
            "# Task: merge a tool into another by extending its data": self.merge,
        }
        if task not in handlers:
            return "I cannot help with that."
        return handlers[task](prompt, retry)

    @staticmethod
    def _field(prompt: str, label: str) -> str:
        match = re.search(rf"^{re.escape(label)}: (.*)$", prompt, flags=re.M)
        return match.group(1).strip() if match else ""

    def _spec(self, prompt: str) -> Mapping[str, Any]:
        return self.specs[self._field(prompt, "Main question")]

    def _step(self, prompt: str, label: str = "Question") -> tuple[Mapping[str, Any], tuple]:
        return self.steps[self._field(prompt, label) or self._field(prompt, "Sub-question")]

    # -- the steps --------------------------------------------------------------------------------

    def decompose(self, prompt: str, retry: bool) -> str:
        spec = self._spec(prompt)
        trace = []
        for sid, question, answer, _tool, _value, deps in spec["steps"]:
            hop = 1 if not deps else 1 + max(t["hop_level"] for t in trace if t["_uuid"] in deps)
            trace.append(
                {
                    "_uuid": sid,
                    "hop_level": hop,
                    "sub_question": question,
                    "is_parallel": not deps and len(spec["steps"]) > 1,
                    "dependency": list(deps) or None,
                    "sub_answer": answer,
                }
            )
        leaf = spec.get("leaf")
        scenario = spec["scenario"]
        if self.quirk("leaf", spec["question"]):
            # a judgement step in the middle: the last tool step depends on it
            first = trace[0]["_uuid"]
            trace.insert(
                1,
                {
                    "_uuid": 90,
                    "hop_level": 2,
                    "sub_question": "Which of these options is the most sensible one?",
                    "is_parallel": False,
                    "dependency": [first],
                    "sub_answer": "the first option",
                },
            )
            trace[2]["dependency"] = [90]
            scenario = "Multi-Hop"
        elif leaf:
            sid, question, answer, deps = leaf
            hop = 1 + max(t["hop_level"] for t in trace if t["_uuid"] in deps)
            trace.append(
                {
                    "_uuid": sid,
                    "hop_level": hop,
                    "sub_question": question,
                    "is_parallel": False,
                    "dependency": list(deps),
                    "sub_answer": answer,
                }
            )
        body = {
            "scenario_type": scenario,
            "main_question": spec["question"],
            "final_answer": spec["answer"],
            "decomposition_trace": trace,
        }
        text = json.dumps(body, ensure_ascii=False, indent=2)
        if self.quirk("malformed", spec["question"]) and not retry:
            # a trailing comma and an unclosed list, inside a fence, with prose after it
            return "```json\n" + text[:-2].rstrip() + ",\n```\nLet me know if you need more detail."
        return f"```json\n{text}\n```"

    def necessity(self, prompt: str, retry: bool) -> str:
        spec = self._spec(prompt)
        ids = re.findall(r"^(\d+)\. ", prompt.split("Sub-questions:", 1)[1], flags=re.M)
        tool_ids = {str(s[0]) for s in spec["steps"]}
        out = [
            {
                "_uuid": int(i),
                "tool_necessity": i in tool_ids,
                "reason": "needs a lookup in an external service"
                if i in tool_ids
                else "a judgement over answers already known; no tool can do it",
            }
            for i in ids
        ]
        return json.dumps(out, ensure_ascii=False)

    def quality(self, prompt: str, retry: bool) -> str:
        ids = re.findall(r"^(\d+)\. ", prompt.split("Sub-questions", 1)[1], flags=re.M)
        ones = {i: 1 for i in ids}
        return json.dumps(
            {
                "dependency_consistency": ones,
                "atomicity": ones,
                "sequential_rationality": ones,
                "task_completeness": 1,
                "reason": "Each step is one lookup and every dependency is needed.",
            }
        )

    def document(self, prompt: str, retry: bool) -> str:
        _, step = self._step(prompt, "Sub-question")
        return json.dumps(
            {
                "analysis": f"A reusable lookup: {TOOLS[step[3]]['description']}",
                "tool": _tool_doc(step[3]),
            },
            ensure_ascii=False,
        )

    def scaling(self, prompt: str, retry: bool) -> str:
        doc = json.loads(prompt.split("Tool document:\n", 1)[1].split("\n\nMake the tool", 1)[0])
        return json.dumps(
            {
                "analysis": "Added an optional parameter with a realistic value space.",
                "refined_version": _scaled(doc),
            },
            ensure_ascii=False,
        )

    def _statement(self, step: tuple) -> str:
        param = TOOLS[step[3]]["param"][0]
        return f"{step[3]}({param}={step[4]!r})"

    def call(self, prompt: str, retry: bool) -> str:
        _, step = self._step(prompt)
        return json.dumps(
            {
                "analysis": "The question states the only required value.",
                "call": self._statement(step),
            },
            ensure_ascii=False,
        )

    def _rows(self, step: tuple) -> dict[str, str]:
        return {**_decoys(step[3], step[4], step[1]), step[4]: step[2]}

    def code(self, prompt: str, retry: bool) -> str:
        _, step = self._step(prompt)
        code = tool_code(
            step[3],
            self._rows(step),
            ensure_ascii=self.quirk("wrong", step[1]),
            raises=self.quirk("raises", step[1]),
        )
        return json.dumps(
            {"analysis": "Mock data keyed by the lower-cased parameter.", "function": code}
        )

    def repair(self, prompt: str, retry: bool) -> str:
        _, step = self._step(prompt)
        return json.dumps(
            {
                "analysis": "Normalise the key and keep non-ASCII characters as they are.",
                "call": self._statement(step),
                "function": tool_code(step[3], self._rows(step)),
            }
        )

    def clusters(self, prompt: str, retry: bool) -> str:
        lines = re.findall(r"^(\d+)\. .*?; tool (\{.*\})$", prompt, flags=re.M)
        groups: dict[str, list[int]] = {}
        for sid, tool in lines:
            groups.setdefault(json.loads(tool)["name"], []).append(int(sid))
        return json.dumps(
            {
                "clusters": [
                    {
                        "intent_summary": f"calls of {name}",
                        "_uuids": ids,
                        "reason": "same data source and operation, other values",
                    }
                    for name, ids in groups.items()
                ]
            }
        )

    def merge(self, prompt: str, retry: bool) -> str:
        _, new = self._step(prompt)
        new_id = re.search(r"^Insert sub-question (\S+) into the tool:", prompt, flags=re.M).group(
            1
        )
        kept = prompt.split("Calls it must keep answering", 1)[1].split("Insert sub-question", 1)[0]
        calls = re.findall(r"^(\S+): (.*) -> (.*)$", kept, flags=re.M)
        members = [(sid, self.steps_by_call[statement]) for sid, statement, _ in calls]
        members.append((new_id, new))
        rows: dict[str, str] = {}
        for _, step in members:  # every member's decoys first, then the rows that answer
            rows.update(_decoys(step[3], step[4], step[1]))
        for _, step in members:
            rows[step[4]] = step[2]
        if self.quirk("merge_breaks", self._field(prompt, "Main question")):
            rows.pop(members[0][1][4])  # the base row is lost: its call no longer answers
        return json.dumps(
            {
                "analysis": "One table holds every member's row.",
                "function": tool_code(new[3], rows),
                "calls": {sid: self._statement(step) for sid, step in members},
            },
            ensure_ascii=False,
        )
