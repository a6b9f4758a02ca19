"""The run directory and the organisation lock: one run at a time, a dead holder never blocks,
the journal is fsync'd JSON lines that survive a cut-off last line, resume refuses what it must
and leaves finished runs alone, and every deleted object is backed up as LDIF first."""

from __future__ import annotations

import base64
import json
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from uuid import UUID

import pytest
from run_support import (
    MUTATING,
    Case,
    Doc,
    apply,
    comparable,
    events,
    journal,
    load,
    only_run,
    run_dirs,
    snapshot,
)

from remediate import PLAYBOOKS, Engine, LockHeld, Refused, Safety
from remediate.cli.main import main
from remediate.engine.journal import JournalRecord, RunStore, read_journal
from remediate.engine.runner import load_run_state
from remediate.fakes import FakeWorld, SimulatedCrash, save_world

KB842101 = Case("kb842101", "2003")
KB842101_2016 = Case("kb842101", "2016")
ORGANISATION = "corp.example"  # the scenario worlds' domain
HOLDER_RUN = "20261101T090000Z-kb842101-abc123"
LOCK_HOLDER = """
import sys, time
from pathlib import Path
from remediate.engine.journal import RunStore
RunStore(Path(sys.argv[1])).lock(sys.argv[2], sys.argv[3]).acquire()
print("locked", flush=True)
time.sleep(120)
"""


pytestmark = pytest.mark.usefixtures("quiet")


