"""Wait until every DC (and so the DC each Exchange server reads) sees what this run wrote."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from uuid import UUID

from remediate.engine.changes import Change, ChangeRecord, Impact, NoOp, Planned
from remediate.engine.step import Options, Step, StepContext
from remediate.engine.wording import HOUR, Duration, Wording
from remediate.model import DirectoryEntry


@dataclass(frozen=True, slots=True)
class Expectation:
    """What a DC must show for one object: deleted, or these attribute values (None: absent)."""

    guid: UUID
    deleted: bool = False
    attributes: tuple[tuple[str, str | None], ...] = ()

    def met_by(self, entry: DirectoryEntry | None) -> bool:
        if self.deleted:
            # A tombstone (or nothing at all, once the tombstone lifetime passed) on this DC.
            return entry is None or entry.deleted
        if entry is None or entry.deleted:
            return False
        return all(_same(entry.get(name), value) for name, value in self.attributes)


def _same(current: str | None, wanted: str | None) -> bool:
    if wanted is None:
        return not current
    return current is not None and current.lower() == wanted.lower()


@dataclass(frozen=True, slots=True)
class ReplicationTarget:
    dc: str
    expectations: tuple[Expectation, ...]

    @property
    def key(self) -> str:
        return f"dc:{self.dc}"

    @property
    def label(self) -> str:
        return f"domain controller {self.dc}"

    @property
    def endpoint(self) -> str:
        return self.key


def replication_targets(
    dcs: Sequence[str], expectations: Sequence[Expectation]
) -> list[ReplicationTarget]:
    return [ReplicationTarget(dc, tuple(expectations)) for dc in dcs if expectations]


class WaitForReplication(Step[ReplicationTarget, int]):
    """One read per DC per poll for all pending objects; the tombstone proves a delete."""

    name = "wait-for-replication"
    impact = Impact.READ
    summary = "Wait until every domain controller shows the changes (tombstones for deletions)"
    wording = Wording("wait for replication to", "domain controller", "domain controllers")

    @classmethod
    def expected_duration(
        cls, records: Sequence[ChangeRecord], rehearsed_s: float, *, manual: bool = False
    ) -> Duration:
        return Duration(rehearsed_s, cls.deadline_s, (
            "until every domain controller shows the changes: the slowest replication "
            "interval between the DCs (the rehearsal used this world's); the run waits at "
            f"most --replication-timeout ({cls.deadline_s / HOUR:.0f} h by default)"))
    deadline_s = 4 * 3600.0
    poll_s = 5.0
    poll_max_s = 60.0

    def deadline(self, options: Options) -> float:
        return options.replication_timeout_s or self.deadline_s

    def observe(self, ctx: StepContext, targets: Sequence[ReplicationTarget]) -> Mapping[str, int]:
        seen: dict[str, int] = {}
        for target in targets:
            guids = [expectation.guid for expectation in target.expectations]
            # Live objects only: a deletion shows as the object's absence (its tombstone, or
            # nothing once the tombstone lifetime passed), so tombstones need not be read.
            entries = ctx.world.directory.read(guids, target.dc)
            seen[target.key] = sum(
                1 for expectation in target.expectations
                if expectation.met_by(entries.get(expectation.guid))
            )
        return seen

    def plan(self, target: ReplicationTarget, observation: int) -> Change:
        total = len(target.expectations)
        if observation >= total:
            return NoOp(target.key, f"{total} of {total} changes visible")
        return Planned(
            target.key,
            "wait",
            before=f"{observation} of {total} changes visible",
            after=f"{total} of {total} changes visible",
        )

    def apply(
        self, ctx: StepContext, pending: Sequence[tuple[ReplicationTarget, Planned]]
    ) -> None:
        """Nothing to send: replication is the DCs' own work; the engine polls until it shows."""
