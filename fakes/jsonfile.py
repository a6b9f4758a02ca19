"""JSON files of the fakes: read with a JSON path in every error, written atomically.

Paths are built only when an error is reported, so checking a 100,000-user world stays cheap.
Files are laid out one record per line: readable, diffable, and written by the C encoder.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from collections.abc import Iterable, Iterator, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import NoReturn
from uuid import UUID

from remediate import strictjson
from remediate.engine.private import private_directory
from remediate.errors import InputError, WorldFormatError
from remediate.model import utc

_MISSING = object()
_ENCODER = json.JSONEncoder(ensure_ascii=False)


class At:
    """A position in a JSON document (``$.exchange.servers[0].name``), for error messages."""

    __slots__ = ("_key", "_parent", "source")

    def __init__(self, parent: At | None = None, key: str | int = "", *, source: str | None = None):
        self._parent = parent
        self._key = key
        self.source: str | None = source if source is not None or parent is None else parent.source

    def child(self, key: str | int) -> At:
        return At(self, key)

    def __str__(self) -> str:
        steps: list[str] = []
        at: At | None = self
        while at is not None and at._parent is not None:
            key = at._key
            if isinstance(key, int):
                steps.append(f"[{key}]")
            elif key.isidentifier():
                steps.append(f".{key}")
            else:
                steps.append(f"[{json.dumps(key)}]")
            at = at._parent
        return "$" + "".join(reversed(steps))

    def fail(self, message: str) -> NoReturn:
        raise WorldFormatError(str(self), message, source=self.source)


def kind_of(value: object) -> str:
    """How JSON would name the type of ``value``."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    return "an array" if isinstance(value, list) else "an object"


def as_object(value: object, at: At) -> dict[str, object]:
    if not isinstance(value, dict):
        at.fail(f"expected an object, got {kind_of(value)}")
    return value


def _field(data: Mapping[str, object], key: str, at: At, expected: str) -> object:
    value = data.get(key, _MISSING)
    if value is _MISSING:
        at.child(key).fail(f"missing: expected {expected}")
    return value


def text(data: Mapping[str, object], key: str, at: At, default: str | None = None) -> str:
    """A string field; required unless ``default`` is given."""
    if default is not None and key not in data:
        return default
    value = _field(data, key, at, "a string")
    if not isinstance(value, str):
        at.child(key).fail(f"expected a string, got {kind_of(value)}")
    return value


def flag(data: Mapping[str, object], key: str, at: At, default: bool | None = None) -> bool:
    if default is not None and key not in data:
        return default
    value = _field(data, key, at, "true or false")
    if not isinstance(value, bool):
        at.child(key).fail(f"expected true or false, got {kind_of(value)}")
    return value


def number(
    data: Mapping[str, object],
    key: str,
    at: At,
    default: float | None = None,
    *,
    low: float,
    high: float,
    why: str,
) -> float:
    """A number field within ``[low, high]``: Python's JSON reader also takes NaN, Infinity
    and 1e300, which no duration of a world can be (``why`` says where the bounds come from)."""
    if default is not None and key not in data:
        return default
    value = _field(data, key, at, "a number")
    if isinstance(value, bool) or not isinstance(value, int | float):
        at.child(key).fail(f"expected a number, got {kind_of(value)}")
    if not low <= value <= high:  # False for NaN too
        at.child(key).fail(
            f"expected a number from {low:,g} to {high:,.0f} ({why}), got {_ENCODER.encode(value)}"
        )
    return value


def uuid(data: Mapping[str, object], key: str, at: At) -> UUID:
    return parse_uuid(text(data, key, at), at, key)


def parse_uuid(value: str, at: At, key: str | None = None) -> UUID:
    """``value`` as a UUID; a failure is reported at ``at`` (or its ``key``)."""
    try:
        return UUID(value)
    except ValueError:
        where = at if key is None else at.child(key)
        where.fail(f"expected a UUID like 8c1e5a52-2f0e-4c59-9a4c-1d2b3c4d5e6f, got {value!r}")


