"""The ``Exchange`` port over WinRM: each port call is one script run per server for all its
targets (split into several only past ``BATCH_SIZE`` targets)."""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar
from uuid import UUID

from remediate.errors import PermanentError, Refused
from remediate.markdown import code
from remediate.model import (
    ConnectAs,
    ExchangeServer,
    ExchangeVersion,
    ExportRef,
    MailboxCopy,
    MailboxInfo,
    ServiceState,
    Store,
    mailbox_list_refusal,
    utc,
)
from remediate.ports import ExchangeCatalog, ManualActionRequired
from remediate.recipient import email_address_policy_instructions, recipient_update_instructions

from . import reads
from .config import ServerConfig
from .delivery import Value
from .evidence import export_ref
from .runner import ScriptRunner
from .scripts import library, mail_export_refusal, missing_operation_hint
from .scripts.cmdlets import lacks_update_recipient
from .scripts.legacy import EXCHANGE_2000_REFUSAL

MISSING_IMPORT_EXPORT_ROLE = (
    "{server}: the account {account} cannot export or import mail there: its Exchange "
    "Management Shell has no New-MailboxExportRequest, so it lacks the Mailbox Import Export "
    "role (assigned to nobody by default). Assign it (New-ManagementRoleAssignment -Role "
    '"Mailbox Import Export" -User {account}), then plan again'
)

# Targets per WinRM call. One call carries a whole step's targets on a server; past this many it
# is split so that one command's run time (Exchange cmdlets take ~0.1-1 s a mailbox) and its
# result stay bounded.
BATCH_SIZE = 1000

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class _Description:
    dc: str
    stores: tuple[Store, ...]
    admin_display_version: str | None  # "Version 14.3 (Build 123.4)"; None: not reported
    roles: frozenset[str]  # ServerRole ("Mailbox, HubTransport"); empty: the version's default
    site: str  # the AD site (Get-ExchangeServer's Site); "" for Exchange 2003
    can_export: bool  # New-MailboxExportRequest is in the session (the Mailbox Import Export role)
    dcs: tuple[str, ...] = ()  # the DCs its DSAccess uses now
    gcs: tuple[str, ...] = ()  # the global catalogs it uses now


def _chunks(items: Sequence[T]) -> Iterator[Sequence[T]]:
    for start in range(0, len(items), BATCH_SIZE):
        yield items[start : start + BATCH_SIZE]


def _names(value: object) -> tuple[str, ...]:
    """A script's list of host names (one name alone may come back as a string)."""
    items = [value] if isinstance(value, str) else value if isinstance(value, list) else []
    return tuple(str(item) for item in items if item)


def _strings(items: Collection[object]) -> list[str]:
    return [str(item) for item in items]


def refuse_exchange_2000(servers: Sequence[ServerConfig]) -> None:
    """Refused before anything connects: see ``EXCHANGE_2000_REFUSAL``."""
    for config in servers:
        if config.version is ExchangeVersion.E2000:
            raise Refused(EXCHANGE_2000_REFUSAL.format(server=config.server), target=config.host)


