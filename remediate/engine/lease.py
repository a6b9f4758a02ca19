"""One run at a time per real organisation, whichever machine it is started from.

The state directory's lock (``journal.OrganisationLock``) only excludes runs that share a
state directory. Every operator's run, on any machine, talks to the organisation's directory,
so the lease lives there: an object ``CN=remediate-lease,<container>`` (the container named by
the inventory's ``[safety] lease_container``) created with an LDAP add on the DC the run pins
for its writes. Two adds of one name cannot both succeed (entryAlreadyExists), so of two runs
starting at once exactly one holds it. The object's ``description`` is the holder's record
(run id, user@host, pid, started, renewed, expires, state).

Decisions (docs/RELIABILITY.md section 5):

- **Renewed while the run lives**, at most once a minute, on the run's own events; the
  quietest stretch the engine has is a manual step's poll (every 15 minutes at most), so a
  lease not renewed for ``LEASE_TTL_S`` (30 minutes, twice that) has a holder that is gone
  (killed, crashed, its machine off) or cut off from the DC. Clocks of domain members agree
  within Kerberos' 5 minutes, well inside that.
- **Never taken over silently.** An expired lease still refuses the next run, which says whose
  it is and when it was last renewed; ``--break-lease`` takes it over, after a confirmation
  naming the holder, and never from a live holder (renewed within the TTL). The takeover is a
  compare-and-swap of the record, so of two runs breaking at once one wins.
- **Released when nothing is left half-done**: a run that finished, or stopped before its
  safety gates passed (refused, failed in discovery, not confirmed). A run that stopped after
  its first change could be made (paused for a manual step, interrupted, failed) keeps the
  lease, marked stopped: the organisation is half-repaired (transport may be stopped), and the
  next thing to do is ``resume`` that run, which takes its own lease back by its run id;
  nobody else starts on those users meanwhile. A stopped lease does not expire (nobody
  renews it); abandoning that run is an explicit ``--break-lease``.
- **A run that loses its lease stops**: if a renewal finds another record (it was broken
  while this run was unreachable), the run stops before its next step, resumable.
"""

from __future__ import annotations

import contextlib
import getpass
import json
import os
import socket
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from functools import partial
from typing import TypeVar

from remediate.clock import Clock
from remediate.dn import escape_rdn_value, normalize
from remediate.engine import events as ev
from remediate.engine.listener import RunListener
from remediate.engine.retry import RetryPolicy
from remediate.engine.stopping import operation
from remediate.errors import (
    BackendError,
    InputError,
    LockHeld,
    PermanentError,
    Refused,
    RemediateError,
)
from remediate.model import iso, utc
from remediate.ports import Directory

LEASE_NAME = "remediate-lease"
LEASE_TTL_S = 30 * 60.0
RENEW_AFTER_S = 60.0
RUNNING = "running"
STOPPED = "stopped"
FORMAT = "remediate.lease/1"
# How often acquiring starts over when the lease changes hands under it (released, taken).
ATTEMPTS = 3

T = TypeVar("T")
Confirm = Callable[[str], bool]


class LeaseLost(RemediateError):
    """Another run took this run's lease over (``--break-lease``) while it was running."""


def lease_dn(container: str) -> str:
    """The lease object's name under ``container``; a container that is no DN is refused."""
    try:
        normalize(container)
    except ValueError:
        container = ""
    if not container.strip():
        raise InputError(
            f"lease_container: {container!r} is not a DN",
            target="[safety] lease_container",
            hint='name a container, e.g. "CN=Program Data,DC=corp,DC=example"',
        )
    return f"CN={escape_rdn_value(LEASE_NAME)},{container}"


@dataclass(frozen=True, slots=True)
class LeaseRecord:
    """Who holds the lease: what its ``description`` says."""

    run_id: str
    holder: str  # user@host
    pid: int
    started: datetime
    renewed: datetime
    state: str  # RUNNING (renewed while it lives) or STOPPED (waits for its resume)

    def to_text(self) -> str:
        expires = iso(self.renewed + timedelta(seconds=LEASE_TTL_S)) if self.running else None
        return json.dumps(
            {
                "format": FORMAT,
                "run_id": self.run_id,
                "holder": self.holder,
                "pid": self.pid,
                "started": iso(self.started),
                "renewed": iso(self.renewed),
                "expires": expires,
                "state": self.state,
            },
            ensure_ascii=False,
            separators=(",", ":"),
        )

    @classmethod
    def from_text(cls, text: str | None) -> LeaseRecord | None:
        """The record, or None where it is not one (written by hand, damaged)."""
        try:
            data = json.loads(text or "")
            record = cls(
                str(data["run_id"]),
                str(data["holder"]),
                int(data["pid"]),
                utc(str(data["started"])),
                utc(str(data["renewed"])),
                str(data["state"]),
            )
        except (ValueError, TypeError, KeyError):
            return None
        return (
            record if data.get("format") == FORMAT and record.state in (RUNNING, STOPPED) else None
        )

    @property
    def running(self) -> bool:
        return self.state == RUNNING

    @property
    def host(self) -> str:
        return self.holder.rpartition("@")[2]

    def expired(self, now: datetime) -> bool:
        return self.running and (now - self.renewed).total_seconds() > LEASE_TTL_S

    def gone(self, now: datetime) -> bool:
        """Its holder is not running any more: stopped, expired, or a dead process here."""
        return not self.running or self.expired(now) or _dead_here(self)

    def describe(self, now: datetime) -> str:
        ago = _ago(now - self.renewed)
        if self.running:
            how = f"last renewed {ago} ago"
            if _dead_here(self):
                how += ", by a process that no longer exists"
            elif self.expired(now):
                how += f", over the {LEASE_TTL_S / 60:.0f} minutes a live run renews it within"
        else:
            how = f"stopped {ago} ago, waiting for its resume"
        return (
            f"run {self.run_id}, pid {self.pid} on {self.holder}, started "
            f"{iso(self.started)}, {how}"
        )


