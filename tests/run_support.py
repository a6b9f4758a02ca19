"""What the run tests (crash and resume, faults, journal and lock, manual pause) share: scenario
worlds, confirmed applies, the run directory, and the world compared as far as two repairs of
one broken world must agree."""

from __future__ import annotations

import copy
import json
import logging
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import structlog

from remediate import PLAYBOOKS, Engine, RunResult, Safety
from remediate.engine.playbook import Playbook
from remediate.fakes import FakeWorld, world_from_json, world_to_json
from remediate.fakes.scenarios import SCENARIOS
from remediate.fakes.world import MUTATIONS

MUTATING = MUTATIONS  # the operations that change the world (test modules import it from here)

Doc = dict[str, Any]
YES = Safety(confirm=lambda text: True)

LEGACY = frozenset({"2000", "2003"})  # no API for the cleanup agent: a manual step


def quiet_events() -> Iterator[None]:
    """Events go nowhere (a generator for a fixture): the runs here emit tens of thousands."""
    saved = structlog.get_config()
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.CRITICAL))
    try:
        yield
    finally:
        structlog.configure(**saved)


# -- worlds ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    """A broken world for a playbook: a scenario of ``size`` users on Exchange ``version``;
    ``cleanup_interval_s`` overrides how often 2000/2003 stores run the cleanup agent."""

    playbook: str
    version: str
    size: int = 5
    seed: int = 1
    cleanup_interval_s: int | None = None
    servers: int | None = None  # Exchange servers (None: the scenario's own count)
    # A global catalog of another domain every Exchange server reads users through (None: none)
    global_catalog: str | None = None

    @property
    def id(self) -> str:
        spread = f"-{self.servers}servers" if self.servers is not None else ""
        return f"{self.playbook}-{self.version}{spread}"

    @property
    def legacy(self) -> bool:
        return self.version in LEGACY

    def document(self) -> Doc:
        """A fresh copy of the broken world's document."""
        doc: Doc = json.loads(
            _scenario_text(self.playbook, self.size, self.seed, self.version, self.servers)
        )
        if self.cleanup_interval_s is not None:
            for server in doc["exchange"]["servers"]:
                server["cleanup_interval_s"] = self.cleanup_interval_s
        if self.global_catalog is not None:
            doc["directory"]["dcs"].append(
                {"name": self.global_catalog, "replication_delay_s": 60, "partial_replica": True}
            )
            for server in doc["exchange"]["servers"]:
                server["global_catalog"] = self.global_catalog
        return doc

    @property
    def runbook(self) -> Playbook[Any, Any]:
        return PLAYBOOKS[self.playbook]


@cache
def _scenario_text(name: str, size: int, seed: int, version: str, servers: int | None) -> str:
    return json.dumps(SCENARIOS[name](size, seed, version=version, servers=servers))


def load(doc: Doc) -> FakeWorld:
    """A fake world from a document (nothing shared with the document)."""
    return world_from_json(copy.deepcopy(doc))


def parameters(doc: Doc) -> dict[str, str]:
    return {str(k): str(v) for k, v in doc["scenario"]["parameters"].items()}


def expected(doc: Doc) -> Doc:
    block: Doc = doc["scenario"]["expected"]
    return block


def apply(engine: Engine, case: Case, world: FakeWorld, doc: Doc) -> RunResult:
    """Apply the case's playbook as if the operator passed --yes."""
    return engine.apply(case.runbook, world, parameters(doc), safety=YES)


# -- runs -----------------------------------------------------------------------------------------


def run_dirs(state_dir: Path) -> list[Path]:
    runs = state_dir / "runs"
    return sorted(path for path in runs.iterdir() if path.is_dir()) if runs.is_dir() else []


def only_run(state_dir: Path) -> Path:
    """The one run directory in ``state_dir``."""
    found = run_dirs(state_dir)
    assert len(found) == 1, f"expected one run under {state_dir}, found {found}"
    return found[0]


