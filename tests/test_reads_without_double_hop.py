"""Reads without the double hop. A WinRM session authenticated by plain NTLM holds no credentials
the Exchange server could pass on to a DC, so nothing the scripts read may come from AD on the
server: owners (by msExchMailboxGuid, forest-wide on a global catalog), the 2003 stores (the
configuration naming context) and the users a script acts on (DN, sAMAccountName) are read
through our own LDAP connection (``ports.ExchangeCatalog``) and handed to the scripts as
parameters. No read script may contain ADSI; the one write that still does (the 2003 strip) is
named here and in README."""

from __future__ import annotations

import uuid
from collections.abc import Collection, Iterator
from uuid import UUID

import pytest
import tree_sitter
import tree_sitter_pwsh
from kb_support import load, parameters, scenario
from winrm_support import Site, WinRmWorld, serve

from remediate import Engine, get_playbook
from remediate.adapters.winrm import WinRmExchange
from remediate.adapters.winrm.scripts import OPERATIONS, library
from remediate.errors import PermanentError
from remediate.fakes import FakeCatalog, FakeWorld
from remediate.model import DirectoryEntry, ExchangeVersion, Store
from remediate.testing import apply_confirmed

_PARSER = tree_sitter.Parser(tree_sitter.Language(tree_sitter_pwsh.language()))

# What reaching AD through ADSI looks like in PowerShell, as tokens of the parsed script.
_ADSI_TOKENS = (
    "[adsi]",
    "adsisearcher",
    "directorysearcher",
    "getdirectoryentry",
    "ldap://",
    "system.directoryservices",
)
READS = frozenset(
    {
        "describe",
        "mailboxes",
        "service_states",
        "running_dependents",
        "exports",
        "exmerge_prerequisites",
        "validate_reconnect",
    }
)
WRITES = frozenset(OPERATIONS) - READS
# The one write still done with ADSI on the server, and why: legacy.py's _DIRECTORY_WRITE.
ADSI_WRITES = frozenset({(ExchangeVersion.E2003, "disable")})
SCRIPTS = [(version, name) for version in ExchangeVersion for name in library(version)]


def _leaves(node: tree_sitter.Node) -> Iterator[tree_sitter.Node]:
    if node.type == "comment":
        return
    if not node.children:
        yield node
    for child in node.children:
        yield from _leaves(child)


def adsi_uses(text: str) -> list[str]:
    """Each use of ADSI in ``text`` (comments aside), with its line; empty when there is none."""
    tree = _PARSER.parse(text.encode("utf-8"))
    found = []
    for leaf in _leaves(tree.root_node):
        token = (leaf.text or b"").decode("utf-8").lower()
        wide = token
        if leaf.parent is not None and leaf.parent.type == "type_literal":
            wide = (leaf.parent.text or b"").decode("utf-8").lower().replace(" ", "")
        if any(bad in token or bad in wide for bad in _ADSI_TOKENS):
            found.append(f"line {leaf.start_point[0] + 1}: {token}")
    return found


def test_the_adsi_tripwire_catches_what_it_must() -> None:
    assert adsi_uses("$root = [ADSI]'LDAP://RootDSE'") != []
    assert adsi_uses("$x = [adsi]$path") != []
    assert adsi_uses("$s = New-Object System.DirectoryServices.DirectorySearcher") != []
    assert adsi_uses("$s = [adsisearcher]'(cn=x)'") != []
    assert adsi_uses("$e = $found.GetDirectoryEntry()") != []
    assert adsi_uses("# [ADSI] and LDAP:// in a comment\nGet-Service") == []
    assert adsi_uses("Get-WmiObject -Class 'Exchange_Mailbox'") == []


@pytest.mark.parametrize(("version", "operation"), SCRIPTS)
def test_no_script_reads_ad_through_adsi(version: ExchangeVersion, operation: str) -> None:
    assert operation in READS | WRITES
    uses = adsi_uses(library(version)[operation].text)
    if (version, operation) in ADSI_WRITES:
        assert uses, "an allowed ADSI write that no longer uses ADSI: drop it from ADSI_WRITES"
    else:
        assert uses == []


