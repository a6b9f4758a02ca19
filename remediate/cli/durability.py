"""What the command line keeps on disk around a run against fakes or real servers: the world
a fake run leaves (durably, and wherever it can be written), outputs checked before the first
change, and what a stopped run left stopped, from its journal."""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
from pathlib import Path

from remediate.engine import events as ev
from remediate.engine.journal import read_journal
from remediate.engine.listener import RunInfo, RunListener
from remediate.errors import InputError
from remediate.fakes import FakeWorld, save_world
from remediate.ports import World


class DurableWorld(RunListener):
    """--durable-world: the fake world is saved in the run directory now, after every change
    that takes effect, and whenever a step completes (a wait moves only the virtual clock and
    replication, which the next step relies on), so a killed process (SIGKILL, power loss)
    leaves the servers' state behind, as real servers would, and ``resume`` continues from it.
    As a listener it is told a step completed before the journal records it."""

    def __init__(self, world: World | None) -> None:
        """``world``: the world to keep (None, or real servers: nothing to keep)."""
        self._world = world if isinstance(world, FakeWorld) else None
        self._path: Path | None = None
        self._applying = False

    def attach(self, run_dir: Path) -> None:
        if self._world is not None:
            self._path = run_dir / "world.json"
            self.save()
            self._world.on_change(self.save)

    def save(self) -> None:
        if self._world is not None and self._path is not None:
            save_world(self._world, self._path)

    def on_run_opened(self, run: RunInfo) -> None:
        self._applying = not run.planned

    def on_step_completed(self, step: str) -> None:
        if self._applying:
            self.save()


def save_left_world(also_at: str | None, world: FakeWorld, run_dirs: list[Path]) -> None:
    """The world the run leaves, in its run directory (what resume reads) and at --save-world;
    where one cannot be written (a full disk), to the first place that takes it, and said."""
    wanted = [run_dir / "world.json" for run_dir in run_dirs]
    extra = [Path(also_at)] if also_at else []  # --save-world
    fallbacks = [Path(tempfile.gettempdir()), Path.home()]
    for path in [*wanted, *extra]:
        try:
            save_world(world, path)
            continue
        except OSError as error:
            failed = f"could not write {path}: {error.strerror or error}"
        for place in [
            *extra,
            *(folder / f"remediate-{path.parent.name}-world.json" for folder in fallbacks),
        ]:
            if place == path:
                continue
            with contextlib.suppress(OSError):
                save_world(world, place)
                how = (
                    f"copy it to {path}, then resume the run"
                    if path in wanted
                    else "nothing was lost"
                )
                print(
                    f"warning: {failed}; the world the run left was saved to {place} "
                    f"instead: {how}",
                    file=sys.stderr,
                )
                break
        else:
            print(
                f"error: {failed}, nor anywhere else: the world the run left is lost "
                "(a fake world lives only in this process)",
                file=sys.stderr,
            )


def check_writable(option: str, value: str | None) -> None:
    """An output named on the command line, checked before anything is changed."""
    if not value:
        return
    path = Path(value)
    folder = path.parent if str(path.parent) else Path(".")
    if (
        not folder.is_dir()
        or not os.access(folder, os.W_OK)
        or (path.exists() and not os.access(path, os.W_OK))
    ):
        raise InputError(
            f"{option} {value}: cannot be written there",
            target="command line",
            hint="name a file in a folder you can write to; nothing was changed",
        )


def services_left_stopped(run_dir: Path) -> list[str]:
    """Services the run (every process of it) stopped and has not started again."""
    try:
        records = read_journal(run_dir / "journal.jsonl").records
    except InputError:
        return []
    last: dict[str, tuple[str, object]] = {}
    for record in records:
        states = (record.get("before"), record.get("after"))
        if record.get("event") == ev.STEP_APPLIED and states in (
            ("running", "stopped"),
            ("stopped", "running"),
        ):
            last[str(record.get("target"))] = (str(record.get("label")), record.get("after"))
    return [label for label, now in last.values() if now == "stopped"]
