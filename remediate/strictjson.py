"""JSON read from disk (worlds, journals, plans), parsed strictly.

Python's ``json`` accepts what would later hurt a run: a key given twice keeps the last value
silently (``"protected": true, "protected": false``); ``"\\ud800"`` gives a string no file or
server can take (the run then fails writing its journal, after its changes); a number of
thousands of digits raises a bare ``ValueError``. Each is refused here with a
:class:`JsonProblem` saying where; callers name the file.
"""

from __future__ import annotations

import json
import re

# The escape of a UTF-16 surrogate; a pair decodes to one character, a lone one stays a
# surrogate. Only then is the parsed document walked, to find where.
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F][0-9a-fA-F]{2}")


class JsonProblem(ValueError):
    """Why a document was refused, and where (a line, or a JSON path)."""

    def __init__(self, message: str, where: str) -> None:
        self.message = message
        self.where = where
        super().__init__(f"{where}: {message}")


class _Duplicate(ValueError):
    def __init__(self, key: str) -> None:
        self.key = key
        super().__init__(key)


def _unique_keys(pairs: list[tuple[str, object]]) -> dict[str, object]:
    result = dict(pairs)
    if len(result) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise _Duplicate(key)
            seen.add(key)
    return result


def loads(text: str) -> object:
    """``text`` parsed; duplicate keys, lone surrogates and oversized numbers refused."""
    try:
        value = json.loads(text, object_pairs_hook=_unique_keys)
    except json.JSONDecodeError as error:
        raise JsonProblem(
            f"not valid JSON: {error.msg}", f"line {error.lineno} column {error.colno}"
        ) from None
    except _Duplicate as duplicate:
        raise JsonProblem(
            f"the key {json.dumps(duplicate.key, ensure_ascii=False)} is given twice in one "
            "object (which one was meant?)",
            _line_of_second(text, duplicate.key),
        ) from None
    except ValueError as error:  # int(): a number of more than 4,300 digits
        raise JsonProblem(
            f"a number too large to read ({error.args[0].split(':')[0]})", "$"
        ) from None
    if _SURROGATE_ESCAPE.search(text):
        path = _lone_surrogate(value, "$")
        if path is not None:
            raise JsonProblem(
                "a lone UTF-16 surrogate escape (\\ud800-\\udfff): not text "
                "any file or server can hold",
                path,
            )
    return value


def _line_of_second(text: str, key: str) -> str:
    found = list(re.finditer(re.escape(json.dumps(key, ensure_ascii=False)) + r"\s*:", text))
    if len(found) < 2:
        return "$"
    return f"line {text.count(chr(10), 0, found[1].start()) + 1}"


def _lone_surrogate(value: object, path: str) -> str | None:
    """The JSON path of the first string (or key) holding a lone surrogate, else None."""
    if isinstance(value, str):
        return path if _has_surrogate(value) else None
    if isinstance(value, list):
        for index, element in enumerate(value):
            found = _lone_surrogate(element, f"{path}[{index}]")
            if found is not None:
                return found
    elif isinstance(value, dict):
        for key, element in value.items():
            where = f"{path}.{key}" if key.isidentifier() else f"{path}[{json.dumps(key)}]"
            if _has_surrogate(key):
                return where
            found = _lone_surrogate(element, where)
            if found is not None:
                return found
    return None


def _has_surrogate(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def decoded(data: bytes) -> str:
    """UTF-8 ``data`` as text; invalid UTF-8 is a :class:`JsonProblem` naming the line."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as error:
        line = data.count(b"\n", 0, error.start) + 1
        raise JsonProblem(f"not UTF-8 (byte {data[error.start]:#04x})", f"line {line}") from None
