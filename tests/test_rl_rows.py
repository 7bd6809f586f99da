"""The authors' released RL rows (ASTRA-RL-1k) on the command line and in a run: ``astra arenas
import`` / ``export``, the ``astra-rl-rows`` environment generator, and train-rl and eval on the
imported arenas.

The rows below are written as the release writes them (``reference-code-notes.md`` §3.6):
``prompt`` a list of messages, and ``tool_schema``, ``tool_dict`` and ``sub_qa_dict`` JSON
*strings* inside the JSON row; the tool code is in the authors' style (mock data in a dict,
defensive errors, the answer in the returned string), distractor tools included. The released
file itself cannot be downloaded here. The tools run in the real bubblewrap sandbox.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import attrs
import pytest
from astra_arenas.rl_rows import arenas_from_rows, export_rl_rows, import_rl_rows
from astra_arenas.runtime import ToolCodeRuntime
from astra_arenas.verifier import SubtaskF1Verifier
from test_arenas_structure import sound

import astra_core
from astra_core import hookimpl
from astra_core.cli import main as astra_main
from astra_core.config import parse_config
from astra_core.errors import RecordError
from astra_core.pipeline import prepare
from astra_core.plugins import load_plugins
from astra_core.records import Arena, Episode, ToolCall
from astra_core.registry import ComponentBuilder
from astra_core.sandbox_policy import LLM_WRITTEN, TOOL_CODE_ORIGIN, llm_written
from astra_core.store import RecordStore, read_manifest

ASTRA = str(Path(sys.executable).with_name("astra"))
needs_bwrap = pytest.mark.skipif(
    shutil.which("bwrap") is None, reason="LLM-written tool code runs only in bubblewrap"
)

PASSENGERS = {
    "Asha Verma": ("RES987654", 10),
    "Li Wei": ("RES111222", 5),
    "Omar Haddad": ("RES555001", 20),
    "Sofia Rossi": ("RES246810", 15),
}

RESERVATION_CODE = """import json


def reservation_finder(passenger_name: str, date: str = "") -> str:
    \"\"\"Find a passenger's reservation by name.\"\"\"
    records = {RECORDS}
    if not isinstance(passenger_name, str) or not passenger_name.strip():
        return json.dumps({"error": "passenger_name must be a non-empty string"})
    key = passenger_name.strip().lower()
    if key not in records:
        return json.dumps({"error": f"no reservation for {passenger_name}"})
    return "Reservation ID: " + records[key]
"""

BAGGAGE_CODE = """def baggage_fee_calculator(reservation_id: str, extra_kg: int) -> str:
    \"\"\"The extra-baggage charge of a reservation, 60 rupees a kilogram.\"\"\"
    if not isinstance(extra_kg, int) or extra_kg < 0:
        return "Error: extra_kg must be a non-negative integer"
    if not str(reservation_id).startswith("RES"):
        return "Error: unknown reservation " + str(reservation_id)
    return "Extra charge: \\u20b9" + str(extra_kg * 60)
"""

PAYMENT_CODE = """import random


def payment_processor(reservation_id: str, amount: float) -> str:
    \"\"\"Charge an amount to a reservation.\"\"\"
    return "Payment successful. Transaction ID: TXN" + str(random.randint(10**8, 10**9))
"""

WEATHER_CODE = """def city_weather(city: str) -> str:
    table = {"mumbai": "32C humid", "delhi": "28C haze"}
    return table.get(str(city).lower(), "no data for " + str(city))
"""

CONVERTER_CODE = """def currency_converter(
    amount: float, from_currency: str, to_currency: str
) -> str:
    rates = {("INR", "EUR"): 0.011, ("INR", "USD"): 0.012}
    rate = rates.get((from_currency.upper(), to_currency.upper()))
    if rate is None:
        return "Error: no rate for " + from_currency + " -> " + to_currency
    return f"{amount * rate:.2f} {to_currency.upper()}"
"""

TIMEZONE_CODE = """def time_zone_lookup(city: str) -> str:
    zones = {"mumbai": "Asia/Kolkata (UTC+05:30)", "paris": "Europe/Paris (UTC+01:00)"}
    return zones.get(str(city).strip().lower(), "unknown city")
