"""Fresh, pronounceable names for the entities of a generated world.

Every arena draws its own names, so a model trained on arenas cannot memorise facts about
entities: it has to copy names and values from the question and from tool outputs. A name is
refused when it is a substring of another name of the same arena (or the reverse), so an answer
such as ``Vel Tora`` can never be found by accident inside ``Vel Torani``.
"""

from __future__ import annotations

import random
import string
from collections.abc import Callable
from typing import Any

_ONSETS = (
    "b", "br", "c", "ch", "d", "dr", "f", "g", "gr", "h", "j", "k", "kr", "l", "m", "n", "p",
    "pr", "q", "r", "s", "sh", "st", "t", "tr", "v", "w", "z", "zh",
)  # fmt: skip
_VOWELS = ("a", "e", "i", "o", "u", "ai", "ei", "ou", "ia", "y")
_CODAS = ("", "", "", "n", "r", "l", "s", "th", "x", "m", "nd", "rk")

_COMPANY_SUFFIXES = (
    "Labs", "Systems", "Industries", "Works", "Dynamics", "Foods", "Motors", "Group",
    "Analytics", "Textiles", "Robotics", "Logistics",
)  # fmt: skip
_CITY_SUFFIXES = ("", "", "", " Falls", " Harbor", "ton", "ville", "burg", " Springs")
_COUNTRY_ENDINGS = ("ia", "land", "stan", "ora", "mark", "via")
_CURRENCY_UNITS = ("crown", "mark", "dinar", "florin", "real", "thaler", "rand")
_TEAM_MASCOTS = ("Hawks", "Comets", "Wolves", "Tides", "Rangers", "Falcons", "Miners")
_AIRLINE_WORDS = ("Air", "Airways", "Wings", "Skylines")
_BANK_WORDS = ("Bank", "Savings", "Trust", "Credit Union")
_RESTAURANT_WORDS = ("Bistro", "Kitchen", "Grill", "Table", "Diner")
_RECIPE_WORDS = ("stew", "pie", "salad", "curry", "soup", "tart")
_DRUG_ENDINGS = ("mab", "pril", "olol", "azole", "cillin", "statin")


def _word(rng: random.Random, syllables: int) -> str:
    cap = getattr(rng, "max_syllables", 0)
    if cap:
        syllables = min(syllables, cap)
    parts = [rng.choice(_ONSETS) + rng.choice(_VOWELS) for _ in range(syllables)]
    parts[-1] += rng.choice(_CODAS)
    return "".join(parts).capitalize()


def _person(rng: random.Random) -> str:
    return f"{_word(rng, 2)} {_word(rng, rng.randint(2, 3))}"


def _company(rng: random.Random) -> str:
    return f"{_word(rng, 2)} {rng.choice(_COMPANY_SUFFIXES)}"


def _city(rng: random.Random) -> str:
    return _word(rng, rng.randint(2, 3)) + rng.choice(_CITY_SUFFIXES)


def _country(rng: random.Random) -> str:
    return _word(rng, 2) + rng.choice(_COUNTRY_ENDINGS)


def _product(rng: random.Random) -> str:
    return f"{_word(rng, 2)} {rng.choice(string.ascii_uppercase)}{rng.randint(2, 99) * 10}"


def _ticker(rng: random.Random) -> str:
    return "".join(rng.choice(string.ascii_uppercase) for _ in range(4))


def _flight(rng: random.Random) -> str:
    letters = "".join(rng.choice(string.ascii_uppercase) for _ in range(2))
    return f"{letters}{rng.randint(100, 9999)}"


# One generator per entity kind; kinds that are people share the person generator.
GENERATORS: dict[str, Callable[[random.Random], str]] = {
    "person": _person,
    "artist": _person,
    "doctor": _person,
    "company": _company,
    "city": _city,
    "country": _country,
    "product": _product,
    "currency": lambda r: f"{_word(r, 2)} {r.choice(_CURRENCY_UNITS)}",
    "team": lambda r: f"{_word(r, 2)} {r.choice(_TEAM_MASCOTS)}",
    "airport": lambda r: f"{_word(r, 2)} International Airport",
    "airline": lambda r: f"{_word(r, 2)} {r.choice(_AIRLINE_WORDS)}",
    "flight": _flight,
    "university": lambda r: f"University of {_word(r, 3)}",
    "album": lambda r: f"{_word(r, 2)} {_word(r, 2)}",
    "hospital": lambda r: f"{_word(r, 2)} General Hospital",
    "drug": lambda r: _word(r, 2) + r.choice(_DRUG_ENDINGS),
    "stock": _ticker,
    "bank": lambda r: f"{_word(r, 2)} {r.choice(_BANK_WORDS)}",
    "movie": lambda r: f"The {_word(r, 2)} {_word(r, 2)}",
    "book": lambda r: f"{_word(r, 3)} Chronicles",
    "restaurant": lambda r: f"{_word(r, 2)} {r.choice(_RESTAURANT_WORDS)}",
    "recipe": lambda r: f"{_word(r, 2)} {r.choice(_RECIPE_WORDS)}",
}


class NamesExhausted(RuntimeError):
    """No fresh name of a kind could be drawn for this arena."""


class _CappedRandom:
    """The forge's generator, seen by ``_word`` with a cap on syllables per word."""

    def __init__(self, rng: random.Random, max_syllables: int) -> None:
        self.rng = rng
        self.max_syllables = max_syllables

    def __getattr__(self, name: str) -> object:
        return getattr(self.rng, name)


class NameForge:
    """Hands out unique names for one arena; no name contains another (case-insensitive).

    ``max_syllables`` caps the syllables of each generated word (0: the default 2-3), for
    names of fewer tokens."""

    def __init__(self, rng: random.Random, max_syllables: int = 0) -> None:
        self.rng = rng
        self.max_syllables = max_syllables
        self._draw: Any = _CappedRandom(rng, max_syllables) if max_syllables else rng
        self._taken: list[str] = []
        # every name handed out and its kind, in order: what an arena's renaming replaces
        self.issued: dict[str, str] = {}

    def fork(self, rng: random.Random) -> NameForge:
        """A forge drawing with ``rng`` that has taken what this one has (names reserved once
        for many draws); its ``issued`` starts empty."""
        forge = NameForge(rng, self.max_syllables)
        forge._taken = list(self._taken)
        return forge

    def new(self, kind: str) -> str:
        try:
            make = GENERATORS[kind]
        except KeyError:
            raise ValueError(f"no name generator for entity kind {kind!r}") from None
        tried = []
        for _ in range(1000):
            name = make(self._draw)
            if self.reserve(name):
                self.issued[name] = kind
                return name
            tried.append(name.casefold())
        # e.g. a one-syllable city "Po" taken earlier is inside every "... International Airport"
        blockers = [t for t in self._taken if all(t in name for name in tried)]
        raise NamesExhausted(
            f"could not find a fresh {kind} name after 1000 tries"
            + (
                f": every one drawn contains {', '.join(map(repr, blockers))}, taken earlier "
                "(longer names, name_syllables, make this rarer)"
                if blockers
                else ""
            )
        )

    def reserve(self, text: str) -> bool:
        """Take ``text`` if it neither contains nor is contained in a name already taken."""
        low = text.casefold()
        if any(low in t or t in low for t in self._taken):
            return False
        self._taken.append(low)
        return True

    def clashes(self, text: str) -> bool:
        """Whether ``text`` contains a taken name or is contained in one."""
        low = text.casefold()
        return any(low in t or t in low for t in self._taken)