def _ago(delta: timedelta) -> str:
    seconds = max(0, round(delta.total_seconds()))
    return f"{seconds} s" if seconds < 120 else f"{seconds // 60} min"


def _dead_here(record: LeaseRecord) -> bool:
    """A holder on this machine whose process is gone (a kill, a crash)."""
    if record.host != socket.gethostname() or record.pid <= 0:
        return False
    try:
        os.kill(record.pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # alive, another user's
        return False
    return False


def _holder() -> str:
    try:
        user = getpass.getuser()
    except (KeyError, OSError):  # no name for this uid (a container)
        user = f"uid {os.getuid()}"
    return f"{user}@{socket.gethostname()}"


class OrganisationLease(RunListener):
    """The lease of one run: :meth:`acquire`, renewed as a listener of the run's events,
    then :meth:`release` (or kept, stopped, for the run's resume)."""

    def __init__(
        self,
        directory: Directory,
        container: str,
        *,
        organisation: str,
        run_id: str,
        clock: Clock,
        retry: RetryPolicy,
        break_lease: Confirm | None = None,
    ) -> None:
        self.dn = lease_dn(container)
        self.organisation = organisation
        self.run_id = run_id
        self._directory = directory
        self._clock = clock
        self._retry = retry
        self._break = break_lease
        self._held: str | None = None  # our record as the DC holds it
        self._started = clock.now()
        self._renewed = self._started
        self.approved = False  # past the safety gates (or resuming): changes may be made
        self.stopped = False  # the run ended short of done (set by the engine): kept for resume
        self.lost = False
        self.broke: str | None = None  # whose lease this run took over
        self.problem: str | None = None  # a release that did not reach the DC

    # -- taking it ----------------------------------------------------------------------------

    def acquire(self) -> None:
        for _ in range(ATTEMPTS):
            mine = self._record(RUNNING).to_text()
            if self._call(partial(self._directory.add_lease, self.dn, mine)):
                self._held = mine
                return
            held = self._call(lambda: self._directory.lease(self.dn))
            if held is None:  # released since: add again
                continue
            if held == mine:  # our own add, its answer lost and the add sent again
                self._held = mine
                return
            current = LeaseRecord.from_text(held)
            now = self._clock.now()
            own = current is not None and current.run_id == self.run_id
            if own and current is not None and current.gone(now):  # this run, resumed
                if self._swap(held, mine):
                    return
                continue
            if self._break is not None and not own:
                self._take_over(held, current, mine)
                return
            raise self._refusal(current, own=own)
        raise LockHeld(
            f"the lease changed hands {ATTEMPTS} times while this run tried to take it",
            target=self._where,
            hint="try again in a minute",
        )

    def _take_over(self, held: str, current: LeaseRecord | None, mine: str) -> None:
        now = self._clock.now()
        whose = current.describe(now) if current else f"an unreadable record {held[:200]!r}"
        if current is not None and not current.gone(now):
            raise LockHeld(
                f"another run holds the lease and is alive ({whose}); a live run's lease is "
                "never broken",
                target=self._where,
                hint="wait for it to finish, or stop that run first (Ctrl-C on its machine)",
            )
        assert self._break is not None
        if not self._break(
            f"take over organisation {self.organisation}'s lease {self.dn} from {whose}"
        ):
            raise Refused(
                f"not confirmed: the lease of {whose} was left as it is",
                target=self._where,
                hint="answer yes at the prompt, or add --yes, to take it over",
            )
        if not self._swap(held, mine):
            raise LockHeld(
                "the lease changed while the takeover was being confirmed",
                target=self._where,
                hint="run again to see who holds it now",
            )
        self.broke = whose

    def _refusal(self, current: LeaseRecord | None, *, own: bool) -> LockHeld:
        if current is None:
            return LockHeld(
                f"another run holds the lease {self.dn}, but its record is unreadable",
                target=self._where,
                hint="if no run of remediate is working on it, take it over with --break-lease",
            )
        now = self._clock.now()
        whose = current.describe(now)
        resume = f"remediate resume {current.run_id}"
        if own:
            expires = iso(current.renewed + timedelta(seconds=LEASE_TTL_S))
            hint = (
                f"this run is running on {current.holder}: let it finish there; if that "
                f"process is gone, resume again after {expires}, when its lease expires"
            )
        elif not current.running:
            hint = (
                f"continue that run with: {resume} (its state directory is on "
                f"{current.host}); if it is abandoned, take the lease over with "
                "--break-lease"
            )
        elif current.gone(now):
            hint = (
                f"its holder stopped renewing it (killed, crashed, or cut off): continue "
                f"that run with {resume}, or take the lease over with --break-lease"
            )
        else:
            hint = f"wait for it to finish; 'remediate runs' on {current.host} lists it"
        return LockHeld(f"another run holds the lease ({whose})", target=self._where, hint=hint)

    @property
    def _where(self) -> str:
        return f"organisation {self.organisation}"

    # -- while the run lives ------------------------------------------------------------------

    def on_event(self, kind: str) -> None:
        """Renews the lease once a minute, on whichever event comes."""
        if kind in (ev.RUN_APPROVED, ev.RUN_RESUMED):
            self.approved = True
        if self._held is None:
            return
        if (self._clock.now() - self._renewed).total_seconds() >= RENEW_AFTER_S:
            self.renew()

    def on_step_started(self, step: str, targets: int) -> None:
        """A lost lease stops the run where stopping is safe, before a step starts."""
        if self._held is not None and self.lost:
            raise LeaseLost(
                f"this run's lease {self.dn} was taken over by another run (--break-lease) "
                "while it ran; it stopped before its next step",
                target=self._where,
                hint=f"see who holds it now, and resume this run (remediate resume "
                f"{self.run_id}) only once that run is finished",
            )

    def renew(self) -> None:
        held = self._held
        if held is None or self.lost:
            return
        now = self._clock.now()
        mine = replace(self._current(), renewed=now).to_text()
        try:
            with self._operation():
                swapped = self._directory.swap_lease(self.dn, held, mine)
        except BackendError:  # the DC is unreachable now: renewed at the next event
            return
        self._renewed = now
        if swapped:
            self._held = mine
        else:
            self.lost = True

    # -- giving it up -------------------------------------------------------------------------

    def release(self, *, keep: bool) -> None:
        """Remove the lease, or (``keep``) mark it stopped for this run's resume. Best effort:
        a DC that cannot be reached leaves it running, to expire; :attr:`problem` says so."""
        held = self._held
        if held is None or self.lost:
            return
        try:
            if keep:
                stopped = replace(
                    self._current(), state=STOPPED, renewed=self._clock.now()
                ).to_text()
                if self._swap(held, stopped):
                    return
            elif self._call(lambda: self._directory.remove_lease(self.dn, held)):
                self._held = None
                return
            self.problem = (
                f"the lease {self.dn} was no longer this run's when it ended; "
                "another run took it over"
            )
        except RemediateError as error:  # never hides how the run itself ended
            self.problem = (
                f"the lease {self.dn} could not be "
                f"{'marked stopped' if keep else 'removed'} ({error}); the next run "
                "is refused until it expires, and then takes it over only with "
                "--break-lease"
            )

    # -- helpers ------------------------------------------------------------------------------

    def _record(self, state: str) -> LeaseRecord:
        return LeaseRecord(
            self.run_id, _holder(), os.getpid(), self._started, self._clock.now(), state
        )

    def _current(self) -> LeaseRecord:
        record = LeaseRecord.from_text(self._held)
        assert record is not None, "our own record always reads back"
        return record

    def _swap(self, old: str, new: str) -> bool:
        if self._call(lambda: self._directory.swap_lease(self.dn, old, new)):
            self._held = new
            return True
        # A swap whose answer was lost and was sent again finds its own record: it happened.
        if self._call(lambda: self._directory.lease(self.dn)) == new:
            self._held = new
            return True
        return False

    def _call(self, call: Callable[[], T]) -> T:
        """A lease call, sent again after a transient error (an add or a swap sent twice
        answers as if another held it: the callers read back what the DC holds)."""
        try:
            for attempt in self._retry.retrying(self._clock):
                with attempt, self._operation():
                    return call()
        except PermanentError as error:
            raise InputError(
                f"cannot keep the organisation's lease {self.dn} on {error.endpoint}: "
                f"{error.message}",
                target="[safety] lease_container",
                hint="create that container (a container object) and let the account create "
                "and delete container objects in it, or name another container in the "
                "inventory's [safety] lease_container",
            ) from None
        raise AssertionError("unreachable: tenacity re-raises")  # pragma: no cover

    @staticmethod
    def _operation() -> contextlib.AbstractContextManager[None]:
        # Ctrl-C or SIGTERM waits for a lease call in flight, as for every other port call.
        return operation()
