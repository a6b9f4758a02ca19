"""Sentinel passwords and the scanners that prove they never leak.

Every credential the test suite uses (the Samba DC's Administrator password, the WinRM
endpoint's account, the wrong passwords of failure tests) carries ``MARK``, a string nothing
else contains; finding ``MARK`` anywhere (output, files, exception texts, process arguments) in
any of the encodings a secret travels in is a leak.
"""

from __future__ import annotations

import base64
import os
import secrets
import threading
import traceback
from collections.abc import Iterable, Iterator
from pathlib import Path
from types import TracebackType

MARK = "Sntl7qXw9"


def sentinel(purpose: str) -> str:
    """A password carrying ``MARK`` (and AD's complexity rules: upper, lower, digit, symbol)."""
    return f"{MARK}-{purpose}-{secrets.token_hex(6)}!A1"


def _base64_forms(raw: bytes) -> list[bytes]:
    """What ``raw`` looks like inside any base64 text: one form per alignment (0, 1 or 2 bytes
    before it in its group), keeping only the groups made of ``raw``'s bytes alone."""
    forms = []
    for shift in range(3):
        encoded = base64.b64encode(b"\0" * shift + raw)
        whole = (shift + len(raw)) // 3 * 4  # complete groups
        forms.append(encoded[4 if shift else 0 : whole])
    return forms


def _forms(text: str) -> tuple[bytes, ...]:
    """``text`` as a secret travels: UTF-8, UTF-16-LE (PowerShell, NTLM), and either in base64
    (HTTP Basic, -EncodedCommand)."""
    utf8, utf16 = text.encode(), text.encode("utf-16-le")
    return (utf8, utf16, *_base64_forms(utf8), *_base64_forms(utf16))


_MARK_FORMS = _forms(MARK)


def contains_mark(data: bytes | str) -> bool:
    """Whether ``data`` holds ``MARK`` in any of the forms a secret travels in."""
    blob = data.encode("utf-8", "surrogateescape") if isinstance(data, str) else data
    return any(form in blob for form in _MARK_FORMS)


def leaking_files(root: Path) -> list[Path]:
    """Every file below ``root`` that holds ``MARK``."""
    return sorted(p for p in root.rglob("*") if p.is_file() and contains_mark(p.read_bytes()))


def exception_texts(error: BaseException) -> Iterator[str]:
    """Everything an exception says: str, repr, args and the formatted traceback, along the
    whole ``__cause__`` / ``__context__`` chain."""
    yield "".join(traceback.format_exception(error))
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield str(current)
        yield repr(current)
        yield from (repr(arg) for arg in current.args)
        current = current.__cause__ or current.__context__


def assert_no_mark(where: str, texts: Iterable[bytes | str]) -> None:
    for text in texts:
        assert not contains_mark(text), f"a sentinel password leaked into {where}: {text!r:.2000}"


def leaking_sections(sections: Iterable[tuple[str, str]]) -> list[str]:
    """The names of pytest report sections (captured stdout, stderr, log) that hold ``MARK``."""
    return [name for name, text in sections if contains_mark(text)]


def _children(pid: int) -> set[int]:
    found: set[int] = set()
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            stat = Path(entry.path, "stat").read_text()
        except OSError:
            continue
        parent = int(stat.rsplit(")", 1)[1].split()[1])
        if parent == pid:
            found.add(int(entry.name))
    return found


class ProcessWatch:
    """Polls ``/proc/<pid>/cmdline`` of a process and of every process below it while it runs;
    ``cmdlines`` holds every command line seen (as NUL-separated bytes)."""

    def __init__(self, pid: int, interval_s: float = 0.01) -> None:
        self.pid = pid
        self.interval_s = interval_s
        self.cmdlines: dict[int, bytes] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)

    def _poll(self) -> None:
        while not self._stop.is_set():
            pending, seen = {self.pid}, set()
            while pending:
                pid = pending.pop()
                seen.add(pid)
                try:
                    line = Path(f"/proc/{pid}/cmdline").read_bytes()
                except OSError:
                    continue
                if line:
                    self.cmdlines.setdefault(pid, line)
                pending |= _children(pid) - seen
            self._stop.wait(self.interval_s)

    def __enter__(self) -> ProcessWatch:
        self._thread.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self._stop.set()
        self._thread.join()
