"""The run directory: an append-only, fsync'd JSONL journal, plus the per-organisation lock."""

from __future__ import annotations

import fcntl
import json
import os
import re
import secrets
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, cast

from remediate import strictjson
from remediate.engine.changes import JsonValue
from remediate.engine.private import open_private, private_directory
from remediate.errors import InputError, LockHeld

JournalRecord = dict[str, JsonValue]


class Journal:
    """Append-only JSON lines. ``append`` buffers; ``sync`` writes and fsyncs.

    A buffer of ``WRITE_AFTER`` records is written (not fsync'd) as it fills: a batch of
    100,000 targets would otherwise hold that many records in memory until its checkpoint.
    A record written early is one whose event has happened; ``sync`` still decides what is
    durable.
    """

    WRITE_AFTER = 1024

    def __init__(self, path: Path) -> None:
        self.path = path
        _end_at_line_boundary(path)
        self._handle: IO[str] = open_private(path, "a")
        self._buffer: list[str] = []

    def append(self, record: JournalRecord) -> None:
        self._buffer.append(json.dumps(record, ensure_ascii=False, separators=(",", ":")))
        if len(self._buffer) >= self.WRITE_AFTER:
            self._write()

    def sync(self) -> None:
        self._write()
        self._handle.flush()
        os.fsync(self._handle.fileno())

    def _write(self) -> None:
        if self._buffer:
            self._handle.write("\n".join(self._buffer) + "\n")
            self._buffer.clear()

    def close(self) -> None:
        if not self._handle.closed:
            self.sync()
            self._handle.close()

    def abandon(self) -> None:
        """Close without writing what is still buffered, as a crash would."""
        self._buffer.clear()
        if not self._handle.closed:
            self._handle.close()


def _end_at_line_boundary(path: Path) -> None:
    """Before appending to a journal a crash cut off mid-write: drop the partial last line
    (``read_journal`` ignores it), or end a complete last record that lost only its newline.
    Otherwise the next record would be glued to it, damaging the journal in the middle."""
    if not path.exists():
        return
    with open(path, "rb+") as handle:
        data = handle.read()
        if not data or data.endswith(b"\n"):
            return
        start = data.rfind(b"\n") + 1
        try:
            json.loads(data[start:])
        except ValueError:
            handle.truncate(start)
        else:
            handle.write(b"\n")
        handle.flush()
        os.fsync(handle.fileno())


@dataclass(frozen=True, slots=True)
class JournalContents:
    records: list[JournalRecord]
    truncated_line: int | None  # a last line cut off mid-write (crash), ignored


def read_journal(path: Path) -> JournalContents:
    """Every record of a journal; a damaged line (not UTF-8, not JSON, a key given twice, not
    an object) is an :class:`InputError` naming it, unless it is the last one: a crash cut
    that one off mid-write (even mid-character), and it is ignored."""
    records: list[JournalRecord] = []
    truncated: int | None = None
    try:
        lines = path.read_bytes().split(b"\n")
    except OSError as error:
        raise InputError(f"cannot read the journal: {error.strerror}", target=str(path)) from None
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            record = strictjson.loads(strictjson.decoded(line))
            if not isinstance(record, dict):
                raise strictjson.JsonProblem("expected a JSON object (one record a line)", "$")
        except strictjson.JsonProblem as problem:
            if number >= len(lines) - 1:
                truncated = number
                break
            raise InputError(
                f"line {number}: {problem.message}",
                target=str(path),
                hint="the journal is damaged in the middle; inspect it by hand",
            ) from None
        records.append(cast(JournalRecord, record))
    return JournalContents(records, truncated)


# The playbook's name in the middle: any registered name (lower case, digits, "-", "_", ".").
_RUN_ID = re.compile(r"^[0-9]{8}T[0-9]{6}Z-[a-z0-9][a-z0-9_.-]*-[0-9a-f]{6}$")


def new_run_id(playbook: str, now: datetime) -> str:
    return f"{now.astimezone(UTC):%Y%m%dT%H%M%SZ}-{playbook}-{secrets.token_hex(3)}"


