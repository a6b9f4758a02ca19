"""The Exchange server behind the endpoint: recognises OUR scripts and plays them on the fake.

This is not a PowerShell interpreter. It accepts only the adapter's constant bootstrap, reads the
script and its base64 arguments from stdin as the bootstrap would, checks that the script is one
of our fixed scripts byte for byte (so no data can have been spliced into it), decodes the
arguments by its own code, and calls the in-memory ``FakeExchange`` the way the script's cmdlets
would act on a real server. Results come back in the scripts' output contract
(``REMEDIATE-<KIND> <json>`` lines and exit codes 0/3/4, or a PowerShell error in CLIXML).
"""

from __future__ import annotations

import base64
import json
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from remediate.adapters.winrm.delivery import BOOTSTRAP
from remediate.adapters.winrm.scripts import Dialect, Script, library
from remediate.adapters.winrm.scripts.assembly import MARKER
from remediate.dn import normalize
from remediate.errors import PermanentError, TransientError
from remediate.fakes import FakeDirectory, FakeExchange
from remediate.model import (
    ConnectAs,
    ExchangeVersion,
    ExportRef,
    MailboxKind,
    ServiceState,
    iso,
    line_unsafe,
    mailbox_list_refusal,
)

from . import clixml
from .export_share import ExportShare, mailbox_bytes
from .shells import HostResult

_LATEST_BUILDS = {
    ExchangeVersion.E2007: "Version 8.3 (Build 83.6)",
    ExchangeVersion.E2010: "Version 14.3 (Build 123.4)",
    ExchangeVersion.E2013: "Version 15.0 (Build 1497.2)",
    ExchangeVersion.E2016: "Version 15.1 (Build 2507.6)",
    ExchangeVersion.E2019: "Version 15.2 (Build 1544.4)",
    ExchangeVersion.SE: "Version 15.2 (Build 2562.17)",
}
_FAKE_LOCK = threading.Lock()  # one fake, several endpoints (one per server)


@dataclass(frozen=True)
class DecodedCall:
    """A script run as the endpoint decoded it (tests compare these with what was sent)."""

    script_id: str
    operation: str
    parameters: dict[str, Any]
    script_text: str


def _b64(text: str) -> str:
    return base64.b64decode(text, validate=True).decode("utf-8")


def decode_arguments(script: Script, arguments: list[str]) -> dict[str, Any]:
    if script.dialect is Dialect.PS5:
        decoded: dict[str, Any] = json.loads(_b64(arguments[0]))
        return decoded
    if len(arguments) != len(script.parameters):
        raise ValueError(f"{len(arguments)} arguments for {len(script.parameters)} parameters")
    return {
        parameter.name: [_b64(part.removeprefix("~")) for part in argument.split(",") if part]
        if parameter.is_list
        else _b64(argument)
        for parameter, argument in zip(script.parameters, arguments, strict=True)
    }


def _error(message: str, **kinds: str) -> HostResult:
    return HostResult(exit_code=1, errors=clixml.error_record(message, **kinds))


def _uuid(value: str) -> UUID:
    try:
        return UUID(value)
    except ValueError:
        raise _CastError(value) from None


class _CastError(Exception):
    pass


