"""When does a tool output solve a sub-question? The matchers of the ``subtask-f1`` verifier.

* ``substring``: the gold answer appears verbatim in the output (the paper's acceptance rule).
* ``normalized``: both texts become tokens (words case-folded, numbers canonical: ``1,234`` ==
  ``1234``, ``3.0`` == ``3``, ``12.50`` == ``12.5``; punctuation and spacing ignored) and the
  gold tokens must appear as a contiguous run of output tokens. Whole tokens only, so ``42`` is
  not found inside ``1942`` and ``Tor`` not inside ``Torvia``.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from decimal import Decimal, InvalidOperation

# A number (with thousands separators or decimals) or a run of letters.
_TOKEN = re.compile(
    r"(?<![\w.])-?\d{1,3}(?:,\d{3})+(?:\.\d+)?(?!\d|,\d)"
    r"|(?<![\w.])-?\d+(?:\.\d+)?"
    r"|\d+(?:\.\d+)?"
    r"|[^\W\d_]+"
)

Matcher = Callable[[str, str], bool]


def _number(text: str) -> str:
    try:
        value = Decimal(text.replace(",", ""))
    except InvalidOperation:
        return text
    if value == 0:
        return "0"
    normal = value.normalize()
    return format(normal, "f")


def tokens(text: str) -> list[str]:
    """Case-folded words and canonical numbers of ``text``."""
    out = []
    for match in _TOKEN.finditer(text):
        token = match.group(0)
        if token[0].isdigit() or (token[0] == "-" and len(token) > 1):
            out.append(_number(token))
        else:
            out.append(token.casefold())
    return out


def substring_match(gold: str, output: str) -> bool:
    return bool(gold) and gold in output


def normalized_match(gold: str, output: str) -> bool:
    want = tokens(gold)
    if not want:  # an answer made of punctuation only: compare collapsed text instead
        squeezed = " ".join(gold.split()).casefold()
        return bool(squeezed) and squeezed in " ".join(output.split()).casefold()
    have = tokens(output)
    n = len(want)
    return any(have[i : i + n] == want for i in range(len(have) - n + 1))


MATCHERS: dict[str, Matcher] = {"substring": substring_match, "normalized": normalized_match}


def matcher(name: str) -> Matcher:
    try:
        return MATCHERS[name]
    except KeyError:
        raise ValueError(f"unknown matcher {name!r}; known: {', '.join(MATCHERS)}") from None