def moment(data: Mapping[str, object], key: str, at: At) -> datetime:
    return parse_moment(text(data, key, at), at, key)


def optional_moment(data: Mapping[str, object], key: str, at: At) -> datetime | None:
    """A date-time field that may be absent or null."""
    if data.get(key) is None:
        return None
    return moment(data, key, at)


# What a world's date-times may be. AD keeps times from 1601 (FILETIME); a run adds its waits
# (hours, days) to the world's clock, and Python's datetime ends with the year 9999, so a moment
# in its last millennium would overflow mid-run instead of failing here.
EARLIEST = datetime(1601, 1, 1, tzinfo=UTC)
LATEST = datetime(9000, 1, 1, tzinfo=UTC)


def parse_moment(value: str, at: At, key: str | None = None) -> datetime:
    """``value`` as an aware UTC datetime; a failure is reported at ``at`` (or its ``key``)."""
    where = at if key is None else at.child(key)
    try:
        moment_ = utc(value)
    except (ValueError, OverflowError):
        where.fail(f"expected an ISO 8601 date-time like 2026-11-01T10:02:00Z, got {value!r}")
    if not EARLIEST <= moment_ < LATEST:
        where.fail(f"expected a date-time from the year 1601 to 8999, got {value!r}")
    return moment_


def elements(
    data: Mapping[str, object], key: str, at: At, *, optional: bool = False
) -> Iterator[tuple[At, object]]:
    """The elements of an array field, each with its position."""
    if optional and key not in data:
        return
    value = _field(data, key, at, "an array")
    if not isinstance(value, list):
        at.child(key).fail(f"expected an array, got {kind_of(value)}")
    if value:
        where = at.child(key)
        for index, element in enumerate(value):
            yield where.child(index), element


def members(
    data: Mapping[str, object], key: str, at: At, *, optional: bool = False
) -> dict[str, object]:
    """An object field (``{}`` when optional and absent)."""
    if optional and key not in data:
        return {}
    value = _field(data, key, at, "an object")
    return value if isinstance(value, dict) else as_object(value, at.child(key))


def format_time(value: datetime) -> str:
    """ISO 8601 UTC with a ``Z``, keeping microseconds when there are any (virtual time may
    have them, and a saved world must give back exactly the same moments)."""
    value = value.astimezone(UTC)
    return value.isoformat(timespec="microseconds" if value.microsecond else "seconds")[:-6] + "Z"


def read_json(path: Path) -> object:
    """The parsed content of ``path``; an unreadable or non-JSON file is an input error."""
    try:
        return strictjson.loads(strictjson.decoded(path.read_bytes()))
    except OSError as error:
        raise InputError(f"cannot read: {error.strerror}", target=str(path)) from None
    except strictjson.JsonProblem as problem:  # a key twice, a lone surrogate, not JSON
        if problem.where.startswith("$"):
            raise WorldFormatError(problem.where, problem.message, source=str(path)) from None
        raise WorldFormatError(
            "$", f"{problem.message} at {problem.where}", source=str(path)
        ) from None
    except RecursionError:
        raise _too_deep(path) from None


# No part of a world is more than a dozen levels deep; free-form parts (a mail item's extra
# fields, the scenario block) may nest, but not without end: the reader and the writer recurse.
MAX_DEPTH = 64
_TOKENS = re.compile(r'"(?:[^"\\]|\\.)*"|[\[\]{},]')


def check_depth(value: object, at: At, limit: int = MAX_DEPTH) -> None:
    """Fail at the first array or object nested deeper than ``limit`` below ``at``."""
    stack: list[tuple[At, object, int]] = [(at, value, 0)]
    while stack:
        where, node, depth = stack.pop()
        if isinstance(node, dict | list):
            if depth >= limit:
                where.fail(f"nested more than {limit} arrays or objects deep")
            pairs = node.items() if isinstance(node, dict) else enumerate(node)
            stack.extend((where.child(key), child, depth + 1) for key, child in pairs)


