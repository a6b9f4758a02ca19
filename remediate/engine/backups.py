"""Backups written before anything is deleted or stripped: LDIF per batch, fsync'd; and what a
later step (or a resumed run) reads back from them."""

from __future__ import annotations

import os
from collections.abc import Collection, Iterable, Sequence
from pathlib import Path
from typing import Protocol
from uuid import UUID

from remediate.engine.private import open_private, private_directory
from remediate.ldif import LdifError, ldif_pieces, modify_pieces, read_entries
from remediate.model import DirectoryEntry


class Backups(Protocol):
    def save_directory_entries(self, label: str, entries: Sequence[DirectoryEntry]) -> str:
        """Write these entries as LDIF (parents first) before they are deleted; returns
        where."""
        ...

    def save_cleared_attributes(
        self, label: str, entries: Sequence[DirectoryEntry], names: Sequence[str]
    ) -> str:
        """Write, before a strip, the LDIF that puts these attributes back on these entries
        (``changetype: modify``); returns where."""
        ...

    def recorded(self, label: str, guids: Collection[UUID]) -> dict[UUID, DirectoryEntry]:
        """The first backup made under ``label`` of each of these objects (absent: none),
        as it was written: what a step observed before it changed them."""
        ...


def write_durably(path: Path, text: str | Iterable[str]) -> None:
    """Write a new file and make sure it is on disk before returning. ``text`` may come in
    pieces, so a large file never has to be one string in memory."""
    tmp = path.with_name(path.name + ".tmp")
    with open_private(tmp, "w") as handle:
        handle.writelines([text] if isinstance(text, str) else text)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)
    directory_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(directory_fd)
    finally:
        os.close(directory_fd)


class DirectoryBackups:
    """Backups in ``<run dir>/backups/ad/``; a resumed run reads the same files."""

    def __init__(self, root: Path) -> None:
        self.root = root / "backups" / "ad"
        self._sequence = 0
        self._read: dict[str, dict[UUID, DirectoryEntry]] = {}

    def save_directory_entries(self, label: str, entries: Sequence[DirectoryEntry]) -> str:
        return self._write(label, ldif_pieces(entries))

    def save_cleared_attributes(
        self, label: str, entries: Sequence[DirectoryEntry], names: Sequence[str]
    ) -> str:
        return self._write(label, modify_pieces(entries, names))

    def recorded(self, label: str, guids: Collection[UUID]) -> dict[UUID, DirectoryEntry]:
        if label not in self._read:
            self._read[label] = self._load(label)
        held = self._read[label]
        return {guid: held[guid] for guid in guids if guid in held}

    def _load(self, label: str) -> dict[UUID, DirectoryEntry]:
        # Oldest first: a batch retried after a partial apply is backed up again, and only its
        # first backup shows every object as it was before the step.
        files = sorted(
            self.root.glob(f"{label}-*.ldif"), key=lambda path: (path.stat().st_mtime_ns, path.name)
        )
        found: dict[UUID, DirectoryEntry] = {}
        for path in files:
            try:
                entries = read_entries(path.read_text("utf-8"))
            except (LdifError, OSError, UnicodeDecodeError) as error:
                raise LdifError(f"the backup {path} cannot be read: {error}") from None
            for entry in entries:
                found.setdefault(entry.guid, entry)
        return found

    def _write(self, label: str, pieces: Iterable[str]) -> str:
        private_directory(self.root)
        self._sequence += 1
        path = self.root / f"{label}-{os.getpid()}-{self._sequence:05d}.ldif"
        while path.exists():
            self._sequence += 1
            path = self.root / f"{label}-{os.getpid()}-{self._sequence:05d}.ldif"
        write_durably(path, pieces)
        self._read.pop(label, None)
        return str(path)


class MemoryBackups:
    """For rehearsals: remembers what would have been backed up."""

    def __init__(self) -> None:
        self.saved: list[tuple[str, tuple[DirectoryEntry, ...]]] = []
        self._index: dict[str, dict[UUID, DirectoryEntry]] = {}

    def save_directory_entries(self, label: str, entries: Sequence[DirectoryEntry]) -> str:
        self.saved.append((label, tuple(entries)))
        self._index.pop(label, None)
        return f"memory:{label}"

    def save_cleared_attributes(
        self, label: str, entries: Sequence[DirectoryEntry], names: Sequence[str]
    ) -> str:
        # Kept as a real run reads its file back, so a rehearsal plans what the run will do.
        self.saved.append((label, tuple(read_entries("".join(modify_pieces(entries, names))))))
        self._index.pop(label, None)
        return f"memory:{label}"

    def recorded(self, label: str, guids: Collection[UUID]) -> dict[UUID, DirectoryEntry]:
        if label not in self._index:  # made once: a step observes its targets many times
            held: dict[UUID, DirectoryEntry] = {}
            for saved_label, entries in self.saved:
                if saved_label == label:
                    for entry in entries:
                        held.setdefault(entry.guid, entry)
            self._index[label] = held
        held = self._index[label]
        return {guid: held[guid] for guid in guids if guid in held}
