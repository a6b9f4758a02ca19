"""World files whose numbers, dates or nesting no world can hold: each is one line naming the
JSON path and what is expected, exit 1, never a traceback (Python's JSON reader takes NaN,
Infinity and 1e300, and stops at about a thousand levels with a RecursionError)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from remediate.cli.main import main
from remediate.errors import WorldFormatError
from remediate.fakes import load_world
from remediate.fakes.scenarios import kb842101

Doc = dict[str, Any]
Edit = Callable[[Doc], None]
DEEP = 100_000


def _set(*keys: str | int, value: Any) -> Edit:
    def edit(doc: Doc) -> None:
        node: Any = doc
        for key in keys[:-1]:
            node = node[key]
        node[keys[-1]] = value

    return edit


def _first_item_extra(value: Any) -> Edit:
    def edit(doc: Doc) -> None:
        store = doc["exchange"]["servers"][0]["stores"][0]
        store["mailboxes"][0]["items"][0]["headers"] = value

    return edit


def _nested(depth: int) -> Any:
    value: Any = []
    for _ in range(depth - 1):
        value = [value]
    return value


FIRST_ITEM = "$.exchange.servers[0].stores[0].mailboxes[0].items[0].headers"
CASES: list[tuple[str, Edit, str, str]] = [
    (
        "lag NaN",
        _set("directory", "dcs", 1, "replication_delay_s", value=float("nan")),
        "$.directory.dcs[1].replication_delay_s",
        "got NaN",
    ),
    (
        "lag Infinity",
        _set("directory", "dcs", 1, "replication_delay_s", value=float("inf")),
        "$.directory.dcs[1].replication_delay_s",
        "got Infinity",
    ),
    (
        "lag 1e300",
        _set("directory", "dcs", 1, "replication_delay_s", value=1e300),
        "$.directory.dcs[1].replication_delay_s",
        "got 1e+300",
    ),
    (
        "cleanup NaN",
        _set("exchange", "servers", 0, "cleanup_interval_s", value=float("nan")),
        "$.exchange.servers[0].cleanup_interval_s",
        "got NaN",
    ),
    (
        "cleanup 1e300",
        _set("exchange", "servers", 0, "cleanup_interval_s", value=1e300),
        "$.exchange.servers[0].cleanup_interval_s",
        "got 1e+300",
    ),
    (
        "created 9999",
        _set("directory", "objects", 3, "when_created", value="9999-12-31T23:59:59Z"),
        "$.directory.objects[3].when_created",
        "from the year 1601 to 8999",
    ),
    (
        "clock 9999",
        _set("clock", value="9999-12-31T23:59:59Z"),
        "$.clock",
        "from the year 1601 to 8999",
    ),
    (
        "usn 2**64",
        _set("directory", "objects", 3, "usn_changed", value=2**64),
        "$.directory.objects[3].usn_changed",
        "whole number",
    ),
    ("extra 100 deep", _first_item_extra(_nested(100)), FIRST_ITEM + "[0]", "nested more than 64"),
    (
        "scenario 100 deep",
        _set("scenario", "notes", value=_nested(100)),
        "$.scenario.notes[0]",
        "nested more than 64",
    ),
]


def world_file(tmp_path: Path, edit: Edit) -> Path:
    doc = kb842101(3, 1)
    edit(doc)
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(doc), encoding="utf-8")  # NaN and Infinity as Python writes them
    return path


@pytest.mark.parametrize(
    ("edit", "path", "expected"), [case[1:] for case in CASES], ids=[case[0] for case in CASES]
)
def test_an_impossible_value_is_an_error_naming_its_json_path(
    tmp_path: Path, edit: Edit, path: str, expected: str
) -> None:
    bad = world_file(tmp_path, edit)

    with pytest.raises(WorldFormatError) as error:
        load_world(bad)

    assert error.value.json_path.startswith(path)
    assert expected in error.value.message


def test_json_nested_100000_deep_names_where_it_gets_too_deep(tmp_path: Path) -> None:
    doc = kb842101(3, 1)
    text = json.dumps(doc)
    bad = tmp_path / "deep.json"
    bad.write_text(
        text[:-1] + ', "notes": {"x": ' + "[" * DEEP + "]" * DEEP + "}}", encoding="utf-8"
    )

    with pytest.raises(WorldFormatError) as error:
        load_world(bad)

    assert error.value.json_path.startswith("$.notes.x[0][0][0]")
    assert "nested more than 64" in error.value.message


@pytest.mark.parametrize("case", [CASES[0], CASES[2], CASES[5]], ids=lambda case: case[0])
def test_the_command_line_reports_it_in_one_line_with_exit_code_1(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    case: tuple[str, Edit, str, str],
) -> None:
    monkeypatch.setenv("REMEDIATE_STATE_DIR", str(tmp_path / "state"))
    bad = world_file(tmp_path, case[1])

    code = main(["-q", "plan", "kb842101", "--world", str(bad)])

    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if not line.startswith("{")]
    assert code == 1
    assert lines == [lines[0]] and lines[0].startswith(f"error: {bad}: {case[2]}: ")
    assert "Traceback" not in err
