"""Wait until every DC of the domain, and every global catalog an Exchange server reads through,
sees what this run wrote: a store's cleanup agent finds a mailbox's owner only through the
directory servers its DSAccess uses, so it sees a change only once they hold it."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from uuid import UUID

from remediate.engine.changes import Change, ChangeRecord, Impact, NoOp, Planned, WouldFail
from remediate.engine.step import Options, Step, StepContext
from remediate.engine.wording import HOUR, Duration, Wording
from remediate.hosts import same_host
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
class DirectoryUse:
    """The DCs and global catalogs one Exchange server's DSAccess uses now."""

    server: str
    dcs: tuple[str, ...] = ()
    catalogs: tuple[str, ...] = ()

    @property
    def lookups(self) -> tuple[str, ...]:
        """Where its store looks users up (a mailbox's owner, for the cleanup agent): its
        global catalogs (DSAccess sends user lookups there: TechNet aa996262(v=exchg.65)),
        else, where none was reported, its DCs."""
        return self.catalogs or self.dcs


@dataclass(frozen=True, slots=True)
class ReplicationTarget:
    """One directory server to wait for: a DC of the domain, or (``catalog``) a global catalog
    of another domain, read on its GC port; ``readers``: the Exchange servers whose store
    looks users up through it."""

    dc: str
    expectations: tuple[Expectation, ...]
    catalog: bool = False
    readers: tuple[str, ...] = ()

    @property
    def key(self) -> str:
        return f"{'gc' if self.catalog else 'dc'}:{self.dc}"

    @property
    def label(self) -> str:
        kind = "global catalog" if self.catalog else "domain controller"
        used = f" (read by {', '.join(self.readers)})" if self.readers else ""
        return f"{kind} {self.dc}{used}"

    @property
    def endpoint(self) -> str:
        return self.key


def replication_targets(
    dcs: Sequence[str], expectations: Sequence[Expectation], uses: Sequence[DirectoryUse] = ()
) -> list[ReplicationTarget]:
    """Every DC of the domain, then every global catalog an Exchange server of ``uses`` looks
    users up through that is not one of them; each names the servers looking users up through
    it (names match as :func:`remediate.hosts.same_host` says). A GC that is a DC of the domain
    serves the same database as that DC: one wait. A DC of another domain holds none of this
    domain's objects: nothing to wait for there."""
    if not expectations:
        return []
    readers: dict[str, list[str]] = {dc: [] for dc in dcs}
    catalogs: dict[str, tuple[str, list[str]]] = {}
    for use in uses:
        for name in use.lookups:
            own = same_host(name, dcs)
            if own is not None:
                found = readers[own]
            elif name in use.catalogs:
                found = catalogs.setdefault(name.casefold(), (name, []))[1]
            else:
                continue
            if use.server not in found:
                found.append(use.server)
    every = tuple(expectations)
    return [
        *(ReplicationTarget(dc, every, readers=tuple(readers[dc])) for dc in dcs),
        *(
            ReplicationTarget(name, every, catalog=True, readers=tuple(servers))
            for name, servers in catalogs.values()
        ),
    ]


def reachable(dcs: Sequence[str], options: Options) -> list[str]:
    """The DCs of ``dcs`` the operator did not leave out (--leave-out-dc: they are down)."""
    return [dc for dc in dcs if same_host(dc, options.leave_out_dcs) is None]


@dataclass(frozen=True, slots=True)
class LeftOut:
    """A directory server the operator left out (--leave-out-dc): what that means, and why it
    may not be left out (an Exchange server would have nothing else to read through)."""

    warning: str
    refusal: str | None = None


