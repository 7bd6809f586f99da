"""Which writing system a text is in: the rule-based check behind "same language as the source"
(augmentation) and "answer in the user's language" (judge). It tells scripts apart (Latin, CJK,
Cyrillic, Arabic...), which covers the paper's case (English and Chinese), not two languages
that share a script."""

from __future__ import annotations

import unicodedata
from collections import Counter

# Unicode character-name prefixes, grouped into the scripts we tell apart.
_SCRIPTS = {
    "CJK": "cjk",
    "HIRAGANA": "cjk",
    "KATAKANA": "cjk",
    "HANGUL": "hangul",
    "LATIN": "latin",
    "CYRILLIC": "cyrillic",
    "ARABIC": "arabic",
    "GREEK": "greek",
    "HEBREW": "hebrew",
    "DEVANAGARI": "devanagari",
    "THAI": "thai",
}


def dominant_script(text: str) -> str | None:
    """The script most letters of ``text`` are written in, or ``None`` when it has none."""
    counts: Counter[str] = Counter()
    for char in text:
        if not char.isalpha():
            continue
        name = unicodedata.name(char, "")
        prefix = name.split(" ", 1)[0]
        script = _SCRIPTS.get(prefix)
        if script is not None:
            counts[script] += 1
    return counts.most_common(1)[0][0] if counts else None


def same_script(a: str, b: str) -> bool:
    """False only when both texts have a script and the scripts differ."""
    sa, sb = dominant_script(a), dominant_script(b)
    return sa is None or sb is None or sa == sb