@pytest.fixture
def lock_holder(state_dir: Path) -> Iterator[subprocess.Popen[str]]:
    """Another process holding the organisation's lock for run ``HOLDER_RUN``."""
    process = subprocess.Popen(
        [sys.executable, "-c", LOCK_HOLDER, str(state_dir), ORGANISATION, HOLDER_RUN],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        assert process.stdout.readline().strip() == "locked"
        yield process
    finally:
        if process.poll() is None:
            process.kill()
        process.wait(timeout=30)
        if process.stdout is not None:
            process.stdout.close()


# -- the lock -------------------------------------------------------------------------------------


def test_apply_while_another_run_holds_the_lock_is_refused_naming_the_holder(
    state_dir: Path,
    lock_holder: subprocess.Popen[str],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    doc = KB842101.document()
    world = load(doc)

    with pytest.raises(LockHeld) as raised:
        apply(Engine(state_dir=state_dir), KB842101, world, doc).raise_for_stop()

    message = str(raised.value)
    assert raised.value.exit_code == 3
    assert f"run {HOLDER_RUN}" in message and f"pid {lock_holder.pid}" in message
    assert ORGANISATION in message
    assert world.faults.count == 0, "a refused run must not even read the servers"
    assert run_dirs(state_dir) == []

    # The command line says the same and exits 3.
    world_file = tmp_path / "world.json"
    save_world(load(doc), world_file)
    code = main(
        ["--state-dir", str(state_dir), "apply", "kb842101", "--world", str(world_file), "--yes"]
    )
    err = capsys.readouterr().err
    assert code == 3
    assert HOLDER_RUN in err and f"pid {lock_holder.pid}" in err
    assert run_dirs(state_dir) == []


def test_a_lock_left_by_a_killed_process_does_not_block_the_next_run(
    state_dir: Path, lock_holder: subprocess.Popen[str]
) -> None:
    lock_holder.send_signal(signal.SIGKILL)
    assert lock_holder.wait(timeout=30) == -signal.SIGKILL

    doc = KB842101_2016.document()
    seen: list[JournalRecord] = []
    result = apply(
        Engine(state_dir=state_dir, subscribers=(seen.append,)), KB842101_2016, load(doc), doc
    )
    assert result.state == "done"
    # ... and says whose lock it took over, and how to continue that run
    assert HOLDER_RUN in result.warnings[0] and "crashed or was killed" in result.warnings[0]
    assert "remediate resume" in result.warnings[0]
    assert [r["left_by"] for r in seen if r["event"] == "run.lock_abandoned"] == [
        f"run {HOLDER_RUN}, pid {lock_holder.pid} on {socket.gethostname()}"
    ]
    # a lock released cleanly leaves nothing to report
    again = apply(Engine(state_dir=state_dir), KB842101_2016, load(doc), doc)
    assert not [w for w in again.warnings if "crashed or was killed" in w]


# -- the journal ----------------------------------------------------------------------------------


def interrupted_run(
    case: Case, doc: Doc, state_dir: Path, after: int
) -> tuple[Engine, FakeWorld, Path]:
    """A run that crashed ``after`` operations past its safety gates: (engine, world, run dir)."""
    world = load(doc)

    def crash_later(record: JournalRecord) -> None:
        if record["event"] == "run.approved":
            world.faults.crash_after(after)

    engine = Engine(state_dir=state_dir, subscribers=(crash_later,))
    with pytest.raises(SimulatedCrash):
        apply(engine, case, world, doc).raise_for_stop()
    return Engine(state_dir=state_dir), world, only_run(state_dir)


def test_a_journal_cut_off_mid_line_is_read_to_its_last_complete_line_and_resume_says_so(
    state_dir: Path, tmp_path: Path
) -> None:
    doc = KB842101_2016.document()
    reference = load(doc)
    apply(Engine(state_dir=tmp_path / "reference"), KB842101_2016, reference, doc)
    engine, world, run_dir = interrupted_run(KB842101_2016, doc, state_dir, after=12)
    path = run_dir / "journal.jsonl"
    complete = journal(run_dir)
    with open(path, "a", encoding="utf-8") as handle:
        handle.write('{"event":"step.applied","run_id":"' + run_dir.name + '","step":"dele')

    contents = read_journal(path)
    assert contents.records == complete
    assert contents.truncated_line == len(complete) + 1
    assert load_run_state(run_dir).truncated_line == len(complete) + 1

    result = engine.resume(run_dir.name, world, PLAYBOOKS)

    assert result.state == "done"
    assert [w for w in result.warnings if f"line {len(complete) + 1} was cut off" in w]
    assert comparable(snapshot(world)) == comparable(snapshot(reference))
    records = journal(run_dir)  # every line is complete JSON again: the fragment is gone
    assert records[: len(complete)] == complete
    said = [r for r in records if r["event"] == "run.journal_truncated"]
    assert [r["line"] for r in said] == [len(complete) + 1]
    state = load_run_state(run_dir)
    assert state.state == "done" and state.truncated_line is None


def test_a_journal_whose_last_record_lost_only_its_newline_keeps_it_and_resume_finishes(
    state_dir: Path,
) -> None:
    doc = KB842101_2016.document()
    engine, world, run_dir = interrupted_run(KB842101_2016, doc, state_dir, after=12)
    path = run_dir / "journal.jsonl"
    complete = journal(run_dir)
    path.write_bytes(path.read_bytes().rstrip(b"\n"))
    assert read_journal(path).records == complete

    result = engine.resume(run_dir.name, world, PLAYBOOKS)

    assert result.state == "done"
    records = journal(run_dir)
    assert records[: len(complete)] == complete
    assert records[len(complete)]["event"] == "run.resumed"
    assert load_run_state(run_dir).state == "done"


def test_resume_of_a_run_refused_for_want_of_confirmation_is_refused_and_changes_nothing(
    state_dir: Path,
) -> None:
    doc = KB842101.document()
    world = load(doc)
    before = snapshot(world)
    engine = Engine(state_dir=state_dir)
    with pytest.raises(Refused, match="not confirmed") as refused:
        engine.apply(
            KB842101.runbook, world, doc["scenario"]["parameters"], safety=Safety()
        ).raise_for_stop()
    assert refused.value.exit_code == 3
    run_dir = only_run(state_dir)
    written = (run_dir / "journal.jsonl").read_bytes()

    with pytest.raises(Refused) as again:
        engine.resume(run_dir.name, world, PLAYBOOKS).raise_for_stop()

    message = str(again.value)
    assert again.value.exit_code == 3
    assert run_dir.name in message and "safety gates" in message
    assert "nothing was changed" in message and "new apply" in message
    assert snapshot(world) == before
    assert not [op for op in world.faults.log if op in MUTATING]
    assert (run_dir / "journal.jsonl").read_bytes() == written
    assert not events(run_dir, "run.approved")


def test_resume_of_a_finished_run_does_nothing(state_dir: Path) -> None:
    doc = KB842101_2016.document()
    world = load(doc)
    engine = Engine(state_dir=state_dir)
    first = apply(engine, KB842101_2016, world, doc)
    run_dir = only_run(state_dir)
    after = snapshot(world)
    operations = world.faults.count
    written = (run_dir / "journal.jsonl").read_bytes()

    result = engine.resume(run_dir.name, world, PLAYBOOKS)

    assert (result.state, result.exit_code, result.changes) == ("done", 0, [])
    assert result.run_id == first.run_id
    assert world.faults.count == operations, "resume of a finished run talked to the servers"
    assert snapshot(world) == after
    assert (run_dir / "journal.jsonl").read_bytes() == written
    assert load_run_state(run_dir).state == "done"


LIFECYCLE = ("run.started", "run.discovered", "run.approved", "step.completed", "run.finished")


class Spy:
    """Records what was fsync'd (path, size) and, at each directory delete, what was on disk."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.monkeypatch = monkeypatch
        self.synced: list[tuple[str, int]] = []
        self.deletes: list[tuple[UUID, int, dict[str, dict[str, list[str | bytes]]]]] = []
        real = os.fsync

        def fsync(fd: int) -> None:
            real(fd)
            self.synced.append((os.readlink(f"/proc/self/fd/{fd}"), os.fstat(fd).st_size))

        monkeypatch.setattr(os, "fsync", fsync)

    def synced_size(self, path: Path) -> int:
        """The most of ``path`` fsync'd so far (a file written as ``<name>.tmp``, fsync'd, then
        renamed counts under its final name)."""
        names = {str(path.resolve()), f"{path.resolve()}.tmp"}
        return max((size for name, size in self.synced if name in names), default=0)

    def watch_deletes(self, world: FakeWorld, run_dir: Callable[[], Path]) -> None:
        delete = world.directory.delete

        def spied(guid: UUID, *, tree: bool) -> None:
            directory = run_dir()
            backups = {}
            for ldif in sorted((directory / "backups" / "ad").glob("*.ldif")):
                if ldif.stat().st_size <= self.synced_size(ldif):  # on disk, not just written
                    backups.update(parse_ldif(ldif.read_text("ascii")))
            self.deletes.append((guid, self.synced_size(directory / "journal.jsonl"), backups))
            delete(guid, tree=tree)

        self.monkeypatch.setattr(world.directory, "delete", spied)


def parse_ldif(text: str) -> dict[str, dict[str, list[str | bytes]]]:
    """RFC 2849 content records by DN: attribute -> values (``::`` values base64-decoded; text
    when they are UTF-8, bytes otherwise). Folded lines are joined."""
    lines = text.split("\n")
    assert lines[0] == "version: 1"
    unfolded: list[str] = []
    for line in lines[1:]:
        if line.startswith(" ") and unfolded and unfolded[-1]:
            unfolded[-1] += line[1:]
        else:
            unfolded.append(line)
    records: dict[str, dict[str, list[str | bytes]]] = {}
    current: dict[str, list[str | bytes]] | None = None
    for line in unfolded:
        if not line:
            current = None
            continue
        # What AD owns (objectGUID, whenCreated, ...) is kept in comments an import skips.
        name, _, value = line.removeprefix("# ").partition(":")
        decoded: str | bytes
        if value.startswith(":"):
            raw = base64.b64decode(value[1:].strip(), validate=True)
            try:
                decoded = raw.decode("utf-8")
            except UnicodeDecodeError:
                decoded = raw
        else:
            assert value.startswith(" "), line
            decoded = value[1:]
        if current is None:
            assert name == "dn", f"a record must start with its dn: {line}"
            assert isinstance(decoded, str)
            current = records.setdefault(decoded, {})
        else:
            current.setdefault(name, []).append(decoded)
    return records


def needs_base64(value: str) -> bool:
    """RFC 2849 SAFE-STRING: ASCII without NUL, CR, LF; not starting with space, ':' or '<';
    not ending with a space."""
    return (
        any(ord(char) > 127 or char in "\0\r\n" for char in value)
        or value[:1] in (" ", ":", "<")
        or value.endswith(" ")
    )


def test_journal_is_fsynced_json_lines_and_ldif_backups_precede_every_delete(
    state_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    doc = KB842101.document()
    world = load(doc)
    spy = Spy(monkeypatch)
    spy.watch_deletes(world, lambda: only_run(state_dir))
    result = apply(Engine(state_dir=state_dir), KB842101, world, doc)
    run_dir = only_run(state_dir)
    path = run_dir / "journal.jsonl"

    # JSON lines, one schema, the whole lifecycle in order.
    records = journal(run_dir)
    assert all(
        {"event", "ts", "run_id", "playbook", "mode", "step", "target"} <= set(record)
        and record["run_id"] == result.run_id
        and record["playbook"] == "kb842101"
        for record in records
    )
    names = [record["event"] for record in records]
    positions = [names.index(name) for name in LIFECYCLE]
    assert positions == sorted(positions), names
    assert names[0] == "run.started" and names[-1] == "run.finished"
    assert records[-1]["state"] == "done"
    completed = [r["step"] for r in records if r["event"] == "step.completed"]
    assert completed == [
        step.id
        for step in KB842101.runbook.steps(
            KB842101.runbook.load_selection(events(run_dir, "run.discovered")[0]["selection"])
        )
    ]

    # fsync'd: all of it by the end, and the announcement of the deletes before the first one.
    assert spy.synced_size(path) == path.stat().st_size
    text = path.read_bytes()
    announced = next(
        text.index(line) + len(line) + 1
        for line in text.split(b"\n")
        if line
        and json.loads(line)["event"] == "step.applying"
        and json.loads(line)["step"] == "delete-ad-user"
    )
    deleted = set(doc["scenario"]["expected"]["deleted_guids"])
    selected = events(run_dir, "run.discovered")[0]["selection"]["users"]
    assert {guid for guid, _, _ in spy.deletes} == {UUID(user["guid"]) for user in selected}
    by_guid = {entry["guid"]: entry for entry in doc["directory"]["objects"]}
    children = {
        UUID(user["guid"]): [by_guid[child] for child in user["children"]] for user in selected
    }
    for guid, journal_synced, backups in spy.deletes:
        assert journal_synced >= announced, "a delete went out before its step.applying was on disk"
        for entry in (by_guid[str(guid)], *children[guid]):
            # Every attribute, on disk before the delete.
            backup = backups.get(entry["dn"])
            assert backup is not None, f"no LDIF backup of {entry['dn']} before its delete"
            assert backup["objectGUID"] == [UUID(entry["guid"]).bytes_le]
            for name, value in entry["attributes"].items():
                held = value if isinstance(value, list) else [value]
                if name.lower() == "msexchmailboxguid":  # a GUID: its 16 bytes, as AD holds it
                    held = [UUID(text).bytes_le for text in held]
                assert backup[name] == held, name
    assert deleted == {str(g) for g, _, _ in spy.deletes} | {
        str(c["guid"]) for kids in children.values() for c in kids
    }

    # Base64 exactly where RFC 2849 requires it (hostile names: non-ASCII, quotes, '#', '$').
    written = "\n".join(p.read_text("ascii") for p in sorted(run_dir.glob("backups/ad/*.ldif")))
    dns = [entry["dn"] for entry in by_guid.values() if entry["guid"] in deleted]
    assert any(needs_base64(dn) for dn in dns)
    for dn in dns:
        encoded = base64.b64encode(dn.encode("utf-8")).decode("ascii")
        assert (f"dn:: {encoded}\n" if needs_base64(dn) else f"dn: {dn}\n") in written


def test_organisation_names_differing_only_in_case_take_one_lock(tmp_path: Path) -> None:
    store = RunStore(tmp_path / "state")
    with store.lock("corp.example", "first"), pytest.raises(LockHeld, match="run first"):
        store.lock("CORP.EXAMPLE", "second").acquire()


def test_runs_against_one_world_file_from_two_state_directories_take_one_lock(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    world_file = tmp_path / "broken.json"
    save_world(load(Case("kb842101", "2016").document()), world_file)
    elsewhere = RunStore(tmp_path / "one", lock_beside=world_file.resolve())

    with elsewhere.lock("CORP.EXAMPLE", "first"):
        code = main(
            [
                "--state-dir",
                str(tmp_path / "two"),
                "-q",
                "apply",
                "kb842101",
                "--world",
                str(world_file),
                "--yes",
            ]
        )

    assert code == 3
    assert "another run holds the lock (run first, pid " in capsys.readouterr().err
    assert not (tmp_path / "two" / "runs").exists()


def test_run_files_are_private_and_a_resume_removes_temporary_files_left_behind(
    state_dir: Path,
) -> None:
    old = os.umask(0o022)  # the usual umask: files would be world-readable
    try:
        doc = KB842101.document()
        world = load(doc)
        world.faults.fail("exchange.purge_mailboxes", kind="permanent", times=100)
        with pytest.raises(Exception, match="injected permanent fault"):
            apply(Engine(state_dir=state_dir), KB842101, world, doc).raise_for_stop()
        run_dir = only_run(state_dir)
        left = [run_dir / "plan.json.tmp", run_dir / "backups" / "mail" / ".x.json.1a2b.tmp"]
        for path in left:
            path.write_text("half-written", "utf-8")
        world.faults.clear()

        result = Engine(state_dir=state_dir).resume(run_dir.name, world, PLAYBOOKS)
    finally:
        os.umask(old)

    assert result.state == "done"
    assert not any(path.exists() for path in left)
    everything = [state_dir, *state_dir.rglob("*")]
    assert any(path.suffix == ".ldif" for path in everything)
    assert any(path.parent.name == "mail" for path in everything)
    loose = [
        f"{path}: {path.stat().st_mode & 0o777:o}"
        for path in everything
        if path.stat().st_mode & 0o777 != (0o700 if path.is_dir() else 0o600)
    ]
    assert loose == []
