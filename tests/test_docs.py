"""The documentation in docs/ stays true to the code it describes.

- docs/decisions.md has a section for every quirk Q1-Q18 of spec §12;
- every ``tests/<file>.py::<name>`` a doc names exists, and every test in
  tests/test_decisions.py is named by docs/decisions.md;
- docs/events-and-commands.md lists every event and command class with all its field names,
  and every ``NoteAnomaly`` kind the core can emit;
- docs/architecture.md's module map names every core module;
- every example line in docs/log-format.md decodes and re-encodes byte for byte.
"""

from __future__ import annotations

import ast
import json
import re
from functools import cache
from pathlib import Path

import attrs
import pytest

from swarmfold.core import RunSummary
from swarmfold.core.commands import COMMAND_TYPES, Command
from swarmfold.core.events import EVENT_TYPES, EdgeRow, Event, TaskRow
from swarmfold.shell.log.codec import from_json, to_json
from swarmfold.shell.log.id_runs import compact_by_status, expand_ids

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
DOC_NAMES = ("architecture.md", "events-and-commands.md", "decisions.md", "log-format.md")
TEST_REF = re.compile(r"\b(tests/[\w/]+\.py)::(\w+)")


def doc(name: str) -> str:
    return (DOCS / name).read_text(encoding="utf-8")