class WinRmExchange:
    """Implements ``remediate.ports.Exchange`` for the servers of an inventory."""

    def __init__(
        self,
        servers: Sequence[ServerConfig],
        runner: Callable[[ServerConfig], ScriptRunner] = ScriptRunner,
        *,
        catalog: ExchangeCatalog | None = None,
    ) -> None:
        refuse_exchange_2000(servers)
        # Owners, stores and users are read from AD here, not by the scripts (the double hop).
        self._catalog_port = catalog
        self._configs = {config.server: config for config in servers}
        self.runners = {name: runner(config) for name, config in self._configs.items()}
        self._described: dict[str, _Description] = {}
        self._prerequisites: dict[str, str] = {}  # server -> ExMerge's problems ("": none)

    # -- plumbing

    def _config(self, server: str, operation: str) -> ServerConfig:
        config = self._configs.get(server)
        if config is None:
            raise PermanentError(
                f"not in the inventory; known: {', '.join(self._configs) or 'none'}",
                endpoint=server,
                operation=f"exchange.{operation}",
                hint="add an [[exchange]] entry for it",
            )
        return config

    def _run(self, server: str, operation: str, values: Mapping[str, Value]) -> Any:
        config = self._config(server, operation)
        script = library(config.version).get(operation)
        if script is None:
            raise PermanentError(
                f"Exchange {config.version} has no {operation} operation",
                endpoint=server,
                operation=f"exchange.{operation}",
                hint=missing_operation_hint(config.version, operation),
            )
        return self.runners[server].run(script, values)

    def _batched(
        self,
        server: str,
        operation: str,
        targets: Sequence[T],
        values: Callable[[Sequence[T]], Mapping[str, Value]],
    ) -> list[Any]:
        return [self._run(server, operation, values(chunk)) for chunk in _chunks(targets)]

    def _describe(self, server: str) -> _Description:
        if server not in self._described:
            found = self._run(server, "describe", {})
            if self._config(server, "describe").version.legacy:
                stores = tuple(self._catalog("describe").mailbox_stores(server))
            else:  # Get-MailboxDatabase: the Exchange shell reads AD itself
                stores = tuple(
                    Store(
                        server,
                        str(s["name"]),
                        str(s["storage_group"]),
                        str(s["dn"]),
                        s.get("recovery") is True,
                    )
                    for s in found["stores"]
                )
            build = found.get("admin_display_version")
            roles = frozenset(
                role.strip() for role in str(found.get("roles") or "").split(",") if role.strip()
            )
            self._described[server] = _Description(
                str(found["dc"]),
                stores,
                str(build) if build else None,
                roles,
                str(found.get("site") or ""),
                found.get("can_export") is not False,
                _names(found.get("dcs")),
                _names(found.get("gcs")),
            )
        return self._described[server]

    def _store_keys(
        self, server: str, guids: Sequence[UUID], stores: Mapping[UUID, str] | None
    ) -> list[str]:
        """The store each mailbox was seen in, as the script names it (by position): the DN on
        2007+; "<storage group>\\<store>" on 2003 (Exchange_Mailbox has no DN); "": not given."""
        wanted = dict(stores or {})
        legacy = self._config(server, "stores").version.legacy
        if not legacy or not wanted:
            return [wanted.get(guid, "") for guid in guids]
        by_dn = {s.dn.lower(): s for s in self._describe(server).stores}
        keys = []
        for guid in guids:
            dn = wanted.get(guid, "")
            store = by_dn.get(dn.lower())
            if dn and store is None:
                raise PermanentError(
                    f"no store {dn} on {server} (mailbox {guid})",
                    endpoint=server,
                    operation="exchange.stores",
                    target=str(guid),
                    hint="plan again",
                )
            keys.append(f"{store.storage_group}\\{store.name}" if store else "")
        return keys

    def _catalog(self, operation: str) -> ExchangeCatalog:
        if self._catalog_port is None:
            raise PermanentError(
                "no directory connection to read owners, stores and users from",
                endpoint="directory",
                operation=f"exchange.{operation}",
                hint="build WinRmExchange with catalog= (the inventory's [directory])",
            )
        return self._catalog_port

    def _store_dn(self, server: str, row: Mapping[str, Any]) -> str:
        if row.get("store_dn"):
            return str(row["store_dn"])
        for store in self._describe(server).stores:
            named = (row.get("store_name"), row.get("storage_group"))
            if (store.name, store.storage_group) == named:
                return store.dn
        raise PermanentError(
            f"mailbox {row.get('guid')} is in an unknown store",
            endpoint=server,
            operation="exchange.mailboxes",
        )

    # -- the port

    def servers(self) -> list[ExchangeServer]:
        found = []
        for name, config in self._configs.items():
            described = self._describe(name)
            found.append(
                ExchangeServer(
                    name,
                    config.version,
                    described.dc,
                    described.roles,
                    described.site,
                    described.dcs,
                    described.gcs,
                )
            )
        return found

    def stores(self, server: str) -> list[Store]:
        return list(self._describe(server).stores)

    def mailboxes(self, server: str, guids: Collection[UUID] | None = None) -> list[MailboxInfo]:
        if guids is None:
            found = [self._run(server, "mailboxes", {"scope": "all", "guids": []})]
        else:
            found = self._batched(
                server,
                "mailboxes",
                _strings(guids),
                lambda chunk: {"scope": "listed", "guids": list(chunk)},
            )
        rows = [row for chunk in found for row in chunk]
        owners = reads.owners(
            self._catalog("mailboxes"),
            server,
            list(dict.fromkeys(UUID(str(row["guid"])) for row in rows)),
        )
        return [self._mailbox(server, row, owners) for row in rows]

    def _mailbox(
        self, server: str, row: Mapping[str, Any], owners: Mapping[UUID, UUID]
    ) -> MailboxInfo:
        disconnected = row.get("disconnected_at")
        return MailboxInfo(
            guid=UUID(str(row["guid"])),
            server=server,
            store_dn=self._store_dn(server, row),
            legacy_dn=str(row["legacy_dn"]),
            display_name=str(row["display_name"]),
            disconnected_at=utc(str(disconnected)) if disconnected else None,
            item_ids=None,  # a store counts its items; it cannot list them
            owner=owners.get(UUID(str(row["guid"]))),
            counted_items=int(row["items"]),
            size_bytes=None if row.get("size_bytes") is None else int(row["size_bytes"]),
            # WMI Exchange_Mailbox.LastLogonTime (2003), Get-MailboxStatistics LastLogonTime
            last_logon_at=utc(str(row["last_logon_at"])) if row.get("last_logon_at") else None,
            copy=MailboxCopy(str(row.get("copy") or MailboxCopy.LIVE.value)),
        )

    def service_states(self, server: str, names: Collection[str]) -> dict[str, ServiceState]:
        if not names:
            return {}
        found = self._run(server, "service_states", {"names": list(names)})
        return {str(name): ServiceState(str(state)) for name, state in found.items()}

    def running_dependents(self, server: str, names: Collection[str]) -> dict[str, list[str]]:
        if not names:
            return {}
        found = self._run(server, "running_dependents", {"names": list(names)})
        return {
            str(name): [str(d) for d in (dependents or [])] for name, dependents in found.items()
        }

    def set_services(self, server: str, names: Sequence[str], state: ServiceState) -> None:
        if names:
            self._run(server, "set_services", {"names": list(names), "state": state.value})

    def run_cleanup_agent(self, server: str, store_dns: Collection[str]) -> None:
        config = self._config(server, "run_cleanup_agent")
        if not store_dns:
            return
        if not config.version.cleanup_agent_is_manual:
            self._run(server, "clean_database", {"store_dns": list(store_dns)})
            return
        known = {store.dn.lower(): store for store in self._describe(server).stores}
        stores = []
        for dn in store_dns:
            store = known.get(dn.lower())
            if store is None:
                raise PermanentError(
                    f"no store with this DN on {server}; its stores: "
                    + ("; ".join(s.dn for s in known.values()) or "none"),
                    endpoint=server,
                    operation="exchange.run_cleanup_agent",
                    target=dn,
                )
            stores.append(store)
        raise ManualActionRequired(_esm_instructions(server, stores))

    def purge_mailboxes(
        self, server: str, guids: Collection[UUID], stores: Mapping[UUID, str] | None = None
    ) -> None:
        self._batched(
            server,
            "purge",
            list(guids),
            lambda chunk: {
                "guids": _strings(chunk),
                "stores": self._store_keys(server, chunk, stores),
            },
        )

    def disable_mailboxes(self, server: str, users: Collection[UUID]) -> None:
        self._by_user(server, "disable", list(users))

    def _by_user(self, server: str, operation: str, users: Sequence[UUID]) -> None:
        """A script over users named by GUID (targets) and by the DN read from AD."""
        found = reads.users(self._catalog(operation), server, operation, users)
        self._batched(
            server,
            operation,
            users,
            lambda chunk: {
                "users": _strings(chunk),
                "user_dns": [found[user].dn for user in chunk],
            },
        )

    def reconnect_mailboxes(
        self,
        server: str,
        pairs: Sequence[tuple[UUID, UUID]],
        connect_as: Mapping[UUID, ConnectAs] | None = None,
        stores: Mapping[UUID, str] | None = None,
    ) -> None:
        how = dict(connect_as or {})
        found = reads.users(
            self._catalog("reconnect"),
            server,
            "reconnect",
            [user for _, user in pairs],
            unmailed=True,
        )
        self._batched(
            server,
            "reconnect",
            list(pairs),
            lambda chunk: {
                "mailboxes": [str(mailbox) for mailbox, _ in chunk],
                "stores": self._store_keys(server, [mailbox for mailbox, _ in chunk], stores),
                "users": [str(user) for _, user in chunk],
                "kinds": [how.get(user, ConnectAs()).kind.value for _, user in chunk],
                "archives": [
                    "1" if how.get(user, ConnectAs()).archive else "0" for _, user in chunk
                ],
                "logons": [found[user].sam_account_name for _, user in chunk],
                "user_dns": [found[user].dn for _, user in chunk],
            },
        )

    def reconnect_problems(
        self, server: str, mailboxes: Collection[UUID], stores: Mapping[UUID, str] | None = None
    ) -> dict[UUID, str]:
        if self._config(server, "reconnect_problems").version.legacy or not mailboxes:
            return {}
        found: dict[UUID, str] = {}
        for rows in self._batched(
            server,
            "validate_reconnect",
            list(mailboxes),
            lambda chunk: {
                "mailboxes": _strings(chunk),
                "stores": self._store_keys(server, chunk, stores),
            },
        ):
            found.update((UUID(str(guid)), str(problem)) for guid, problem in (rows or {}).items())
        return found

    def update_recipients(self, server: str, users: Collection[UUID]) -> None:
        config = self._config(server, "update_recipients")
        if config.version.legacy:
            raise ManualActionRequired(recipient_update_instructions(server))
        build = (
            self._describe(server).admin_display_version
            if config.version is ExchangeVersion.E2007
            else None
        )
        if build and lacks_update_recipient(build):
            raise ManualActionRequired(email_address_policy_instructions(server, build))
        self._by_user(server, "update_recipients", list(users))

    def mail_export_refusal(
        self, server: str, mailboxes: Collection[MailboxInfo] = ()
    ) -> str | None:
        config = self._config(server, "mail_export_refusal")
        return self._server_refusal(config) or mailbox_list_refusal(
            server, config.version, mailboxes
        )

    def _server_refusal(self, config: ServerConfig) -> str | None:
        """What the version says; for Exchange 2010, the build its describe script reported
        (before SP1: no mailbox requests); for Exchange 2003, ExMerge's prerequisites as the
        server itself reports them (asked once per server)."""
        build = None
        if config.version is ExchangeVersion.E2010:
            build = self._describe(config.server).admin_display_version
        refusal = mail_export_refusal(config.server, config.version, build)
        if (
            refusal is None
            and not config.version.legacy
            and not self._describe(config.server).can_export
        ):
            refusal = MISSING_IMPORT_EXPORT_ROLE.format(
                server=config.server, account=config.identity
            )
        if refusal is None and config.version is ExchangeVersion.E2003:
            if config.server not in self._prerequisites:
                found = self._run(
                    config.server, "exmerge_prerequisites", {"directory": config.export_directory}
                )
                self._prerequisites[config.server] = "; ".join(
                    [
                        *(str(p) for p in found or []),
                        *reads.missing_store_rights(self._catalog("exmerge_prerequisites"), config),
                    ]
                )
            refusal = self._prerequisites[config.server] or None
        return refusal

    def _transferring(self, server: str, operation: str) -> ServerConfig:
        """The server's config, where it can export and import mail; else refused before the
        export or import script runs, as the plan showed (``mail_export_refusal``)."""
        config = self._config(server, operation)
        refusal = self._server_refusal(config)
        if refusal is not None:
            raise PermanentError(refusal, endpoint=server, operation=f"exchange.{operation}")
        return config

    def _exports(
        self,
        config: ServerConfig,
        operation: str,
        guids: Collection[UUID],
        stores: Mapping[UUID, str] | None = None,
    ) -> dict[UUID, ExportRef]:
        server, directory = config.server, config.export_directory

        def values(chunk: Sequence[UUID]) -> dict[str, Value]:
            if operation != "export":
                return {"directory": directory, "guids": _strings(chunk)}
            return {
                "directory": directory,
                "guids": _strings(chunk),
                "wait_s": _wait_s(config),
                "stores": self._store_keys(server, chunk, stores),
            }

        refs: dict[UUID, ExportRef] = {}
        for found in self._batched(server, operation, list(guids), values):
            for guid, row in found.items():
                refs[UUID(guid)] = export_ref(server, UUID(guid), row, operation)
        return refs

    def export_location(self, server: str) -> str:
        return export_location(self._config(server, "export_location"))

    def exports(self, server: str, guids: Collection[UUID]) -> dict[UUID, ExportRef]:
        return self._exports(self._config(server, "exports"), "exports", guids)

    def export_mail(
        self, server: str, guids: Collection[UUID], stores: Mapping[UUID, str] | None = None
    ) -> dict[UUID, ExportRef]:
        return self._exports(self._transferring(server, "export"), "export", guids, stores)

    def import_mail(
        self,
        server: str,
        pairs: Sequence[tuple[UUID, ExportRef]],
        stores: Mapping[UUID, str] | None = None,
    ) -> None:
        config = self._transferring(server, "import")
        directory = config.export_directory
        self._batched(
            server,
            "import",
            list(pairs),
            lambda chunk: {
                "directory": directory,
                "wait_s": _wait_s(config),
                "mailboxes": [str(guid) for guid, _ in chunk],
                "export_servers": [ref.server for _, ref in chunk],
                "export_mailboxes": [str(ref.mailbox) for _, ref in chunk],
                "locations": [ref.location for _, ref in chunk],
                "stores": self._store_keys(server, [guid for guid, _ in chunk], stores),
            },
        )