class ExchangeHost:
    """Plays our scripts for one server of a ``FakeExchange``."""

    def __init__(
        self,
        exchange: FakeExchange,
        server: str,
        share: ExportShare | None = None,
        *,
        directory: FakeDirectory,
    ) -> None:
        self.exchange = exchange
        self.directory = directory  # what the server's own DC holds, to find the users named
        self.server = server
        self.share = share if share is not None else ExportShare()
        self.calls: list[DecodedCall] = []
        self.before_run: Callable[[DecodedCall], None] | None = None  # tests: delays, noise
        # Get-ExchangeServer's AdminDisplayVersion (None: the version's last update, below)
        self.admin_display_version: str | None = None
        # What the ExMerge prerequisites script would find missing on this server (none here)
        self.exmerge_problems: list[str] = []
        # Whether New-MailboxExportRequest is in the session (the Mailbox Import Export role)
        self.can_export = True

    def _version(self) -> ExchangeVersion:
        return next(s.version for s in self.exchange.servers() if s.name == self.server)

    def run(self, script: str, stdin: Callable[[], bytes]) -> HostResult:
        if script != BOOTSTRAP:
            return _error("This test server runs only remediate's bootstrap script.")
        lines = [line.strip() for line in stdin().decode("ascii").split("\n")]
        arguments = [line[1:] for line in lines if line.startswith("=")]
        text = _b64(arguments.pop(0))
        script_id = text.split("\n", 1)[0].removeprefix(MARKER)
        with _FAKE_LOCK:
            version = self._version()
        known = library(version).get(script_id.rsplit(".", 1)[-1])
        if known is None or known.id != script_id or known.text != text:
            return _error(
                f"Unknown script {script_id!r} for Exchange {version}.",
                error_id="CommandNotFoundException",
            )
        call = DecodedCall(script_id, known.operation, decode_arguments(known, arguments), text)
        self.calls.append(call)
        if self.before_run is not None:
            self.before_run(call)
        try:
            with _FAKE_LOCK:
                result = _OPERATIONS[known.operation](self, version, call.parameters)
        except _CastError as error:
            return _error(
                f'Cannot convert value "{error}" to type "System.Guid". Error: "Guid should '
                'contain 32 digits with 4 dashes (xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx)."',
                category="InvalidArgument: (:) [], RuntimeException",
                error_id="InvalidCastParseTargetInvocation",
            )
        except PermanentError as error:
            message = error.message + (f" ({error.hint})" if error.hint else "")
            return _output("REFUSED", {"message": message, "target": None}, 3)
        except TransientError as error:
            return _output("TRANSIENT", {"message": error.message}, 4)
        return _output("RESULT", result, 0)

    # -- what each script does on a server

    def describe(self, version: ExchangeVersion, p: dict[str, Any]) -> Any:
        info = next(s for s in self.exchange.servers() if s.name == self.server)
        stores = [
            {"name": s.name, "storage_group": s.storage_group, "dn": s.dn}
            for s in self.exchange.stores(self.server)
        ]
        used = {"dcs": list(info.domain_controllers), "gcs": list(info.global_catalogs)}
        if version.legacy:  # Exchange_DSAccessDC over WMI: no build, no stores (read from AD)
            return {"dc": info.dc, **used}
        build = self.admin_display_version or _LATEST_BUILDS[version]
        # ServerRole as PowerShell prints the flags ("Mailbox, HubTransport"); Site as the
        # canonical name of the site object.
        return {
            "dc": info.dc,
            **used,
            "stores": stores,
            "admin_display_version": build,
            "roles": ", ".join(sorted(info.roles)),
            "site": info.site,
            "can_export": self.can_export,
        }

    def _stores(
        self, version: ExchangeVersion, guids: list[str], keys: list[str]
    ) -> dict[UUID, str]:
        """The scripts' store keys (by position) as the fake's store DNs: 2007+ send the DN,
        2003 "<storage group>\\<store>" (Exchange_Mailbox's keys); "" names none."""
        if not version.legacy:
            return {_uuid(guid): key for guid, key in zip(guids, keys, strict=True) if key}
        by_key = {f"{s.storage_group}\\{s.name}": s.dn for s in self.exchange.stores(self.server)}
        return {
            _uuid(guid): by_key.get(key, key) for guid, key in zip(guids, keys, strict=True) if key
        }

    def validate_reconnect(self, version: ExchangeVersion, p: dict[str, Any]) -> Any:
        problems = self.exchange.reconnect_problems(
            self.server,
            [_uuid(g) for g in p["mailboxes"]],
            self._stores(version, p["mailboxes"], p["stores"]),
        )
        return {str(guid): problem for guid, problem in problems.items()}

    def running_dependents(self, version: ExchangeVersion, p: dict[str, Any]) -> Any:
        return self.exchange.running_dependents(self.server, p["names"])

    def exmerge_prerequisites(self, version: ExchangeVersion, p: dict[str, Any]) -> Any:
        return list(self.exmerge_problems)

    def mailboxes(self, version: ExchangeVersion, p: dict[str, Any]) -> Any:
        guids = None if p["scope"] == "all" else [_uuid(g) for g in p["guids"]]
        stores = {s.dn: s for s in self.exchange.stores(self.server)}
        rows = []
        for box in self.exchange.mailboxes(self.server, guids):
            row: dict[str, Any] = {
                "guid": str(box.guid),
                "legacy_dn": box.legacy_dn,
                "display_name": box.display_name,
                "disconnected_at": iso(box.disconnected_at) if box.disconnected_at else None,
                "last_logon_at": iso(box.last_logon_at) if box.last_logon_at else None,
                "items": box.item_count,  # the store counts items; it cannot list them
                "size_bytes": mailbox_bytes(box.item_ids or (), version),
                "copy": box.copy.value,
            }  # no owner: the scripts do not search AD, the adapter reads it from a GC
            if version.legacy:  # WMI names the store, it has no DN
                row["store_name"] = stores[box.store_dn].name
                row["storage_group"] = stores[box.store_dn].storage_group
            else:
                row["store_dn"] = box.store_dn
            rows.append(row)
        return rows

    def service_states(self, version: ExchangeVersion, p: dict[str, Any]) -> Any:
        states = self.exchange.service_states(self.server, p["names"])
        return {name: state.value for name, state in states.items()}

    def set_services(self, version: ExchangeVersion, p: dict[str, Any]) -> Any:
        self.exchange.set_services(self.server, p["names"], ServiceState(p["state"]))

    def clean_database(self, version: ExchangeVersion, p: dict[str, Any]) -> Any:
        self.exchange.run_cleanup_agent(self.server, p["store_dns"])

    def purge(self, version: ExchangeVersion, p: dict[str, Any]) -> Any:
        self.exchange.purge_mailboxes(
            self.server,
            [_uuid(g) for g in p["guids"]],
            self._stores(version, p["guids"], p["stores"]),
        )

    def _named(self, version: ExchangeVersion, p: dict[str, Any]) -> list[UUID]:
        """The users a script names, found as the server finds them: the 2003 strip searches
        by objectGUID (``users``); Exchange_Mailbox.Reconnect binds "the first userid with a
        matching samaccountname in the forest" (Exchange 2003 SDK, Reconnect Method:
        ``logons``); the 2007+ cmdlets take the DN (``user_dns``). The GUIDs in ``users`` are
        otherwise only the refusals' targets, so a wrong DN or name acts on whom it names."""
        info = next(s for s in self.exchange.servers() if s.name == self.server)
        view = self.directory.view(info.dc)
        by_dn = not version.legacy
        if not by_dn and "logons" not in p:
            return [_uuid(g) for g in p["users"]]
        names: list[str] = p["user_dns"] if by_dn else p["logons"]

        def key(name: str) -> str:
            return normalize(name) if by_dn else name.casefold()

        found: dict[str, UUID] = {}
        for entry in view.entries():
            if entry.object_class == "user" and not entry.deleted:
                found.setdefault(key(entry.dn if by_dn else entry.sam_account_name), entry.guid)
        missing = [name for name in names if key(name) not in found]
        if missing:
            raise self._refuse(f"no user {missing[0]!r} as {info.dc} sees it", missing[0])
        return [found[key(name)] for name in names]

    def disable(self, version: ExchangeVersion, p: dict[str, Any]) -> Any:
        self.exchange.disable_mailboxes(self.server, self._named(version, p))

    def reconnect(self, version: ExchangeVersion, p: dict[str, Any]) -> Any:
        users = self._named(version, p)
        pairs = [(_uuid(m), u) for m, u in zip(p["mailboxes"], users, strict=True)]
        how = {
            user: ConnectAs(MailboxKind(kind), archive == "1")
            for user, kind, archive in zip(users, p["kinds"], p["archives"], strict=True)
        }
        self.exchange.reconnect_mailboxes(
            self.server, pairs, how, self._stores(version, p["mailboxes"], p["stores"])
        )

    def update_recipients(self, version: ExchangeVersion, p: dict[str, Any]) -> Any:
        self.exchange.update_recipients(self.server, self._named(version, p))

    def _refuse(self, message: str, target: str | None = None) -> PermanentError:
        """What the script's Stop-RemediateRefused says."""
        return PermanentError(message, endpoint=self.server, operation="script", target=target)

    def _reach(self, directory: str) -> None:
        if self.share.unreachable:
            raise self._refuse(
                f"the export directory {directory} cannot be reached from {self.server}: it "
                "does not exist, or this WinRM session has no credentials to pass on to the "
                'file server (the double hop of an NTLM session: use transport = "credssp", '
                "or Kerberos with delegation)",
                directory,
            )

    def _rows(self, guids: list[UUID]) -> dict[str, Any]:
        refs = self.exchange.exports(self.server, guids)
        rows = {}
        for guid in guids:
            ref = refs.get(guid)
            if ref is not None or guid in self.share.exports:
                rows[str(guid)] = self.share.row(
                    guid, ref.location if ref else f"{guid}.pst", ref.item_ids if ref else None
                )
        return rows

    def _exmerge_lines(self, version: ExchangeVersion, guids: list[UUID]) -> None:
        """The ExMerge scripts' Assert-RemediateExMergeLine, for the whole batch before
        anything is written or run."""
        boxes = [box for box in self.exchange.mailboxes(self.server, guids) if box.live]
        refusal = mailbox_list_refusal(self.server, version, boxes)
        if refusal is not None:
            unsafe = next(box for box in boxes if line_unsafe(box.legacy_dn))
            raise self._refuse(refusal, str(unsafe.guid))

    def exports(self, version: ExchangeVersion, p: dict[str, Any]) -> Any:
        self._reach(p["directory"])
        return self._rows([_uuid(g) for g in p["guids"]])

    def export(self, version: ExchangeVersion, p: dict[str, Any]) -> Any:
        self._reach(p["directory"])
        guids = [_uuid(g) for g in p["guids"]]
        self._exmerge_lines(version, guids)
        boxes = [box for box in self.exchange.mailboxes(self.server, guids) if box.live]
        before = {box.guid: box.item_ids or () for box in boxes}
        refs = self.exchange.export_mail(
            self.server, guids, self._stores(version, p["guids"], p["stores"])
        )
        records = {
            guid: self.share.record_export(
                self.server, version, guid, before[guid], refs[guid].item_ids or ()
            )
            for guid in guids
        }
        failed = [guid for guid, record in records.items() if not record["succeeded"]]
        if failed:
            raise self._refuse(
                f"the export of mailbox {failed[0]} on {self.server} did not "
                f"complete ({len(failed)} in all)",
                str(failed[0]),
            )
        return self._rows(guids)

    def import_(self, version: ExchangeVersion, p: dict[str, Any]) -> Any:
        pairs = [
            (_uuid(guid), ExportRef(server, _uuid(source), location, ()))
            for guid, server, source, location in zip(
                p["mailboxes"],
                p["export_servers"],
                p["export_mailboxes"],
                p["locations"],
                strict=True,
            )
        ]
        self._exmerge_lines(version, [guid for guid, _ in pairs])
        if version.legacy:  # ExMerge needs the name it gave the PST, recorded on export
            for guid, ref in pairs:
                if ref.mailbox not in self.share.exports:
                    raise self._refuse(
                        f"the export {ref.location} (or the name ExMerge gave "
                        f"it) was not found from {self.server}",
                        str(guid),
                    )
        self.exchange.import_mail(
            self.server, pairs, self._stores(version, p["mailboxes"], p["stores"])
        )
        for guid, ref in pairs:
            record = self.share.exports.get(ref.mailbox, {})
            items = record.get("exported_items") or record.get("source_items") or 0
            self.share.record_import(self.server, version, ref.mailbox, guid, items)


