"""Backups written before anything is deleted or stripped: LDIF per batch, fsync'd."""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Protocol

from remediate.engine.private import open_private, private_directory
from remediate.ldif import ldif_pieces
from remediate.model import DirectoryEntry


class Backups(Protocol):
    def save_directory_entries(self, label: str, entries: Sequence[DirectoryEntry]) -> str:
        """Write these entries as LDIF before they change; returns where."""
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
    """Backups in ``<run dir>/backups/ad/``."""

    def __init__(self, root: Path) -> None:
        self.root = root / "backups" / "ad"
        self._sequence = 0

    def save_directory_entries(self, label: str, entries: Sequence[DirectoryEntry]) -> str:
        private_directory(self.root)
        self._sequence += 1
        path = self.root / f"{label}-{os.getpid()}-{self._sequence:05d}.ldif"
        while path.exists():
            self._sequence += 1
            path = self.root / f"{label}-{os.getpid()}-{self._sequence:05d}.ldif"
        write_durably(path, ldif_pieces(entries))
        return str(path)


class MemoryBackups:
    """For rehearsals: remembers what would have been backed up."""

    def __init__(self) -> None:
        self.saved: list[tuple[str, tuple[DirectoryEntry, ...]]] = []

    def save_directory_entries(self, label: str, entries: Sequence[DirectoryEntry]) -> str:
        self.saved.append((label, tuple(entries)))
        return f"memory:{label}"
