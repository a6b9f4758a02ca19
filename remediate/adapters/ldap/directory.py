"""The ``Directory`` port on a real Active Directory (or Samba AD DC), through ldap3.

One connection per DC, opened on first use and reopened after a transient failure. Writes go
to the one writable DC pinned for the run. Searches are paged: one request per page, whatever
the number of objects. ``requests`` counts every LDAP request sent (one per page), and
``requests_by_operation`` by port operation (``directory.read``, ``directory.changes``, ...).
"""

from __future__ import annotations

import functools
import threading
from collections import Counter
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import replace
from typing import Any, Concatenate, ParamSpec, TypeVar
from uuid import UUID

import ldap3
from ldap3.core.exceptions import LDAPException

from remediate.dn import is_within_normalized, normalize, parent_dn, split_rdns
from remediate.errors import PermanentError, TransientError
from remediate.model import DirectoryEntry, Store, UserQuery, WriteValue

from . import access, catalog, discovery, entries, errors, filters, security
from .connection import ConnectionSettings, TlsMode, open_connection
from .discovery import DomainController
from .seen import Seen

SHOW_DELETED = ("1.2.840.113556.1.4.417", True, None)
TREE_DELETE = ("1.2.840.113556.1.4.805", True, None)
PAGED_RESULTS_OID = "1.2.840.113556.1.4.319"
SUCCESS = 0
NO_SUCH_OBJECT = 32
NO_SUCH_ATTRIBUTE = 16
ENTRY_ALREADY_EXISTS = 68
# Objects per read by GUID (an OR of their objectGUIDs). Samba matches the whole OR against every
# object it finds, so the time grows with its square: 1,000 entries cost 2.3 s in one search of
# 1,000 terms, 1.5 s in ten of 100 (AD looks each term up in its index: either is fine there).
GUIDS_PER_SEARCH = 100
# A DC's global catalog: LDAP on 3268 (StartTLS), LDAPS on 3269. Connections to it are kept under
# GC_PREFIX + the DC's name.
GC_PORTS = {TlsMode.LDAPS: 3269, TlsMode.STARTTLS: 3268}
GC_PREFIX = "gc:"

Control = tuple[str, bool, bytes | None]
Found = list[tuple[str, dict[str, list[bytes]]]]


P = ParamSpec("P")
R = TypeVar("R")


def _one_dc_call_at_a_time(
    method: Callable[Concatenate[LdapDirectory, P], R],
) -> Callable[Concatenate[LdapDirectory, P], R]:
    """What is held for a DC (see :mod:`.seen`) is shared by every call to it: a call that reads
    or writes through it holds the DC's lock (the one named by its ``dc`` argument, else the
    pinned DC), so calls to one DC take turns while calls to different DCs run together."""

    def locked(self: LdapDirectory, /, *args: P.args, **kwargs: P.kwargs) -> R:
        named = kwargs.get("dc", args[1] if len(args) > 1 else None)
        dc = named if isinstance(named, str) else self.writable_dc()
        with self.lock_for(dc):
            return method(self, *args, **kwargs)

    functools.update_wrapper(locked, method)
    return locked