def journal(run_dir: Path) -> list[Doc]:
    """The journal's records; every line must be a complete JSON object."""
    records = []
    for number, line in enumerate((run_dir / "journal.jsonl").read_text("utf-8").splitlines(), 1):
        record = json.loads(line)
        assert isinstance(record, dict), f"journal line {number} is not an object: {line}"
        records.append(record)
    return records


def events(run_dir: Path, name: str) -> list[Doc]:
    return [record for record in journal(run_dir) if record["event"] == name]


# On 2000/2003 these calls only answer "do it by hand" (they change nothing): the cleanup agent
# and the Recipient Update Service's Update Now.
MANUAL_ON_LEGACY = frozenset({"exchange.run_cleanup_agent", "exchange.update_recipients"})


# Update-Recipient leaves nothing a read could tell from before (it applies the policy the user
# already has): after a lost response or a crash the engine cannot see that the call took
# effect, and sends the idempotent call once more.
UNOBSERVABLE = frozenset({"exchange.update_recipients"})


def same_mutations(sent: Mapping[str, int], reference: Mapping[str, int]) -> bool:
    """Every change sent as often as the reference run sent it; an unobservable one may have
    been sent once more."""
    keys = set(sent) | set(reference)
    return all(
        sent.get(op, 0) - reference.get(op, 0) in ((0, 1) if op in UNOBSERVABLE else (0,))
        for op in keys
    )


def mutations(log: Iterable[str], case: Case) -> Counter[str]:
    """How often each mutating operation was sent; on 2000/2003 the manual ones are not
    counted."""
    return Counter(
        op for op in log if op in MUTATING and not (case.legacy and op in MANUAL_ON_LEGACY)
    )


# -- comparing worlds -----------------------------------------------------------------------------


def comparable(doc: Doc) -> Doc:
    """The world without what may legitimately differ between two runs that made the same
    changes at different virtual moments (a resumed run restarts its waits and polls, so it
    spends more virtual time):

    - ``clock``: the virtual now when the run ended;
    - ``when_changed`` of objects: a write after a restarted wait happens later;
    - the moment in ``disconnected_at`` (whether a mailbox is disconnected is kept): when the
      cleanup agent ran;
    - ``at`` of replication still on its way: when the change was written;
    - the order of tombstones: a world saved and loaded again mid-run (a killed process)
      lists them in another order than one that stayed in memory.

    Everything else must be equal: DNs, attributes, uSNChanged per DC (a write sent twice with
    a change would move it), tombstones, services, queues, mailboxes and their items."""
    doc = copy.deepcopy(doc)
    doc.pop("clock", None)
    directory = doc["directory"]
    pending = directory.get("pending", {})
    if "tombstones" in directory:
        directory["tombstones"].sort(key=lambda entry: str(entry["guid"]))
    objects = [*directory["objects"], *directory.get("tombstones", [])]
    objects += [entry for view in pending.get("views", {}).values() for entry in view]
    for arrival in pending.get("arrivals", []):
        arrival.pop("at")
        objects.append(arrival["object"])
    for entry in objects:
        entry.pop("when_changed", None)
    for box in all_mailboxes(doc):
        box["disconnected_at"] = box["disconnected_at"] is not None
    return doc


def comparable_in_any_order(doc: Doc) -> Doc:
    """:func:`comparable`, for runs whose servers' batches took turns in other orders: which
    object got which uSNChanged follows the order the writes reached the DC; the USNs handed
    out (how many writes each DC took) do not, and are kept, sorted."""
    doc = comparable(doc)
    usns: list[Any] = []

    def strip(value: Any) -> None:
        if isinstance(value, dict):
            if "usn_changed" in value:
                usns.append(json.dumps(value.pop("usn_changed"), sort_keys=True))
            for inner in value.values():
                strip(inner)
        elif isinstance(value, list):
            for inner in value:
                strip(inner)

    strip(doc)
    doc["usns"] = sorted(usns)
    return doc