class RunStore:
    """``<state dir>/runs/<run id>/`` for each run; the organisation locks in
    ``<state dir>/locks/``, or beside ``lock_beside`` (a world file: every run against it takes
    the same lock, whichever state directory it keeps its runs in)."""

    def __init__(self, state_dir: Path, lock_beside: Path | None = None) -> None:
        self.state_dir = state_dir
        self.runs_dir = state_dir / "runs"
        self.locks_dir = state_dir / "locks"
        self.lock_beside = lock_beside

    def create(self, run_id: str) -> Path:
        path = self.runs_dir / run_id
        private_directory(path, exist_ok=False)
        return path

    def path(self, run_id: str) -> Path:
        if not _RUN_ID.match(run_id):
            raise InputError(
                "is not a run id", target=run_id, hint="list runs with: remediate runs"
            )
        path = self.runs_dir / run_id
        if not (path / "journal.jsonl").exists():
            raise InputError(
                f"no such run under {self.runs_dir}",
                target=run_id,
                hint="list runs with: remediate runs (or pass --state-dir)",
            )
        return path

    def run_ids(self) -> Iterator[str]:
        """Oldest first (ids start with the second they began; ties by journal creation)."""
        if not self.runs_dir.is_dir():
            return
        runs = [entry for entry in self.runs_dir.iterdir() if (entry / "journal.jsonl").exists()]
        runs.sort(key=lambda entry: (entry.name[:16], _first_timestamp(entry / "journal.jsonl")))
        for entry in runs:
            yield entry.name

    def lock(self, organisation: str, run_id: str) -> OrganisationLock:
        # AD domain names are case-insensitive: corp.example and CORP.EXAMPLE are one lock.
        safe = re.sub(r"[^a-z0-9._-]", "_", organisation.casefold()) or "default"
        private_directory(self.locks_dir)
        paths = [self.locks_dir / f"{safe}.lock"]
        beside = self.lock_beside
        if beside is not None and beside.parent.is_dir():
            paths.insert(0, beside.with_name(f".{beside.name}.{safe}.lock"))
        return OrganisationLock(paths, organisation, run_id)


def _first_timestamp(path: Path) -> str:
    """The ``ts`` of a journal's first record (microseconds), '' if unreadable."""
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            first = handle.readline()
        record = json.loads(first)
    except (OSError, ValueError):  # a damaged run still sorts (its id has the second)
        return ""
    return str(record.get("ts", "")) if isinstance(record, dict) else ""


class OrganisationLock:
    """One run at a time per organisation. An flock dies with its process, so a lock left by
    a crashed or killed run is never in the way; the file names the holder for the message.
    Several files may make one lock (beside a world file and in the state directory): every
    one is taken, in a fixed order, or none."""

    def __init__(self, paths: Path | list[Path], organisation: str, run_id: str) -> None:
        self.paths = [paths] if isinstance(paths, Path) else list(paths)
        self.path = self.paths[0]
        self.organisation = organisation
        self.run_id = run_id
        # Who held the lock last and never released it (a run that crashed or was killed; a
        # clean release empties the file), or None.
        self.left_by: str | None = None
        self._fds: list[int] = []

    def acquire(self) -> None:
        try:
            for path in self.paths:
                self._take(path)
        except BaseException:
            self.release()
            raise

    def _take(self, path: Path) -> None:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 4096, 0).decode("utf-8", "replace").strip() or "unknown"
            os.close(fd)
            raise LockHeld(
                f"another run holds the lock ({holder})",
                target=f"organisation {self.organisation}",
                hint="wait for it to finish, or resume that run instead",
            ) from None
        left_by = os.pread(fd, 4096, 0).decode("utf-8", "replace").strip() or None
        self.left_by = self.left_by or left_by
        os.ftruncate(fd, 0)
        holder = f"run {self.run_id}, pid {os.getpid()} on {socket.gethostname()}"
        os.pwrite(fd, holder.encode("utf-8"), 0)
        self._fds.append(fd)

    def release(self) -> None:
        while self._fds:
            fd = self._fds.pop()
            os.ftruncate(fd, 0)
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)

    def __enter__(self) -> OrganisationLock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()