class LdapDirectory:
    """Implements ``remediate.ports.Directory`` over LDAP.

    ``dcs``: the domain's DCs by name, or None to discover them (from the configuration
    partition, through ``bootstrap_dc``: by default the first DC with an address in the
    settings, else the domain's own name). ``writable_dc``: the DC pinned for writes (default:
    the first writable DC by name).
    """

    def __init__(
        self,
        settings: ConnectionSettings,
        *,
        domain: str,
        base_dn: str,
        dcs: Sequence[str] | None = None,
        writable_dc: str | None = None,
        bootstrap_dc: str | None = None,
        page_size: int = 1000,  # AD's default MaxPageSize
    ) -> None:
        normalize(base_dn)
        self._settings = settings
        self._domain = domain
        self._base_dn = base_dn
        self._dcs = list(dcs) if dcs else None
        self._writable = writable_dc
        self._bootstrap = bootstrap_dc or next(
            iter([*(self._dcs or ()), *settings.addresses]), domain
        )
        self._page_size = page_size
        self._connections: dict[str, ldap3.Connection] = {}
        self._seen = Seen()
        self._configuration_dn: str | None = None
        self.requests = 0
        self.requests_by_operation: Counter[str] = Counter()
        # Steps run their batches on threads (the replication wait reads every DC at once):
        # the calls to one DC take turns (see _one_dc_call_at_a_time), the counts are shared.
        self._counting = threading.Lock()
        self._dc_locks: dict[str, threading.RLock] = {}

    # The Directory port.

    @property
    def domain(self) -> str:
        return self._domain

    @property
    def base_dn(self) -> str:
        return self._base_dn

    def replication_delays(self) -> dict[str, float]:
        """From the configuration partition: 0 within the writable DC's site, else the site
        links' replInterval along the cheapest path (see :func:`discovery.delays`). A DC
        listed in the inventory but not found there gets AD's default interval (3 hours).
        Global catalogs of other domains (partial replicas of this one) are listed too."""
        found, configuration = self._discover_with_configuration()
        links = discovery.site_links(self._discovery_search(configuration), configuration)
        writable = self.writable_dc()
        by_name = {
            name.lower(): delay for name, delay in discovery.delays(found, links, writable).items()
        }
        by_name.setdefault(writable.lower(), 0.0)
        return {
            dc: by_name.get(dc.lower(), discovery.DEFAULT_INTERVAL_S)
            for dc in [*self.domain_controllers(), *(c.name for c in found if c.partial)]
        }

    def domain_controllers(self) -> list[str]:
        if self._dcs is None:
            found = [dc for dc in self._discover() if not dc.partial]
            self._dcs = [dc.name for dc in found]
            if self._writable is None:
                self._writable = next((dc.name for dc in found if not dc.read_only), None)
        return list(self._dcs)

    def writable_dc(self) -> str:
        if self._writable is None:
            dcs = self.domain_controllers()
            if self._writable is None:
                if not dcs:
                    raise PermanentError(
                        "no domain controller found",
                        endpoint=self._bootstrap,
                        operation="directory.writable_dc",
                        target=self._base_dn,
                        hint="list the DCs in the inventory's [directory] dcs",
                    )
                self._writable = dcs[0]
        return self._writable

    def find_users(self, query: UserQuery, dc: str | None = None) -> list[DirectoryEntry]:
        name = dc or self.writable_dc()
        found = self._search(
            name,
            query.base_dn or self._base_dn,
            filters.user_filter(query),
            operation="directory.find_users",
        )
        return sorted(self._decoded(name, found), key=_creation_order)

    def forest_namesakes(
        self, sam_account_names: Collection[str]
    ) -> dict[str, list[tuple[UUID, str]]]:
        """A paged search of the pinned DC's global catalog (the whole forest, base "") for
        these names, 100 to a search."""
        names = list(dict.fromkeys(sam_account_names))
        found: dict[str, list[tuple[UUID, str]]] = {name: [] for name in names}
        folded = {name.casefold(): name for name in names}
        catalog = GC_PREFIX + self.writable_dc()
        for start in range(0, len(names), GUIDS_PER_SEARCH):
            rows = self._search(
                catalog,
                "",
                filters.namesakes(names[start : start + GUIDS_PER_SEARCH]),
                attributes=("objectGUID", "sAMAccountName"),
                operation="directory.forest_namesakes",
            )
            for dn, raw in rows:
                sam = next(
                    (v[0] for k, v in raw.items() if k.lower() == "samaccountname" and v), b""
                )
                name = folded.get(sam.decode("utf-8").casefold())
                if name is not None:
                    found[name].append((entries.guid_of(dn, raw), dn))
        return found

    # What the Exchange adapter reads here rather than on its servers (ports.ExchangeCatalog).

    def mailbox_owners(self, mailbox_guids: Collection[UUID]) -> dict[UUID, list[tuple[UUID, str]]]:
        """A paged search of the pinned DC's global catalog (the whole forest), 100 GUIDs to
        a search."""
        wanted = list(dict.fromkeys(mailbox_guids))
        found: dict[UUID, list[tuple[UUID, str]]] = {guid: [] for guid in wanted}
        for start in range(0, len(wanted), GUIDS_PER_SEARCH):
            catalog.add_owners(
                found,
                self._search(
                    GC_PREFIX + self.writable_dc(),
                    "",
                    catalog.owners_filter(wanted[start : start + GUIDS_PER_SEARCH]),
                    attributes=catalog.OWNER_ATTRIBUTES,
                    operation="exchange.owners",
                ),
            )
        return found

    def mailbox_stores(self, server: str) -> list[Store]:
        """One paged search of the configuration naming context on the pinned DC."""
        found = self._search(
            self.writable_dc(),
            self._configuration(self.writable_dc()),
            catalog.STORES,
            attributes=catalog.STORE_ATTRIBUTES,
            operation="exchange.stores",
        )
        return catalog.stores_of(server, found)

    def extended_rights(self, dn: str, account: str, rights: Collection[UUID]) -> set[UUID]:
        """The account is found on the global catalog, its groups read from its tokenGroups on
        the pinned DC, and the object's DACL (the SD flags control: DACL only) checked as
        Windows would (:mod:`.access`)."""
        dc = self.writable_dc()
        found = self._search(
            GC_PREFIX + dc,
            "",
            catalog.account_filter(account),
            attributes=catalog.ACCOUNT_ATTRIBUTES,
            operation="exchange.rights",
        )
        if len(found) != 1:
            raise PermanentError(
                f"{len(found)} users of the forest match the account {account!r}",
                endpoint=dc,
                operation="exchange.rights",
                target=account,
                hint="set identity in the inventory to DOMAIN\\name or name@domain of one user",
            )
        token = self._token(dc, found[0][0])
        target = self._search(
            dc,
            dn,
            "(objectClass=*)",
            scope=ldap3.BASE,
            attributes=("nTSecurityDescriptor",),
            operation="exchange.rights",
        )
        descriptor = next(
            (
                v[0]
                for k, v in (target[0][1] if target else {}).items()
                if k.lower() == "ntsecuritydescriptor" and v
            ),
            None,
        )
        if descriptor is None:
            raise _unreadable(dn, dc)
        sids = access.LOGON_SIDS | token
        try:
            return {right for right in rights if access.holds(descriptor, sids, right)}
        except access.MalformedDescriptor as error:
            raise _unreadable(dn, dc, str(error)) from None

    def _token(self, dc: str, account_dn: str) -> set[bytes]:
        """The account's SID and its groups'. tokenGroups, on a DC of the account's domain, has
        them all; for an account of another domain of the forest only the global catalog's
        tokenGroupsGlobalAndUniversal can be asked, which leaves out that domain's local groups
        (a right granted through one of them is reported missing)."""
        ours = is_within_normalized(normalize(account_dn), normalize(self._base_dn))
        found = self._search(
            dc if ours else GC_PREFIX + dc,
            account_dn,
            "(objectClass=*)",
            scope=ldap3.BASE,
            attributes=catalog.TOKEN_ATTRIBUTES if ours else catalog.FOREST_TOKEN_ATTRIBUTES,
            operation="exchange.rights",
        )
        return catalog.token_sids(found[0][1]) if found else set()

    def recipients(self, guids: Collection[UUID]) -> dict[UUID, DirectoryEntry]:
        return self.read(guids, self.writable_dc())

    def _configuration(self, dc: str) -> str:
        """The forest's configuration naming context, from ``dc``'s root DSE (read once)."""
        if self._configuration_dn is None:
            root = self._search(
                dc,
                "",
                "(objectClass=*)",
                scope=ldap3.BASE,
                attributes=("configurationNamingContext",),
                operation="directory.discover",
            )
            values = [
                v
                for k, v in (root[0][1] if root else {}).items()
                if k.lower() == "configurationnamingcontext" and v
            ]
            self._configuration_dn = (
                values[0][0].decode("utf-8")
                if values  # a forest root's:
                else f"CN=Configuration,{self._base_dn}"
            )
        return self._configuration_dn

    def lookup(self, dn: str, dc: str | None = None) -> DirectoryEntry | None:
        """One base search for ``dn``: AD answers noSuchObject (32) for a name that does not
        exist, which is None here."""
        name = dc or self.writable_dc()
        found = self._search(
            name,
            dn,
            "(objectClass=*)",
            scope=ldap3.BASE,
            operation="directory.lookup",
        )
        decoded = self._decoded(name, found)
        return decoded[0] if decoded else None

    @_one_dc_call_at_a_time
    def read(
        self, guids: Collection[UUID], dc: str, *, include_deleted: bool = False
    ) -> dict[UUID, DirectoryEntry]:
        """What is held for ``dc`` and still good (see :mod:`.seen`: one request, two when
        anything changed there since), the rest read by GUID, 100 to a search."""
        self._refresh(dc)
        return self._read_held(guids, dc, include_deleted=include_deleted)

    def read_catalog(self, guids: Collection[UUID], gc: str) -> dict[UUID, DirectoryEntry]:
        """A search of ``gc``'s global catalog port under the domain's DN (its copy of this
        domain's partition), 100 GUIDs to a search; nothing is held, each read is afresh. A GC
        of another domain answers with the partial attribute set's values only."""
        wanted = list(dict.fromkeys(guids))
        found: dict[UUID, DirectoryEntry] = {}
        for start in range(0, len(wanted), GUIDS_PER_SEARCH):
            rows = self._search(
                GC_PREFIX + gc,
                self._base_dn,
                filters.guids(wanted[start : start + GUIDS_PER_SEARCH]),
                operation="directory.read_catalog",
            )
            found.update(
                (entry.guid, entry)
                for dn, raw in rows
                if not (entry := entries.to_entry(dn, raw)).deleted
            )
        return found

    def _read_held(
        self, guids: Collection[UUID], dc: str, *, include_deleted: bool = False
    ) -> dict[UUID, DirectoryEntry]:
        """``read`` without the refresh: what is held as it is, the rest read by GUID."""
        wanted = list(dict.fromkeys(guids))
        unknown = [
            guid
            for guid in wanted
            if not self._seen.knows(dc, guid, include_deleted=include_deleted)
        ]
        controls: list[Control] = [SHOW_DELETED] if include_deleted else []
        read: dict[UUID, DirectoryEntry] = {}
        for start in range(0, len(unknown), GUIDS_PER_SEARCH):
            chunk = unknown[start : start + GUIDS_PER_SEARCH]
            found = self._search(
                dc,
                self._base_dn,
                filters.guids(chunk),
                controls=controls,
                operation="directory.read",
            )
            read.update((entry.guid, entry) for entry in self._decoded(dc, found))
        result: dict[UUID, DirectoryEntry] = {}
        for guid in wanted:
            entry = read.get(guid) or self._seen.entry(dc, guid, include_deleted=include_deleted)
            if entry is not None:
                result[guid] = entry
        return result

    @_one_dc_call_at_a_time
    def descendants(self, guids: Collection[UUID], dc: str) -> dict[UUID, list[DirectoryEntry]]:
        """Live objects strictly below each live object of ``guids``, deepest first: the names
        at or below each distinct parent container of the objects (where they were last read;
        where they are not there, or were never read, they are first found by GUID), as held
        (see :mod:`.seen`) or else searched (paged, names only), then a read of the
        descendants found."""
        wanted = list(dict.fromkeys(guids))
        self._refresh(dc)
        names: dict[UUID, str] = {}
        guessed = {parent_dn(normalize(dn)) for guid in wanted if (dn := self._seen.name(guid))}
        self._names_below(dc, guessed, names)
        missing = [guid for guid in wanted if guid not in names]
        if missing:
            located = self._names(missing, dc)
            self._names_below(dc, {parent_dn(normalize(dn)) for dn in located.values()}, names)
        root_of = {names[guid]: guid for guid in wanted if guid in names}
        below_ids: dict[UUID, list[UUID]] = {guid: [] for guid in root_of.values()}
        for guid, dn in names.items():
            # Walk up from each name (its depth, not the number of roots): a root among its
            # ancestors owns it.
            ancestor = parent_dn(dn)
            while ancestor:
                owner = root_of.get(ancestor)
                if owner is not None:
                    below_ids[owner].append(guid)
                ancestor = parent_dn(ancestor)
        wanted_below = [child for children in below_ids.values() for child in children]
        found_entries = self._read_held(wanted_below, dc) if wanted_below else {}
        below: dict[UUID, list[DirectoryEntry]] = {}
        for guid, children in below_ids.items():
            below[guid] = sorted(
                (found_entries[child] for child in children if child in found_entries),
                key=lambda e: (-len(split_rdns(e.dn)), normalize(e.dn)),
            )
        return below

    def _names_below(self, dc: str, containers: Collection[str], names: dict[UUID, str]) -> None:
        """Add the (normalized) name of every live object at or below each container."""
        for container in sorted(containers):
            listing = self._seen.listing(dc, container)
            if listing is None:
                found = self._search(
                    dc,
                    container,
                    "(objectClass=*)",
                    attributes=entries.NAME_ATTRIBUTES,
                    operation="directory.descendants",
                )
                listing = self._seen.record_listing(
                    dc,
                    container,
                    (
                        (entries.guid_of(dn, raw), dn, entries.parent_guid_of(raw))
                        for dn, raw in found
                    ),
                )
            names.update(listing)

    def _names(self, guids: Collection[UUID], dc: str) -> dict[UUID, str]:
        """The DN of each live object of ``guids`` (absent ones left out), names only."""
        wanted = list(dict.fromkeys(guids))
        names: dict[UUID, str] = {}
        for start in range(0, len(wanted), GUIDS_PER_SEARCH):
            found = self._search(
                dc,
                self._base_dn,
                filters.guids(wanted[start : start + GUIDS_PER_SEARCH]),
                attributes=("objectGUID",),
                operation="directory.descendants",
            )
            names.update((entries.guid_of(dn, raw), dn) for dn, raw in found)
        return names

    @_one_dc_call_at_a_time
    def delete(self, guid: UUID, *, tree: bool) -> None:
        controls = [TREE_DELETE] if tree else None
        dc = self.writable_dc()
        self._seen.changed(dc, guid)
        try:
            self._send(
                dc,
                "directory.delete",
                str(guid),
                lambda c: c.delete(filters.guid_dn(guid), controls=controls),
            )
        except Exception:
            self._seen.unsure(dc, guid)
            raise
        self._seen.deleted(dc, guid, tree=tree)

    @_one_dc_call_at_a_time
    def modify(self, guid: UUID, changes: Mapping[str, WriteValue | None]) -> None:
        dc = self.writable_dc()
        wanted = dict(changes)
        if any(value is None or value == [] for value in wanted.values()):
            current = self.read([guid], dc).get(guid)
            if current is None:
                raise _no_such_object(guid, dc, "directory.modify")
            # Clearing what the object does not hold is a no-op (and an attribute the schema
            # lacks, like homeMTA on a DC without that Exchange schema, cannot be held).
            wanted = {
                name: value
                for name, value in wanted.items()
                if (value is not None and value != []) or current.holds(name)
            }
        if not wanted:
            return
        self._seen.changed(dc, guid)
        try:
            ldap_changes = {
                name: [(ldap3.MODIFY_REPLACE, entries.to_ldap(name, value) if value else [])]
                for name, value in wanted.items()
            }
        except ValueError as error:
            raise PermanentError(
                f"invalidAttributeSyntax (21): {error}",
                endpoint=dc,
                operation="directory.modify",
                target=str(guid),
                hint="a GUID attribute takes a GUID",
            ) from None
        self._send(
            dc,
            "directory.modify",
            str(guid),
            lambda c: c.modify(filters.guid_dn(guid), ldap_changes),
        )

    def unprotect(self, guid: UUID) -> None:
        dc = self.writable_dc()
        found = self._search(
            dc,
            filters.guid_dn(guid),
            "(objectClass=*)",
            scope=ldap3.BASE,
            attributes=("nTSecurityDescriptor",),
            controls=[security.dacl_control()],
            operation="directory.unprotect",
        )
        if not found:
            raise _no_such_object(guid, dc, "directory.unprotect")
        descriptor = next(
            (v[0] for k, v in found[0][1].items() if k.lower() == "ntsecuritydescriptor"), None
        )
        if descriptor is None or not security.is_protected(descriptor):
            return
        changed = security.without_protection(descriptor)
        self._seen.changed(dc, guid)
        self._send(
            dc,
            "directory.unprotect",
            str(guid),
            lambda c: c.modify(
                filters.guid_dn(guid),
                {"nTSecurityDescriptor": [(ldap3.MODIFY_REPLACE, [changed])]},
                controls=[security.dacl_control()],
            ),
        )

    # The organisation's lease (see remediate.engine.lease): a container object on the pinned
    # DC, its description the holder's record. The DC's add is the arbiter between two runs.

    def lease(self, dn: str) -> str | None:
        found = self._search(
            self.writable_dc(),
            dn,
            "(objectClass=*)",
            scope=ldap3.BASE,
            attributes=("description",),
            operation="directory.lease",
        )
        values = (
            next((v for k, v in found[0][1].items() if k.lower() == "description"), [])
            if found
            else []
        )
        return values[0].decode("utf-8") if values else None

    def add_lease(self, dn: str, record: str) -> bool:
        result, _ = self._send(
            self.writable_dc(),
            "directory.add_lease",
            dn,
            lambda c: c.add(dn, ["top", "container"], {"description": record}),
            expected={ENTRY_ALREADY_EXISTS},
        )
        return result.get("result") == SUCCESS

    def swap_lease(self, dn: str, old: str, new: str) -> bool:
        # One modify deleting the old value and adding the new: the DC applies both or neither,
        # and deleting a value the object does not hold fails (noSuchAttribute).
        changes = {"description": [(ldap3.MODIFY_DELETE, [old]), (ldap3.MODIFY_ADD, [new])]}
        result, _ = self._send(
            self.writable_dc(),
            "directory.swap_lease",
            dn,
            lambda c: c.modify(dn, changes),
            expected={NO_SUCH_ATTRIBUTE, NO_SUCH_OBJECT},
        )
        return result.get("result") == SUCCESS

    def remove_lease(self, dn: str, record: str) -> bool:
        # LDAP has no conditional delete that AD honours; the holder removes only a lease that
        # still names it, and another run takes a lease over only once its holder stopped.
        if self.lease(dn) != record:
            return False
        result, _ = self._send(
            self.writable_dc(),
            "directory.remove_lease",
            dn,
            lambda c: c.delete(dn),
            expected={NO_SUCH_OBJECT},
        )
        return result.get("result") == SUCCESS

    def entries_within(self, base: str, dc: str) -> list[DirectoryEntry]:
        """Every live object at or below ``base`` (any class), in one paged search."""
        found = self._search(dc, base, "(objectClass=*)", operation="directory.snapshot")
        return [entries.to_entry(dn, raw) for dn, raw in found]

    def held_within(self, base: str) -> list[DirectoryEntry]:
        """The live objects at or below ``base`` this adapter holds from the pinned DC (what
        discovery just read, say), as they are now: held entries still good (see
        :mod:`.seen`), those that changed read again. A rehearsal of what was just read needs
        no second full read."""
        dc = self.writable_dc()
        self._refresh(dc)
        held, stale = self._seen.held_within(dc, base)
        again = self._read_held(stale, dc)
        scope = normalize(base)
        return [
            *held,
            *(
                entry
                for entry in again.values()
                if is_within_normalized(normalize(entry.dn), scope)
            ),
        ]

    # Plumbing.

    def _decoded(self, dc: str, found: Found) -> list[DirectoryEntry]:
        decoded = [(entries.to_entry(dn, raw), entries.parent_guid_of(raw)) for dn, raw in found]
        self._seen.record(dc, decoded)
        return [entry for entry, _ in decoded]

    def _refresh(self, dc: str) -> None:
        """Bring what is held for ``dc`` up to date: the DC's highestCommittedUSN (one
        request), and if it moved on, the objects changed since (one paged search, names only,
        Show Deleted); when objects never read here changed, the containers of what is held are
        looked up by GUID (one search) in case one of them moved."""
        since = self._seen.due(dc)
        if since is None:
            return
        highest = self._highest_usn(dc)
        if highest == since:
            return
        found = self._search(
            dc,
            self._base_dn,
            f"(uSNChanged>={since + 1})",
            attributes=entries.CHANGE_ATTRIBUTES,
            controls=[SHOW_DELETED],
            operation="directory.changes",
        )
        changed = ((entries.to_entry(dn, raw), entries.parent_guid_of(raw)) for dn, raw in found)
        if self._seen.refresh(dc, changed):
            self._check_containers(dc)
        self._seen.advance(dc, highest)

    def _check_containers(self, dc: str) -> None:
        held = self._seen.containers(dc)
        where: dict[UUID, str] = {}
        by_guid = list(dict.fromkeys(held.values()))
        for start in range(0, len(by_guid), GUIDS_PER_SEARCH):
            found = self._search(
                dc,
                self._base_dn,
                filters.guids(by_guid[start : start + GUIDS_PER_SEARCH]),
                attributes=("objectGUID",),
                operation="directory.changes",
            )
            where.update((entries.guid_of(dn, raw), normalize(dn)) for dn, raw in found)
        self._seen.moved(dc, [name for name, guid in held.items() if where.get(guid) != name])

    def _highest_usn(self, dc: str) -> int:
        _, response = self._send(
            dc,
            "directory.changes",
            None,
            lambda c: c.search(
                "", "(objectClass=*)", ldap3.BASE, attributes=["highestCommittedUSN"]
            ),
        )
        found = [
            item["raw_attributes"] for item in response if item.get("type") == "searchResEntry"
        ]
        usn = entries.to_usn(found[0], "highestCommittedUSN") if found else 0
        if not usn:
            raise TransientError(
                "the DC's root DSE gave no highestCommittedUSN",
                endpoint=dc,
                operation="directory.changes",
                target=None,
                hint="check that the DC is an Active Directory DC and is healthy",
            )
        return usn

    def lock_for(self, dc: str) -> threading.RLock:
        """The lock the calls to ``dc`` take turns on."""
        with self._counting:
            return self._dc_locks.setdefault(dc, threading.RLock())

    def close(self) -> None:
        """Close every connection and forget what was read (a new session reads afresh)."""
        for connection in self._connections.values():
            connection.unbind()
        self._connections.clear()
        self._seen = Seen()

    def connection(self, dc: str) -> ldap3.Connection:
        """The open, bound connection to ``dc`` (opened now if needed); ``gc:<dc>``: to its
        global catalog port."""
        if dc not in self._connections:
            if dc.startswith(GC_PREFIX):
                port = GC_PORTS[self._settings.tls_mode or TlsMode.LDAPS]
                connection = open_connection(
                    replace(self._settings, port=port), dc.removeprefix(GC_PREFIX)
                )
            else:
                connection = open_connection(self._settings, dc)
                self._watch(dc, connection)
            self._connections[dc] = connection
        return self._connections[dc]

    def _watch(self, dc: str, connection: ldap3.Connection) -> None:
        """Note the DC's highestCommittedUSN and its database's invocationId, part of opening a
        connection (so not among the ``requests``): what is read from it afterwards is checked
        against later changes, and a DC restored from a backup since (a new invocationId; its
        numbers went back) has everything held for it forgotten."""
        root = self._connect_read(dc, connection, "", ("highestCommittedUSN", "dsServiceName"))
        service = next((v[0] for k, v in root.items() if k.lower() == "dsservicename" and v), None)
        settings = (
            self._connect_read(dc, connection, service.decode("utf-8"), ("invocationId",))
            if service
            else {}
        )
        invocation = next((v[0] for k, v in settings.items() if k.lower() == "invocationid"), None)
        self._seen.watch(dc, entries.to_usn(root, "highestCommittedUSN"), invocation)

    def _connect_read(
        self, dc: str, connection: ldap3.Connection, base: str, attributes: Sequence[str]
    ) -> dict[str, list[bytes]]:
        try:
            answer: Any = connection.search(
                base, "(objectClass=*)", ldap3.BASE, attributes=list(attributes)
            )
        except (LDAPException, OSError) as error:
            self._connections.pop(dc, None)
            raise errors.from_exception(
                error, dc=dc, operation="directory.connect", target=None
            ) from None
        found = [
            item["raw_attributes"]
            for item in answer[2] or ()
            if item.get("type") == "searchResEntry"
        ]
        if not found:
            raise errors.from_result(answer[1], dc=dc, operation="directory.connect", target=None)
        raw: dict[str, list[bytes]] = found[0]
        return raw

    def _send(
        self,
        dc: str,
        operation: str,
        target: str | None,
        call: Callable[[ldap3.Connection], Any],
        *,
        missing_is_empty: bool = False,
        expected: Collection[int] = (),
    ) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        """One LDAP request; a failure becomes a classified error (the connection is dropped
        after a transient one so the retry reconnects). A result code in ``expected`` is an
        answer, returned for the caller to read (the lease's entryAlreadyExists)."""
        connection = self.connection(dc)
        with self._counting:
            self.requests += 1
            self.requests_by_operation[operation] += 1
        try:
            answer = call(connection)
        except (LDAPException, OSError) as error:
            self._connections.pop(dc, None)
            raise errors.from_exception(error, dc=dc, operation=operation, target=target) from None
        # ldap3's status is False for a search that found nothing: the result code decides.
        result, response = answer[1], answer[2]
        if result.get("result") != SUCCESS:
            if missing_is_empty and result.get("result") == NO_SUCH_OBJECT:
                return result, []
            if result.get("result") in expected:
                return result, []
            failure = errors.from_result(result, dc=dc, operation=operation, target=target)
            if isinstance(failure, TransientError):
                self._connections.pop(dc, None)
            raise failure
        return result, list(response or [])

    def _search(
        self,
        dc: str,
        base: str,
        search_filter: str,
        *,
        operation: str,
        scope: str = ldap3.SUBTREE,
        attributes: Sequence[str] = entries.READ_ATTRIBUTES,
        controls: Sequence[Control] = (),
    ) -> Found:
        """A paged search: one request per page. A base that does not exist finds nothing."""
        found: Found = []
        cookie: bytes | None = None
        all_controls = [*controls, security.dacl_control()]
        while True:
            result, response = self._send(
                dc,
                operation,
                base,
                lambda c, cookie=cookie: c.search(  # type: ignore[misc]
                    base,
                    search_filter,
                    search_scope=scope,
                    attributes=list(attributes),
                    controls=all_controls,
                    paged_size=self._page_size,
                    paged_cookie=cookie,
                ),
                missing_is_empty=True,
            )
            found.extend(
                (item["dn"], item["raw_attributes"])
                for item in response
                if item.get("type") == "searchResEntry"
            )
            paged = (result.get("controls") or {}).get(PAGED_RESULTS_OID, {})
            cookie = paged.get("value", {}).get("cookie") or None
            if not cookie:
                return found

    def _discover(self) -> list[DomainController]:
        return self._discover_with_configuration()[0]

    def _discover_with_configuration(self) -> tuple[list[DomainController], str]:
        configuration = self._configuration(self._bootstrap)
        found = discovery.discover(
            self._discovery_search(configuration), configuration, self._base_dn
        )
        return found, configuration

    def _discovery_search(self, configuration: str) -> discovery.Search:
        def search(base: str, flt: str, attrs: Sequence[str]) -> Found:
            return self._search(
                self._bootstrap, base, flt, attributes=attrs, operation="directory.discover"
            )

        return search


def _creation_order(entry: DirectoryEntry) -> tuple[object, int]:
    return entry.when_created, entry.guid.int


def _unreadable(dn: str, dc: str, why: str = "not returned") -> PermanentError:
    return PermanentError(
        f"the security descriptor of {dn} on {dc}: {why}",
        endpoint=dc,
        operation="exchange.rights",
        target=dn,
        hint="the [directory] account needs to read the object's permissions (its DACL)",
    )


def _no_such_object(guid: UUID, dc: str, operation: str) -> PermanentError:
    return PermanentError(
        f"noSuchObject (32): objectGUID {guid}: no such object on {dc}",
        endpoint=dc,
        operation=operation,
        target=str(guid),
        hint="the object is gone or the name is wrong: refresh the selection",
    )