class RecordingCatalog:
    """The fake world's catalog, recording each call, with owners that a test may override
    (as if the global catalog said so)."""

    def __init__(self, world: FakeWorld) -> None:
        self.inner = FakeCatalog(world.directory, world.exchange)
        self.calls: list[str] = []
        self.owners: dict[UUID, list[tuple[UUID, str]]] = {}

    def mailbox_owners(self, mailbox_guids: Collection[UUID]) -> dict[UUID, list[tuple[UUID, str]]]:
        self.calls.append("mailbox_owners")
        found = self.inner.mailbox_owners(mailbox_guids)
        found.update((guid, owners) for guid, owners in self.owners.items() if guid in found)
        return found

    def mailbox_stores(self, server: str) -> list[Store]:
        self.calls.append("mailbox_stores")
        return self.inner.mailbox_stores(server)

    def recipients(self, guids: Collection[UUID]) -> dict[UUID, DirectoryEntry]:
        self.calls.append("recipients")
        return self.inner.recipients(guids)

    def extended_rights(self, dn: str, account: str, rights: Collection[UUID]) -> set[UUID]:
        self.calls.append("extended_rights")
        return self.inner.extended_rights(dn, account, rights)


def _exchange(site: Site, catalog: RecordingCatalog) -> WinRmExchange:
    return WinRmExchange(site.configs, catalog=catalog)


@pytest.mark.winrm
def test_2003_stores_and_owners_come_from_the_catalog_not_the_server() -> None:
    world = load(scenario("kb278447", 3, seed=11, version="2003"))
    server = world.exchange.servers()[0].name
    with serve(world) as site:
        catalog = RecordingCatalog(world)
        exchange = _exchange(site, catalog)
        assert exchange.stores(server) == world.exchange.stores(server)
        boxes = exchange.mailboxes(server)
        assert {box.guid: box.owner for box in boxes} == {
            box.guid: box.owner for box in world.exchange.mailboxes(server)
        }
        assert catalog.calls == ["mailbox_stores", "mailbox_owners"]
        # What the catalog says is what the adapter reports: the server was not asked.
        someone = uuid.uuid4()
        catalog.owners = {boxes[0].guid: [(someone, "CN=Someone,DC=corp,DC=example")]}
        assert exchange.mailboxes(server, [boxes[0].guid])[0].owner == someone


@pytest.mark.winrm
@pytest.mark.parametrize("version", ["2003", "2016"])
def test_a_mailbox_two_users_claim_is_refused_naming_both(version: str) -> None:
    world = load(scenario("kb278447", 3, seed=11, version=version))
    server = world.exchange.servers()[0].name
    with serve(world) as site:
        catalog = RecordingCatalog(world)
        box = world.exchange.mailboxes(server)[0]
        catalog.owners = {
            box.guid: [
                (uuid.uuid4(), "CN=One,DC=corp,DC=example"),
                (uuid.uuid4(), "CN=Two,DC=corp,DC=example"),
            ]
        }
        with pytest.raises(PermanentError) as refused:
            _exchange(site, catalog).mailboxes(server, [box.guid])
        message = str(refused.value)
        assert "CN=One,DC=corp,DC=example" in message and "CN=Two,DC=corp,DC=example" in message
        assert "\n" not in message


@pytest.mark.winrm
@pytest.mark.parametrize("version", ["2003", "2016"])
def test_scripts_are_handed_the_names_read_from_ad(engine: Engine, version: str) -> None:
    """Reconnect on 2003 takes each user's sAMAccountName, the 2007+ cmdlets a DN: both as the
    pinned DC has them, passed as parameters (the loopback endpoint finds the users by them, as
    the server would)."""
    doc = scenario("kb278447", 3, seed=11, version=version)
    world = load(doc)
    with serve(world) as site:
        applied = apply_confirmed(
            engine, get_playbook("kb278447"), WinRmWorld(world, site.exchange()), parameters(doc)
        )
        assert applied.state == "done", applied.error
        calls = [
            call
            for host in site.hosts.values()
            for call in host.calls
            if call.operation in ("reconnect", "disable", "update_recipients")
        ]
    assert "reconnect" in {call.operation for call in calls}
    named_guids = [UUID(guid) for call in calls for guid in call.parameters["users"]]
    users = world.directory.read(named_guids, world.directory.writable)
    for call in calls:
        named = [users[UUID(guid)] for guid in call.parameters["users"]]
        assert call.parameters["user_dns"] == [user.dn for user in named]
        if call.operation == "reconnect":
            assert call.parameters["logons"] == [user.sam_account_name for user in named]


@pytest.mark.winrm
def test_a_user_still_mail_enabled_is_refused_before_any_script_runs() -> None:
    world = load(scenario("kb278447", 3, seed=11, version="2003"))
    server = world.exchange.servers()[0].name
    box = next(box for box in world.exchange.mailboxes(server) if box.owner is not None)
    assert box.owner is not None
    with serve(world) as site:
        exchange = _exchange(site, RecordingCatalog(world))
        with pytest.raises(PermanentError, match="still mail-enabled"):
            exchange.reconnect_mailboxes(server, [(box.guid, box.owner)])
        assert [call.operation for call in site.hosts[server].calls] == []