def _too_deep(path: Path) -> WorldFormatError:
    """The error for a document Python's JSON reader cannot nest into, naming where the
    nesting first passes MAX_DEPTH (found by a scan of the text: the reader gave up)."""
    text_ = path.read_text(encoding="utf-8")
    frames: list[list[str | int | None]] = []  # per open container: its current key or index
    for token in _TOKENS.finditer(text_):
        mark = token.group()
        if mark in ("{", "["):
            if len(frames) >= MAX_DEPTH:
                return WorldFormatError(
                    _short_path(frames),
                    f"nested more than {MAX_DEPTH} arrays or objects deep "
                    "(a world file needs a dozen)",
                    source=str(path),
                )
            frames.append([None] if mark == "{" else [0])
        elif mark in ("}", "]"):
            if frames:
                frames.pop()
        elif mark == ",":
            if frames and isinstance(frames[-1][0], int):
                frames[-1][0] += 1
            elif frames:
                frames[-1][0] = None
        elif frames and frames[-1][0] is None:
            frames[-1][0] = json.loads(mark)  # the key of an object's next member
    return WorldFormatError("$", "nested too deeply to read", source=str(path))


def _short_path(frames: list[list[str | int | None]], shown: int = 8) -> str:
    at = At()
    for (key,) in frames[:shown]:
        at = at.child(key if key is not None else "")
    return f"{at}…" if len(frames) > shown else str(at)


def dumps(data: object) -> str:
    """``data`` as JSON laid out for people: tables (arrays of objects) one row per line."""
    out: list[str] = []
    _lay_out(data, "", out, in_table=False)
    return "".join(out)


def _is_table(value: object) -> bool:
    return isinstance(value, list) and any(isinstance(element, dict) for element in value)


def _holds_table(value: object) -> bool:
    return isinstance(value, dict) and any(_is_table(element) for element in value.values())


def _spread(value: object, in_table: bool) -> bool:
    """Tables are spread over lines, and objects holding one; but a row stays on one line
    unless its tables have rows holding tables themselves (a store's mailboxes, not a
    mailbox's items)."""
    if isinstance(value, list):
        return _is_table(value)
    if not isinstance(value, dict):
        return False
    if in_table:
        return any(_is_table(v) and any(_holds_table(row) for row in v) for v in value.values())
    return any(_spread(element, False) for element in value.values())


def _lay_out(value: object, indent: str, out: list[str], *, in_table: bool) -> None:
    if isinstance(value, dict) and _spread(value, in_table):
        opening, closing, rows = "{", "}", False
        labelled = [(_ENCODER.encode(key) + ": ", element) for key, element in value.items()]
    elif isinstance(value, list) and _spread(value, in_table):
        opening, closing, rows = "[", "]", True
        labelled = [("", element) for element in value]
    else:
        out.append(_ENCODER.encode(value))
        return
    inner = indent + " "
    out.append(opening)
    for index, (label, element) in enumerate(labelled):
        out.append(("," if index else "") + "\n" + inner + label)
        _lay_out(element, inner, out, in_table=rows)
    out.append("\n" + indent + closing)


def write_json(path: Path, data: object) -> None:
    """Write ``data`` to ``path`` atomically: a temporary file, fsync'd, renamed over ``path``."""
    write_json_files([(path, data)])


def write_json_files(documents: Iterable[tuple[Path, object]]) -> None:
    """Write each document atomically (a temporary file, fsync'd, renamed over its path), then
    make the renames durable with one fsync per directory: a batch of N files costs N + 1
    fsyncs, not 2N. Nothing counts as written before this returns. ``documents`` may be made
    as they are written (a batch of 50,000 exports need not be in memory at once)."""
    directories: dict[Path, None] = {}
    for path, data in documents:
        _replace_durably(path, data)
        directories.setdefault(path.parent)
    for directory in directories:
        _fsync_directory(directory)


def _replace_durably(path: Path, data: object) -> None:
    private_directory(path.parent)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as stream:
            stream.write(dumps(data))
            stream.write("\n")
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def _fsync_directory(directory: Path) -> None:
    """Make the rename itself durable (POSIX; Windows cannot open a directory)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
