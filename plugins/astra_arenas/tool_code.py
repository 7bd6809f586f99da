"""Lookup tools written from templates: OpenAI schema, standard-library Python source, call.

The offline counterpart of the paper's tool synthesis (spec, call statement, implementation):
a relation template plus the rows of its small data table make one tool. The source defines a
single function named like the tool and keeps its table inside the function, so several tools
can be loaded into one namespace without their data clashing.
"""

from __future__ import annotations

from collections.abc import Sequence

import attrs

from astra_arenas.relations import Relation
from astra_arenas.world import Value
from astra_core.records import JSONDict, ToolCall


def normalise_key(name: str) -> str:
    """How the generated tools match names: whitespace collapsed, case folded."""
    return " ".join(name.split()).casefold()


@attrs.frozen
class ToolDraft:
    """One lookup tool before it joins an arena: its template and its data rows."""

    relation: Relation
    rows: tuple[tuple[str, Value], ...]

    @property
    def name(self) -> str:
        return self.relation.name

    def schema(self) -> JSONDict:
        return self.relation.schema()

    def code(self) -> str:
        return render_code(self.relation, self.rows)

    def with_rows(self, rows: Sequence[tuple[str, Value]]) -> ToolDraft:
        """This tool with its table extended by ``rows`` (rows already present are kept once)."""
        merged = dict(self.rows)
        for subject, value in rows:
            if subject in merged and merged[subject] != value:
                raise ValueError(
                    f"tool {self.name}: merging would give {subject!r} two values "
                    f"({merged[subject]!r} and {value!r})"
                )
            merged[subject] = value
        return ToolDraft(self.relation, tuple(sorted(merged.items())))


def render_code(relation: Relation, rows: Sequence[tuple[str, Value]]) -> str:
    """Standard-library Python defining ``relation.name``; prints nothing, returns JSON text."""
    param, field, subject = relation.parameter, relation.field, relation.subject.replace("_", " ")
    table_lines = "".join(
        f"        {normalise_key(name)!r}: ({name!r}, {value!r}),\n" for name, value in sorted(rows)
    )
    return (
        "import json\n"
        "\n"
        "\n"
        f"def {relation.name}({param}: str) -> str:\n"
        f'    """{relation.description}\n'
        "\n"
        f'    Returns a JSON object with "{param}" and "{field}", or with "error".\n'
        '    """\n'
        "    table = {\n"
        f"{table_lines}"
        "    }\n"
        f"    if not isinstance({param}, str) or not {param}.strip():\n"
        f'        return json.dumps({{"error": "{param} must be a non-empty string"}})\n'
        f'    row = table.get(" ".join({param}.split()).casefold())\n'
        "    if row is None:\n"
        f'        return json.dumps({{"error": "no {subject} with that name in the records"}})\n'
        f'    return json.dumps({{"{param}": row[0], "{field}": row[1]}}, ensure_ascii=False)\n'
    )


def gold_call(relation: Relation, subject: str) -> ToolCall:
    return ToolCall(relation.name, {relation.parameter: subject})