def export_location(config: ServerConfig) -> str:
    """Where the export scripts put a server's exports, in words: ExMerge (2000/2003) runs on
    the Exchange server and writes its .pst files to ``export_directory`` there (KB174197);
    Exchange 2007 exports nothing through remediate (Export-Mailbox -PSTFolderPath runs only on
    a 32-bit machine with Outlook, and writes to the folder given there); 2010 SP1 and later
    write to the ``export_directory`` share, as the Exchange Trusted Subsystem
    (New-MailboxExportRequest -FilePath: "the network share path of the .pst file")."""
    directory, server = config.export_directory, config.server
    if config.version.legacy:
        return (
            f"{code(directory)} on {server}, the Exchange server itself (ExMerge's "
            "`<mailbox guid>.pst`, its log and the record of each export)"
        )
    if config.version is ExchangeVersion.E2007:
        return (
            f"none from {server}: Exchange 2007 exports only with Export-Mailbox "
            "-PSTFolderPath on a 32-bit management workstation with Outlook, to the folder "
            "given there, on that workstation"
        )
    return (
        f"{code(directory)} (`<mailbox guid>.pst` and the record of each export of {server}'s "
        "mailboxes; New-MailboxExportRequest writes them as the Exchange Trusted Subsystem)"
    )


def _wait_s(config: ServerConfig) -> str:
    """How long a script waits for its mailbox requests: inside the runner's deadline for the
    whole command, so the script, not the runner, says they are still running."""
    return str(int(max(60.0, config.deadline_s - 120.0)))


def _administrative_group(store_dn: str) -> str:
    parts = [part.strip() for part in store_dn.split(",")]
    for index, part in enumerate(parts[:-1]):
        if part.lower() == "cn=servers" and parts[index + 1].lower().startswith("cn="):
            return parts[index + 1][3:]
    return "First Administrative Group"


def _esm_instructions(server: str, stores: Sequence[Store]) -> str:
    return "\n".join(
        f"On {server} open Exchange System Manager > Administrative Groups > "
        f"{_administrative_group(store.dn)} > Servers > {server} > {store.storage_group} > "
        f"{store.name} > right-click Mailboxes > Run Cleanup Agent"
        for store in stores
    )