class WaitForReplication(Step[ReplicationTarget, "int | LeftOut"]):
    """One read per DC per poll for all pending objects; the tombstone proves a delete. A DC
    the operator left out (it is down) is not waited for: the run says what that means, and
    refuses where an Exchange server reads AD through nothing else."""

    name = "wait-for-replication"
    impact = Impact.READ
    summary = (
        "Wait until every domain controller, and every global catalog the Exchange "
        "servers look users up in, shows the changes (deletions: the objects gone)"
    )
    wording = Wording("wait for replication to", "directory server", "directory servers")

    @classmethod
    def expected_duration(
        cls, records: Sequence[ChangeRecord], rehearsed_s: float, *, manual: bool = False
    ) -> Duration:
        return Duration(
            rehearsed_s,
            cls.deadline_s,
            (
                "until every domain controller shows the changes: the slowest replication "
                "interval between the DCs (the rehearsal used this world's); the run waits at "
                f"most --replication-timeout ({cls.deadline_s / HOUR:.0f} h by default)"
            ),
        )

    deadline_s = 4 * 3600.0
    poll_s = 5.0
    poll_max_s = 60.0
    # Every DC is polled at once, whatever --parallel says of Exchange servers: a poll only
    # reads, so the wait costs the slowest DC's reads, not their sum. Bounded: one LDAP
    # connection per DC at a time.
    batches_at_once = 32

    def deadline(self, options: Options) -> float:
        return options.replication_timeout_s or self.deadline_s

    def observe(
        self, ctx: StepContext, targets: Sequence[ReplicationTarget]
    ) -> Mapping[str, int | LeftOut]:
        left_out = ctx.options.leave_out_dcs
        seen: dict[str, int | LeftOut] = {
            target.key: self._left_out(target, left_out)
            for target in targets
            if same_host(target.dc, left_out) is not None
        }
        seen.update(self.visible(ctx, [t for t in targets if t.key not in seen]))
        return seen

    def _left_out(self, target: ReplicationTarget, left_out: Sequence[str]) -> LeftOut:
        """An Exchange server reading through ``target`` switches to another directory server it
        uses once it finds this one down (DSAccess keeps only those that answer: IsUp,
        Exchange 2003 SDK aa127074); until then its cleanup agent may not see the change."""
        kind = "global catalog" if target.catalog else "domain controller"
        words = [
            f"{kind} {target.dc} was left out of the replication wait (--leave-out-dc): "
            "it gets this run's changes only once it is back and replicates, and until "
            "then shows the objects as they were"
        ]
        stranded = []
        for server in target.readers:
            others = [
                t.dc
                for t in self.targets
                if server in t.readers and t is not target and same_host(t.dc, left_out) is None
            ]
            if not others:
                stranded.append(server)
                continue
            words.append(
                f"{server} looks users up through it: its cleanup agent may not see "
                f"the change until {server} switches to {' or '.join(others)}"
            )
        refusal = (
            None
            if not stranded
            else (
                f"{stranded[0]} looks users up only through {target.dc}, which --leave-out-dc "
                "leaves out: its cleanup agent would not see this run's changes. "
                f"Bring {target.dc} back, or have {stranded[0]} use another (Exchange 2003: "
                "Exchange System Manager > server Properties > Directory Access; 2010 and later: "
                "Set-ExchangeServer -StaticDomainControllers and -StaticGlobalCatalogs)"
            )
        )
        return LeftOut("; ".join(words), refusal)

    def visible(self, ctx: StepContext, targets: Sequence[ReplicationTarget]) -> dict[str, int]:
        """How many expectations each target shows met now."""
        seen: dict[str, int] = {}
        for target in targets:
            guids = [expectation.guid for expectation in target.expectations]
            # Live objects only: a deletion shows as the object's absence (its tombstone, or
            # nothing once the tombstone lifetime passed), so tombstones need not be read.
            directory = ctx.world.directory
            entries = (
                directory.read_catalog(guids, target.dc)
                if target.catalog
                else directory.read(guids, target.dc)
            )
            seen[target.key] = sum(
                1
                for expectation in target.expectations
                if expectation.met_by(entries.get(expectation.guid))
            )
        return seen

    def plan(self, target: ReplicationTarget, observation: int | LeftOut) -> Change:
        if isinstance(observation, LeftOut):
            if observation.refusal is not None:
                return WouldFail(target.key, observation.refusal)
            return NoOp(target.key, "left out", warning=observation.warning)
        total = len(target.expectations)
        if observation >= total:
            return NoOp(target.key, f"{total} of {total} changes visible")
        return Planned(
            target.key,
            "wait",
            before=f"{observation} of {total} changes visible",
            after=f"{total} of {total} changes visible",
        )

    def apply(self, ctx: StepContext, pending: Sequence[tuple[ReplicationTarget, Planned]]) -> None:
        """Nothing to send: replication is the DCs' own work; the engine polls until it shows."""