_OPERATIONS: dict[str, Callable[[ExchangeHost, ExchangeVersion, dict[str, Any]], Any]] = {
    "describe": ExchangeHost.describe,
    "mailboxes": ExchangeHost.mailboxes,
    "service_states": ExchangeHost.service_states,
    "running_dependents": ExchangeHost.running_dependents,
    "set_services": ExchangeHost.set_services,
    "clean_database": ExchangeHost.clean_database,
    "purge": ExchangeHost.purge,
    "disable": ExchangeHost.disable,
    "reconnect": ExchangeHost.reconnect,
    "update_recipients": ExchangeHost.update_recipients,
    "exports": ExchangeHost.exports,
    "exmerge_prerequisites": ExchangeHost.exmerge_prerequisites,
    "validate_reconnect": ExchangeHost.validate_reconnect,
    "export": ExchangeHost.export,
    "import": ExchangeHost.import_,
}


def _output(kind: str, value: Any, code: int) -> HostResult:
    # PowerShell 3+'s ConvertTo-Json writes non-ASCII as is (the code page matters); the
    # PowerShell 2.0 writer escapes it. Either way one line.
    return HostResult(
        stdout=f"REMEDIATE-{kind} {json.dumps(value, ensure_ascii=False)}\n", exit_code=code
    )