@cache
def defined_tests(path: str) -> frozenset[str]:
    """Names of the test functions (module level, or methods of Test classes) in one file."""
    tree = ast.parse((ROOT / path).read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in tree.body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            names.add(node.name)
        elif isinstance(node, ast.ClassDef):
            names.update(
                f"{node.name}::{item.name}" for item in node.body
                if isinstance(item, ast.FunctionDef | ast.AsyncFunctionDef)
            )
    return frozenset(n for n in names if n.split("::")[-1].startswith("test"))


def table_row(text: str, name: str) -> str:
    """The markdown table row whose first cell is `name`."""
    rows = [line for line in text.splitlines() if line.startswith(f"| `{name}` |")]
    assert len(rows) == 1, f"expected one table row for `{name}`, found {len(rows)}"
    return rows[0]


def field_names(cls: type) -> list[str]:
    return [a.name for a in attrs.fields(cls)]


# --- decisions.md ----------------------------------------------------------------------------


@pytest.mark.parametrize("n", range(1, 19))
def test_decisions_has_a_section_per_quirk(n: int) -> None:
    sections = re.findall(rf"^### Q{n}:.*$", doc("decisions.md"), flags=re.MULTILINE)
    assert len(sections) == 1, f"docs/decisions.md needs exactly one '### Q{n}: ...' section"


def test_every_decision_section_names_a_test() -> None:
    text = doc("decisions.md")
    sections = re.split(r"^### ", text, flags=re.MULTILINE)[1:]
    assert len(sections) >= 18
    missing = [s.splitlines()[0] for s in sections if not TEST_REF.search(s)]
    assert missing == []


@pytest.mark.parametrize("name", DOC_NAMES)
def test_every_test_reference_in_the_docs_exists(name: str) -> None:
    refs = TEST_REF.findall(doc(name))
    missing = [f"{path}::{test}" for path, test in refs
               if not (ROOT / path).is_file() or test not in defined_tests(path)]
    assert missing == [], f"docs/{name} names tests that do not exist"


def test_every_decision_test_is_documented() -> None:
    named = {test for path, test in TEST_REF.findall(doc("decisions.md"))
             if path == "tests/test_decisions.py"}
    assert sorted(defined_tests("tests/test_decisions.py") - named) == []


# --- events-and-commands.md ------------------------------------------------------------------


@pytest.mark.parametrize("cls", EVENT_TYPES + COMMAND_TYPES, ids=lambda c: c.__name__)
def test_catalogue_lists_every_class_with_all_its_fields(cls: type) -> None:
    row = table_row(doc("events-and-commands.md"), cls.__name__)
    cells = row.split(" | ")
    missing = [f for f in field_names(cls) if f"`{f}`" not in cells[1]]
    assert missing == [], f"fields cell of {cls.__name__} lacks {missing}"


@pytest.mark.parametrize("cls", [TaskRow, EdgeRow], ids=lambda c: c.__name__)
def test_catalogue_lists_the_chunk_rows_with_all_their_fields(cls: type) -> None:
    row = table_row(doc("events-and-commands.md"), cls.__name__)
    assert [f for f in field_names(cls) if f"`{f}`" not in row] == []


def test_catalogue_lists_the_summary_fields() -> None:
    text = doc("events-and-commands.md")
    assert [f for f in field_names(RunSummary) if f"`{f}`" not in text] == []


def test_catalogue_lists_exactly_the_anomaly_kinds_the_core_emits() -> None:
    source = "\n".join(p.read_text(encoding="utf-8") for p in sorted((ROOT / "core").glob("*.py")))
    emitted = set(re.findall(r"\bnote\(\s*\"([a-z_]+)\"", source))
    assert "stale_report" in emitted  # the pattern still finds the calls
    text = doc("events-and-commands.md")
    kinds_section = text[text.index("## `NoteAnomaly` kinds"):]
    documented = set(re.findall(r"^\| `([a-z_]+)` \|", kinds_section, flags=re.MULTILINE))
    assert documented == emitted


def test_catalogue_answer_columns_name_real_classes() -> None:
    known = {c.__name__ for c in EVENT_TYPES + COMMAND_TYPES}
    text = doc("events-and-commands.md")
    for cls in EVENT_TYPES + COMMAND_TYPES:
        last_cell = table_row(text, cls.__name__).rstrip(" |").rsplit(" | ", 1)[-1]
        named = set(re.findall(r"`([A-Z]\w+)`", last_cell))
        assert named <= known, f"{cls.__name__}: unknown classes {named - known}"


# --- architecture.md -------------------------------------------------------------------------


def test_module_map_names_every_core_module() -> None:
    text = doc("architecture.md")
    modules = sorted(p.name for p in (ROOT / "core").glob("*.py"))
    assert [m for m in modules if f"| `core/{m}` |" not in text] == []


# --- log-format.md ---------------------------------------------------------------------------


def example_lines() -> list[str]:
    blocks = re.findall(r"^```jsonl\n(.*?)^```", doc("log-format.md"), flags=re.MULTILINE | re.DOTALL)
    return [line for block in blocks for line in block.splitlines() if line.strip()]


def test_log_format_has_examples_of_both_kinds() -> None:
    tags = {json.loads(line)["type"] for line in example_lines()}
    assert tags & {c.__name__ for c in EVENT_TYPES}
    assert tags & {c.__name__ for c in COMMAND_TYPES}
    assert len(example_lines()) >= 20


@pytest.mark.parametrize(
    ("heading", "done_ids"),
    [
        ("### Long id lists as runs", (*range(1, 65), *range(70, 78))),
        ("### Increasing id lists as bitmaps", tuple(range(100, 228, 2))),
    ],
    ids=["runs", "bitmap"],
)
def test_log_format_short_id_list_example_is_what_the_log_writes(
    heading: str, done_ids: tuple[int, ...]
) -> None:
    section = doc("log-format.md").split(heading, 1)[1]
    example = re.search(r"^```json\n(.*?)\n```", section, flags=re.MULTILINE | re.DOTALL)
    assert example is not None
    written = json.loads(example.group(1))
    plain = {k: expand_ids(ids) if isinstance(ids, dict) else tuple(ids) for k, ids in written.items()}
    assert plain["D"] == done_ids
    assert json.dumps(compact_by_status(plain), separators=(",", ":")) == example.group(1)


@pytest.mark.parametrize("line", example_lines(), ids=lambda s: json.loads(s)["type"])
def test_log_format_example_round_trips_byte_for_byte(line: str) -> None:
    tag = json.loads(line)["type"]
    union = Event if tag in {c.__name__ for c in EVENT_TYPES} else Command
    value = from_json(line, union)
    assert type(value).__name__ == tag
    assert to_json(value) == line