def all_mailboxes(doc: Doc) -> list[Doc]:
    return [
        box
        for server in doc["exchange"]["servers"]
        for store in server["stores"]
        for box in store["mailboxes"]
    ]


def items_in_mailboxes(doc: Doc) -> dict[str, tuple[str, str]]:
    """Every mail item in any mailbox: id -> (folder, subject)."""
    return {
        item["id"]: (item["folder"], item["subject"])
        for box in all_mailboxes(doc)
        for item in box["items"]
    }


def items_in_exports(run_dir: Path) -> dict[str, tuple[str, str]]:
    """Every mail item in the run's mail exports (``backups/mail/<server>/<mailbox>.json``)."""
    found: dict[str, tuple[str, str]] = {}
    for path in sorted((run_dir / "backups" / "mail").glob("*/*.json")):
        for item in json.loads(path.read_text("utf-8"))["items"]:
            found[item["id"]] = (item["folder"], item["subject"])
    return found


def lost_items(before: Doc, after: Doc, run_dir: Path) -> list[str]:
    """Item ids of ``before`` that are neither in a mailbox of ``after`` nor in an export of the
    run (with their folder and subject), sorted."""
    kept = items_in_exports(run_dir) | items_in_mailboxes(after)
    return sorted(
        item for item, content in items_in_mailboxes(before).items() if kept.get(item) != content
    )


def scope(doc: Doc, playbook: str) -> tuple[set[str], set[str]]:
    """The object GUIDs and mailbox GUIDs a run of ``playbook`` may change, per the scenario."""
    promised = expected(doc)
    if playbook == "kb842101":
        return set(promised["deleted_guids"]), set(promised["purged_mailboxes"])
    users = {entry["user"] for entry in promised["affected"]}
    boxes = {entry[key] for entry in promised["affected"] for key in ("original", "blank")}
    return users, boxes


def outside(doc: Doc, objects: set[str], boxes: set[str]) -> Doc:
    """Everything of the world outside a run's scope, exactly (timestamps and USNs included),
    and every server's services and queue (a run may stop transport, but must restart it)."""
    directory = doc["directory"]
    entries = [*directory["objects"], *directory.get("tombstones", [])]
    return {
        "objects": sorted(
            (entry for entry in entries if entry["guid"] not in objects), key=lambda e: e["guid"]
        ),
        "mailboxes": sorted(
            (box for box in all_mailboxes(doc) if box["guid"] not in boxes),
            key=lambda box: box["guid"],
        ),
        "servers": [
            (server["name"], server["services"], server.get("queue", []))
            for server in doc["exchange"]["servers"]
        ],
    }


def differences(left: Any, right: Any, path: str = "$", limit: int = 5) -> list[str]:
    """Where two JSON values differ (the first ``limit`` places), for readable failures."""
    found: list[str] = []

    def walk(a: Any, b: Any, at: str) -> None:
        if len(found) >= limit:
            return
        if isinstance(a, dict) and isinstance(b, dict):
            for key in sorted(set(a) | set(b)):
                if key not in a or key not in b:
                    found.append(f"{at}.{key}: only on one side")
                else:
                    walk(a[key], b[key], f"{at}.{key}")
        elif isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
            for index, (x, y) in enumerate(zip(a, b, strict=True)):
                walk(x, y, f"{at}[{index}]")
        elif a != b:
            found.append(f"{at}: {json.dumps(a)[:120]} != {json.dumps(b)[:120]}")

    walk(left, right, path)
    return found


def snapshot(world: FakeWorld) -> Doc:
    """The world's state as plain JSON, shared with nothing."""
    doc: Doc = json.loads(json.dumps(world_to_json(world)))
    return doc


def first_index(log: Sequence[str], operation: str, start: int = 0) -> int:
    return next(i for i in range(start, len(log)) if log[i] == operation)