"""


def tool(name: str, description: str, props: dict[str, Any], required: list[str]) -> dict:
    return {
        "type": "function",
        "function": {
            "name": name,
            "description": description,
            "parameters": {"type": "object", "properties": props, "required": required},
        },
    }


TOOLS = {
    "reservation_finder": tool(
        "reservation_finder",
        "Find a passenger's flight reservation by full name.",
        {"passenger_name": {"type": "string"}, "date": {"type": "string"}},
        ["passenger_name"],
    ),
    "baggage_fee_calculator": tool(
        "baggage_fee_calculator",
        "Calculate the extra-baggage charge of a reservation.",
        {"reservation_id": {"type": "string"}, "extra_kg": {"type": "integer"}},
        ["reservation_id", "extra_kg"],
    ),
    "payment_processor": tool(
        "payment_processor",
        "Charge an amount to a reservation.",
        {"reservation_id": {"type": "string"}, "amount": {"type": "number"}},
        ["reservation_id", "amount"],
    ),
    "city_weather": tool(
        "city_weather", "Current weather of a city.", {"city": {"type": "string"}}, ["city"]
    ),
    "currency_converter": tool(
        "currency_converter",
        "Convert an amount between currencies.",
        {
            "amount": {"type": "number"},
            "from_currency": {"type": "string"},
            "to_currency": {"type": "string"},
        },
        ["amount", "from_currency", "to_currency"],
    ),
    "time_zone_lookup": tool(
        "time_zone_lookup", "Time zone of a city.", {"city": {"type": "string"}}, ["city"]
    ),
}


def code_of(name: str) -> str:
    if name == "reservation_finder":
        records = {n.lower(): r for n, (r, _) in PASSENGERS.items()}
        return RESERVATION_CODE.replace("{RECORDS}", json.dumps(records))
    return {
        "baggage_fee_calculator": BAGGAGE_CODE,
        "payment_processor": PAYMENT_CODE,
        "city_weather": WEATHER_CODE,
        "currency_converter": CONVERTER_CODE,
        "time_zone_lookup": TIMEZONE_CODE,
    }[name]


def prompt(background: str, known: str, needed: str) -> list[dict[str, str]]:
    info = {"background": background, "Known Information": known, "Information Needed": needed}
    return [
        {
            "role": "user",
            "content": "## some information related to the user\n"
            + json.dumps(info, ensure_ascii=False)
            + "\n## your task\nAnswer the user's request with the tools.",
        }
    ]


def row(
    content: list[dict[str, str]], offered: list[str], gold: dict[str, list[str]]
) -> dict[str, Any]:
    """A row as the release writes it: three of the four fields are JSON strings."""
    return {
        "prompt": content,
        "tool_schema": json.dumps([TOOLS[n] for n in offered], ensure_ascii=False),
        "tool_dict": json.dumps({n: code_of(n) for n in offered}, ensure_ascii=False),
        "sub_qa_dict": json.dumps(gold, ensure_ascii=False),
    }


def baggage_row(passenger: str) -> dict[str, Any]:
    reservation, kg = PASSENGERS[passenger]
    return row(
        prompt(
            f"{passenger} flies Mumbai to Delhi tomorrow with {kg} kg of extra baggage.",
            f"Passenger name: {passenger}; extra baggage: {kg} kg.",
            "The reservation ID, then the extra-baggage charge.",
        ),
        ["reservation_finder", "baggage_fee_calculator", "payment_processor", "city_weather"],
        {
            "reservation_finder": [f"Reservation ID: {reservation}"],
            "baggage_fee_calculator": [f"Extra charge: ₹{kg * 60}"],
        },
    )


def travel_row(amount: int, city: str, zone: str) -> dict[str, Any]:
    euros = f"{amount * 0.011:.2f} EUR"
    return row(
        prompt(
            f"A traveller in {city} has {amount} INR left.",
            f"Amount: {amount} INR; city: {city}.",
            "The amount in euros and the city's time zone.",
        ),
        ["currency_converter", "time_zone_lookup", "city_weather"],
        {"currency_converter": [euros], "time_zone_lookup": [zone]},
    )


def released_rows() -> list[dict[str, Any]]:
    rows = [baggage_row(p) for p in PASSENGERS]
    rows.append(travel_row(5000, "Mumbai", "Asia/Kolkata (UTC+05:30)"))
    rows.append(travel_row(12000, "Paris", "Europe/Paris (UTC+01:00)"))
    # the release has rows offering one name twice (a merge left two payment_processor)
    doubled = json.loads(rows[0]["tool_schema"])
    rows[0]["tool_schema"] = json.dumps([*doubled, TOOLS["payment_processor"]])
    return rows


def gold_script(arena: Arena) -> list[list[ToolCall]]:
    """The calls that answer an imported arena, turn by turn (the test wrote the rows, so it
    knows them; the format itself keeps no calls)."""
    text = arena.question
    for passenger, (reservation, kg) in PASSENGERS.items():
        if passenger in text:
            return [
                [ToolCall("reservation_finder", {"passenger_name": passenger})],
                [
                    ToolCall(
                        "baggage_fee_calculator", {"reservation_id": reservation, "extra_kg": kg}
                    )
                ],
            ]
    amount = 5000 if "5000 INR" in text else 12000
    city = "Mumbai" if "Mumbai" in text else "Paris"
    return [
        [
            ToolCall(
                "currency_converter",
                {"amount": amount, "from_currency": "INR", "to_currency": "EUR"},
            ),
            ToolCall("time_zone_lookup", {"city": city}),
        ]
    ]


def write_jsonl(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
    return path


def decoded(row: dict[str, Any]) -> dict[str, Any]:
    return {k: json.loads(v) if isinstance(v, str) else v for k, v in row.items()}


def astra(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [ASTRA, *args], capture_output=True, text=True, timeout=300, cwd=cwd, check=False
    )


class InProcess:
    """``astra`` run in this process (``astra_core.cli.main``): the same parser and commands
    without the ~10 s of imports a fresh process pays; a few calls per test still run the real
    program (``astra(...)``)."""

    def __init__(self, capsys: pytest.CaptureFixture[str]) -> None:
        self.capsys = capsys

    def __call__(self, *args: str) -> subprocess.CompletedProcess[str]:
        self.capsys.readouterr()
        code = astra_main(list(args))
        out, err = self.capsys.readouterr()
        return subprocess.CompletedProcess(["astra", *args], code, out, err)


def sandbox() -> Any:
    plugins = prepare(parse_config({}))[1]
    return ComponentBuilder(plugins.registry, hook=plugins.hook).build("sandbox", "bubblewrap")


# -- rows to arenas ----------------------------------------------------------------------------


def test_released_rows_become_arenas_with_untrusted_code(tmp_path: Path):
    rows = released_rows()
    arenas = list(arenas_from_rows([write_jsonl(tmp_path / "rl.jsonl", rows)]))
    assert len(arenas) == len(rows)
    for arena in arenas:
        assert llm_written(arena) and arena.metadata[TOOL_CODE_ORIGIN] == LLM_WRITTEN
        assert arena.metadata["dependencies_known"] is False
        assert all(sq.call is None and sq.tool for sq in arena.needed)  # tool known, call not
    first = arenas[0]
    assert first.metadata["duplicate_tools"] == ["payment_processor"]
    assert [(s.tool, s.answer) for s in first.needed] == [
        ("reservation_finder", "Reservation ID: RES987654"),
        ("baggage_fee_calculator", "Extra charge: ₹600"),
    ]
    assert first.distractors == ("payment_processor", "city_weather")
    assert len({a.id for a in arenas}) == len(arenas)


@needs_bwrap
def test_runtime_and_verifier_play_an_imported_arena(tmp_path: Path):
    arena = next(iter(arenas_from_rows([write_jsonl(tmp_path / "rl.jsonl", released_rows())])))
    verifier = SubtaskF1Verifier()
    with ToolCodeRuntime(arena, sandbox()) as runtime:
        assert runtime.load_errors == {}
        calls = [runtime.step(c) for turn in gold_script(arena) for c in turn]
        assert [c.output for c in calls] == ["Reservation ID: RES987654", "Extra charge: ₹600"]
        reward = verifier.score(arena, Episode(arena.id, (), tuple(calls)))
        assert reward.value == pytest.approx(1.0) and reward.success
        # a distractor's output answers nothing: it costs precision, recall stays
        extra = runtime.step(ToolCall("payment_processor", {"reservation_id": "R", "amount": 1}))
        assert extra.output.startswith("Payment successful") and not extra.error
        reward = verifier.score(arena, Episode(arena.id, (), (*calls, extra)))
        assert reward.recall == 1.0 and reward.precision == pytest.approx(2 / 3)
        # a call with a wrong argument runs the tool, which answers with an error: no credit
        wrong = runtime.step(ToolCall("reservation_finder", {"passenger_name": "Nobody"}))
        assert "no reservation" in wrong.output
        reward = verifier.score(arena, Episode(arena.id, (), (wrong,)))
        assert reward.value == 0.0 and reward.calls == 1


# -- the command line --------------------------------------------------------------------------


def test_import_and_export_on_the_command_line_round_trip(tmp_path: Path, capsys):
    cli = InProcess(capsys)
    rows = released_rows()
    source = write_jsonl(tmp_path / "ASTRA-RL-1k.jsonl", rows)
    stage = tmp_path / "run" / "synth-arenas"
    done = astra("arenas", "import", str(source), "--out", str(stage), "--holdout-fraction", "0.5")
    assert done.returncode == 0, done.stderr
    assert f"read {len(rows)} rows: {len(rows)} new arenas" in done.stdout
    arenas = list(RecordStore(stage, Arena).iter_records())
    assert [a.id for a in arenas] == [a.id for a in arenas_from_rows([source])]
    assert {a.split for a in arenas} == {"train", "holdout"}
    manifest = read_manifest(stage)
    assert manifest is not None and manifest["stage"] == "import-arenas"
    assert manifest["imports"][0]["counts"]["written"] == len(rows)

    again = cli("arenas", "import", str(source), "--out", str(stage))
    assert again.returncode == 0 and "0 new arenas (6 already there)" in again.stdout

    # bare rows: the released four fields, the same as what was imported
    bare = tmp_path / "bare.jsonl"
    done = astra("arenas", "export", str(stage), "--out", str(bare), "--bare")
    assert done.returncode == 0, done.stderr
    back = [json.loads(line) for line in bare.read_text().splitlines()]
    assert all(isinstance(r["tool_schema"], str) for r in back)
    # the doubled tool is offered once: the first one is kept, as an import keeps it
    first = decoded(rows[0])
    first["tool_schema"] = first["tool_schema"][:-1]
    assert [decoded(r) for r in back] == [first, *map(decoded, rows[1:])]

    # with the astra field, the way back gives the same arenas, each on its side
    full = tmp_path / "full.jsonl"
    assert cli("arenas", "export", str(stage), "--out", str(full)).returncode == 0
    copy = tmp_path / "copy"
    done = cli("arenas", "import", str(full), "--out", str(copy), "--holdout-fraction", "0")
    assert done.returncode == 0, done.stderr
    assert list(RecordStore(copy, Arena).iter_records()) == arenas

    held = tmp_path / "held.parquet"
    pytest.importorskip("pyarrow")
    done = cli("arenas", "export", str(stage), "--out", str(held), "--split", "holdout")
    assert done.returncode == 0, done.stderr
    from_parquet = list(arenas_from_rows([held]))
    assert from_parquet == [a for a in arenas if a.held_out]


def test_export_then_import_of_synthesised_arenas_is_exact(tmp_path: Path):
    arena = attrs.evolve(sound(), split="holdout")
    source = tmp_path / "arenas.jsonl"
    source.write_text(arena.to_json() + "\n")
    rows = tmp_path / "rows.json"
    assert export_rl_rows(source, rows).written == 1
    assert import_rl_rows([rows], tmp_path / "kept", keep_origin=True).written == 1
    assert list(RecordStore(tmp_path / "kept", Arena).iter_records()) == [arena]
    # by default the code of any file is untrusted: marked, and so another arena (a new id)
    (marked,) = arenas_from_rows([rows])
    assert llm_written(marked) and marked.id != arena.id and marked.split == "holdout"
    assert marked.subquestions == arena.subquestions and marked.tool_code == arena.tool_code
    # a row edited after its export is not passed off as the arena its astra field names
    edited = json.loads(rows.read_text())
    edited[0]["prompt"][0]["content"] += " (edited)"
    rows.write_text(json.dumps(edited))
    with pytest.raises(RecordError, match=r"rows\.json \(item 1\): the row's content does not"):
        list(arenas_from_rows([rows]))


def test_export_leaves_out_arenas_the_format_cannot_carry(tmp_path: Path, capsys):
    cli = InProcess(capsys)
    arena = sound()
    no_code = Arena(
        question="What is in the BFCL file system?",
        answer="",
        topology="single",
        subquestions=arena.subquestions[:1],
        tools=arena.tools,
        tool_code={},
    )
    source = tmp_path / "arenas.jsonl"
    source.write_text(arena.to_json() + "\n" + no_code.to_json() + "\n")
    out = tmp_path / "rows.jsonl"
    done = cli("arenas", "export", str(source), "--out", str(out))
    assert done.returncode == 0, done.stderr
    assert "left out 1 the format cannot carry" in done.stdout and "has no code" in done.stdout
    assert len(out.read_text().splitlines()) == 1


def broken(field: str, value: Any) -> dict[str, Any]:
    bad = released_rows()[1]
    if value is None:
        del bad[field]
    else:
        bad[field] = value
    return bad


BAD_ROWS = [
    (broken("tool_dict", '{"reservation_finder": "def'), "field 'tool_dict' is not valid JSON"),
    (broken("sub_qa_dict", None), "RL row has no 'sub_qa_dict' field"),
    (
        broken("tool_dict", json.dumps({"reservation_finder": code_of("reservation_finder")})),
        "tool 'baggage_fee_calculator' of sub_qa_dict has no code in tool_dict",
    ),
    (
        broken("sub_qa_dict", json.dumps({"flight_status": ["On time"]})),
        "tool 'flight_status' of sub_qa_dict is not offered in tool_schema",
    ),
    (
        broken(
            "tool_dict",
            json.dumps(
                {
                    "reservation_finder": "def reservation_finder(:\n",
                    "baggage_fee_calculator": BAGGAGE_CODE,
                }
            ),
        ),
        "tool 'reservation_finder': code does not parse",
    ),
    (broken("prompt", []), "prompt has no user message"),
]


@pytest.mark.parametrize(("bad", "says"), BAD_ROWS)
def test_a_bad_row_is_an_error_naming_file_and_row(tmp_path: Path, bad: dict, says: str):
    rows = released_rows()
    source = write_jsonl(tmp_path / "rl.jsonl", [*rows[:2], bad, *rows[2:]])
    with pytest.raises(RecordError) as caught:
        import_rl_rows([source], tmp_path / "out")
    assert str(caught.value).startswith(f"{source}:3: ")
    assert says in str(caught.value)


def test_a_failed_import_loses_nothing_and_resumes(tmp_path: Path, capsys):
    cli = InProcess(capsys)
    rows = released_rows()
    stage = tmp_path / "stage"
    first = write_jsonl(tmp_path / "first.jsonl", rows[:2])
    assert cli("arenas", "import", str(first), "--out", str(stage)).returncode == 0
    before = (stage / "data-00000.jsonl").read_text()

    bad = broken("tool_dict", "{not json")
    source = tmp_path / "rest.jsonl"
    source.write_text(
        json.dumps(rows[2]) + "\n\n" + json.dumps(bad) + "\n" + json.dumps(rows[3]) + "\n"
    )
    done = astra("arenas", "import", str(source), "--out", str(stage))
    assert done.returncode == 1
    assert f"{source}:3: field 'tool_dict' is not valid JSON" in done.stderr
    assert "Traceback" not in done.stderr
    after = (stage / "data-00000.jsonl").read_text()
    assert after.startswith(before) and len(after.splitlines()) == 3  # row 1 of the file is in
    manifest = read_manifest(stage)
    assert manifest is not None and manifest["status"] == "failed"
    assert "tool_dict" in manifest["imports"][-1]["error"]

    # a bad line that is not JSON at all names the file and line too
    garbled = tmp_path / "garbled.jsonl"
    garbled.write_text(json.dumps(rows[4]) + "\n{oops\n")
    done = cli("arenas", "import", str(garbled), "--out", str(stage))
    assert done.returncode == 1 and f"{garbled}:2: not valid JSON" in done.stderr

    # skipping bad rows logs them and goes on; nothing is written twice
    done = cli("arenas", "import", str(source), "--out", str(stage), "--skip-bad")
    assert done.returncode == 0, done.stderr
    # (the garbled file's first row went in before its bad line stopped that import)
    assert "1 new arenas (4 already there), 1 bad rows skipped" in done.stdout
    drops = [json.loads(line) for line in (stage / "dropped.jsonl").read_text().splitlines()]
    assert drops[-1]["reason"] == "bad-rl-row" and f"{source}:3" in drops[-1]["detail"]
    assert len(list(RecordStore(stage, Arena).iter_records())) == 5


# -- the generator in a run, and train-rl / eval on its arenas ---------------------------------


def test_the_generator_makes_the_same_arenas_as_the_import(tmp_path: Path):
    rows = released_rows()
    write_jsonl(tmp_path / "rows.jsonl", rows[:5])
    write_jsonl(tmp_path / "more.jsonl", [rows[5], broken("sub_qa_dict", None)])
    (tmp_path / "run.toml").write_text(
        "[run]\nseed = 0\n\n[synth-arenas]\nholdout_fraction = 0.5\n"
        '[synth-arenas.generator]\nname = "astra-rl-rows"\npath = ["rows.jsonl", "more.jsonl"]\n'
        'on_bad_row = "drop"\n'
    )
    done = astra("synth", "arenas", "run.toml", "--out", "out", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    made = list(RecordStore(tmp_path / "out" / "synth-arenas", Arena).iter_records())
    import_rl_rows(
        [tmp_path / "rows.jsonl", tmp_path / "more.jsonl"],
        tmp_path / "imported",
        holdout_fraction=0.5,
        skip_bad=True,
    )
    assert made == list(RecordStore(tmp_path / "imported", Arena).iter_records())
    assert len(made) == 6 and all(llm_written(a) for a in made)
    manifest = read_manifest(tmp_path / "out" / "synth-arenas")
    assert manifest is not None and manifest["dropped"] == {"bad-rl-row": 1}


class Runtimes:
    """Observes, without changing them, the runtimes each stage plays imported arenas in."""

    def __init__(self) -> None:
        self.stage = ""
        self.made: dict[str, list[Any]] = {}

    @hookimpl
    def astra_stage_start(self, stage: str) -> None:
        self.stage = stage

    @hookimpl(wrapper=True)
    def astra_arena_runtime(self, arena: Arena) -> Any:
        runtime = yield
        self.made.setdefault(self.stage, []).append(runtime)
        return runtime


@pytest.fixture(scope="module")
def imported(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """Released rows imported with the command into RUN/synth-arenas, half held out, and a
    tiny model whose tokenizer is trained on their text (its weights are untrained)."""
    from astra_training.sft_options import TinyModelOptions
    from astra_training.tiny_model import build_tiny_model

    base = tmp_path_factory.mktemp("rl-rows")
    source = write_jsonl(base / "rows.jsonl", released_rows())
    stage = base / "run" / "synth-arenas"
    done = astra("arenas", "import", str(source), "--out", str(stage), "--holdout-fraction", "0.5")
    assert done.returncode == 0, done.stderr
    arenas = [a for a in RecordStore(stage, Arena).iter_records() if isinstance(a, Arena)]
    texts = [a.question + " " + json.dumps(a.tools) for a in arenas] * 2
    options = TinyModelOptions(
        vocab_size=500, hidden_size=32, num_layers=1, num_heads=2, intermediate_size=64
    )
    build_tiny_model(texts, base / "model", options, seed=0)
    return stage, base / "model"


@needs_bwrap
@pytest.mark.slow
def test_train_rl_and_eval_play_imported_rows(imported: tuple[Path, Path]):
    stage, model = imported
    out = stage.parent
    arenas = [a for a in RecordStore(stage, Arena).iter_records() if isinstance(a, Arena)]
    rollout = {"max_new_tokens": 8, "max_turns": 2, "max_length": 4096}
    data = {
        "run": {"seed": 0},
        "train-rl": {
            "trainer": {
                "name": "rl",
                "model": str(model),
                "sandbox": "bubblewrap",
                "steps": 2,
                "groups_per_step": 2,
                "group_size": 2,
                "max_fill_rounds": 1,
                "checkpoint_every": 0,
                "rollout": rollout,
            }
        },
        "eval": {
            "evaluator": {
                "name": "arena-eval",
                "models": ["train-rl"],
                "sandbox": "bubblewrap",
                "batch_size": 8,
                "rollout": rollout,
            }
        },
    }
    observer = Runtimes()
    report = astra_core.run(
        parse_config(data),
        out,
        quiet=True,
        plugins=load_plugins(objects=[("runtimes", observer)]),
    )
    assert [s.status for s in report.stages] == ["complete", "complete"], report.to_dict()
    metrics = [
        json.loads(line) for line in (out / "train-rl" / "metrics.jsonl").read_text().splitlines()
    ]
    assert [m["step"] for m in metrics] == [1, 2]
    by_id = {a.id: a for a in arenas}
    played = {r.arena.id for r in observer.made["train-rl"]}
    assert played and all(not by_id[i].held_out for i in played)
    # every imported tool loaded in the isolating sandbox, in every episode
    for runtime in observer.made["train-rl"] + observer.made["eval"]:
        assert runtime.load_errors == {}
        assert type(runtime.sandbox).__name__ != "SubprocessSandbox"
    (episodes,) = (out / "eval").glob("episodes-*.jsonl")
    evaluated = [json.loads(line) for line in episodes.read_text().splitlines()]
    assert sorted(e["arena_id"] for e in evaluated) == sorted(a.id for a in arenas if a.held_out)
    assert all("needed" in e["reward"]["parts"] for e in evaluated)  # scored by subtask-f1


class ScriptedPolicy:
    """Stands in for the model in the rollout engine: each turn, the calls the test knows
    answer the arena (``gold_script``), then a final answer, as token ids of the real
    tokenizer; the engine parses, runs them in the sandbox and scores them."""

    def __init__(self, arenas: list[Arena], chat: Any, parser: Any) -> None:
        self.arenas, self.chat, self.parser = arenas, chat, parser

    def generate(self, prompts, budgets, sampling):
        out = []
        for ids in prompts:
            text = self.chat.tokenizer.decode(ids)
            arena = next(a for a in self.arenas if a.question in text)
            turn = text.count("<tool_response>") and text.count("<|im_start|>user") - 1
            script = gold_script(arena)
            body = self.parser.format(script[turn]) if turn < len(script) else "Done."
            out.append([*self.chat.encode(body), self.chat.end_of_turn_id])
        return out


@needs_bwrap
def test_the_rollout_engine_scores_imported_arenas_by_sub_answers(imported: tuple[Path, Path]):
    from astra_training.generation import Sampling
    from astra_training.models import load_model_and_tokenizer
    from astra_training.rl_options import RolloutOptions
    from astra_training.rl_trainer import make_engine

    stage, model_dir = imported
    arenas = [a for a in RecordStore(stage, Arena).iter_records() if isinstance(a, Arena)]
    plugins = prepare(parse_config({}))[1]
    builder = ComponentBuilder(plugins.registry, hook=plugins.hook)
    model, tokenizer = load_model_and_tokenizer(str(model_dir))
    parser = builder.build("tool_call_parser", "hermes")
    engine = make_engine(
        model,
        tokenizer,
        RolloutOptions(max_turns=4, max_new_tokens=48, max_length=8192),
        parser=parser,
        verifier=builder.build("verifier", "subtask-f1"),
        sandbox=builder.build("sandbox", "bubblewrap"),
        hook=plugins.hook,
    )
    engine.generator = ScriptedPolicy(arenas, engine.chat, parser)
    rollouts, stats = engine.run(arenas, Sampling(do_sample=False))
    assert stats.episodes == len(arenas)
    for arena, r in zip(arenas, rollouts, strict=True):
        assert r.episode.reward.value == pytest.approx(1.0), r.episode.calls
        assert r.episode.turns == len(gold_script(arena)) + 1
        assert all(not c.error for c in r.episode.calls)


def test_imported_arenas_give_no_demonstrations(tmp_path: Path):
    (arena,) = arenas_from_rows([write_jsonl(tmp_path / "rl.jsonl", released_rows()[:1])])
    plugins = prepare(parse_config({}))[1]
    made = plugins.hook.astra_arena_demonstrations(
        arena=arena, sandbox=None, renamings=0, retries=0, seed=0
    )
    assert made == []  # no gold calls to replay: RL and eval only
