"""Names that break naive code: quotes, LDAP filter metacharacters, curly quotes, PowerShell
subexpressions and backticks, separators, commas escaped in DNs, 300-character names. Both
playbooks select and repair exactly the intended objects, pass every name through untouched
(changes, journal, LDIF backups) and leave their look-alikes alone."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from uuid import UUID

import pytest
from kb_support import (
    Doc,
    LdifRecord,
    assert_kb278447_end_state,
    assert_kb842101_end_state,
    assert_reports_ambiguous,
    journal,
    ldif_backups,
    load,
    plan_and_apply,
    run_dir,
)

from remediate import Engine
from remediate.model import ExchangeVersion
from remediate.testing import change_keys

BASE_DN = "DC=corp,DC=example"
STAFF = f"OU=Staff,{BASE_DN}"
MIGRATED = f"OU=Migrated,{STAFF}"
MIGRATED_OLD = rf"OU=Migrated\, Old,{STAFF}"  # a look-alike container: its name holds a comma
STORE_DN = (
    "CN=Mailbox Store (EXCH01),CN=First Storage Group,CN=InformationStore,CN=EXCH01,CN=Servers,"
    "CN=First Administrative Group,CN=Administrative Groups,CN=Corp,CN=Microsoft Exchange,"
    f"CN=Services,CN=Configuration,{BASE_DN}"
)
HOME_SERVER = "/o=Corp/ou=First Administrative Group/cn=Configuration/cn=Servers/cn=EXCH01"
RECIPIENTS = "/o=Corp/ou=First Administrative Group/cn=Recipients/cn="
WINDOW = {"created_after": "2026-11-01T10:00:00Z", "created_before": "2026-11-01T12:00:00Z"}
IN_WINDOW, BEFORE_WINDOW, LONG_AGO = (
    "2026-11-01T10:30:00Z",
    "2026-11-01T09:59:00Z",
    "2025-03-01T08:00:00Z",
)
UPGRADED_AT = "2026-10-31T22:00:00Z"

LONG_NAME = ("Hubert Blaine " + "Wolfeschlegelsteinhausenbergerdorff" * 9)[:300]
LONG_SAM = ("hubert.blaine." + "wolfeschlegelsteinhausenbergerdorff" * 9)[:300]
# (cn and displayName, sAMAccountName): every one a legal value somewhere in AD or Exchange, and
# hostile to LDAP filters, PowerShell, CSV, shells or DN parsing.
HOSTILE: tuple[tuple[str, str], ...] = (
    ('O\'Brien, "Smitty"', "o'brien\""),
    ("Star *()\\ Filter", "star*"),
    ("\u2018Curly\u2019 \u201aLow\u201b \u201cDouble\u201d", "\u2018curly\u2019"),
    ("$(Remove-Item C:\\) & $env:USERNAME", "$(ri)"),
    ("`whoami` back`tick", "`whoami`"),
    ("Semi; colon | pipe", "semi;colon|pipe"),
    ("Comma, Then, More", "comma.more"),
    ("#Hash+Plus<Angle>=Equals", "#hash+()\\"),
    ("<Angle first, trailing space ", "angle"),
    (LONG_NAME, LONG_SAM),
)
# Similar names that must not be touched: a curly quote for a straight one, what a wildcard or
# a prefix would catch, a subexpression with one more character.
LOOK_ALIKES: tuple[tuple[str, str], ...] = (
    ("O\u2019Brien, \u201cSmitty\u201d", "o\u2019brien\u201d"),
    ("Star", "star"),
    ("Starling", "starling"),
    ("'Curly' ,Low' \"Double\"", "'curly'"),
    ("$(Remove-Item C:\\) & $env:USERNAME2", "$(ri)2"),
    (LONG_NAME[:299], LONG_SAM[:299]),
)
DEVICE = 'iPhone, "Ann\u2019s" $(1)'
assert len(LONG_NAME) == len(LONG_SAM) == 300


def escape_cn(value: str) -> str:
    """RFC 4514 escaping (as AD writes it), independent of the code under test."""
    escaped = "".join("\\" + char if char in ',+"\\<>;=' else char for char in value)
    if escaped.startswith(("#", " ")):
        escaped = "\\" + escaped
    if escaped.endswith(" "):
        escaped = escaped[:-1] + "\\ "
    return escaped


@dataclass
class WorldBuilder:
    """A ``remediate.world/1`` document, built object by object."""

    version: str
    objects: list[Doc] = field(default_factory=list)
    boxes: list[Doc] = field(default_factory=list)
    serial: int = 0

    def guid(self) -> str:
        self.serial += 1
        return str(UUID(int=self.serial, version=4))

    def add(self, dn: str, object_class: str, created: str, attributes: Doc) -> str:
        guid = self.guid()
        self.objects.append(
            {
                "dn": dn,
                "object_class": object_class,
                "guid": guid,
                "when_created": created,
                "protected": False,
                "attributes": attributes,
            }
        )
        return guid

    def ou(self, name: str, parent: str) -> str:
        dn = f"OU={escape_cn(name)},{parent}"
        self.add(dn, "organizationalUnit", LONG_AGO, {"ou": name})
        return dn

    def user(
        self,
        parent: str,
        name: str,
        sam: str,
        created: str,
        *,
        mailbox: str | None = None,
        guid: str | None = None,
    ) -> Doc:
        """A mail-enabled user whose msExchMailboxGuid is ``mailbox`` (a new GUID if None)."""
        attributes = {
            "sAMAccountName": sam,
            "displayName": name,
            "mailNickname": sam,
            "mail": f"{sam}@corp.example",
            "proxyAddresses": [f"SMTP:{sam}@corp.example"],
            "legacyExchangeDN": RECIPIENTS + sam,
            "homeMDB": STORE_DN,
            "msExchHomeServerName": HOME_SERVER,
            "msExchMailboxGuid": mailbox or self.guid(),
        }
        entry = {
            "dn": f"CN={escape_cn(name)},{parent}",
            "object_class": "user",
            "guid": guid or self.guid(),
            "when_created": created,
            "protected": False,
            "attributes": attributes,
        }
        self.objects.append(entry)
        return entry

    def mailbox(
        self,
        guid: str,
        legacy_dn: str,
        name: str,
        items: int,
        *,
        new: bool = False,
        disconnected_at: str | None = None,
    ) -> list[str]:
        subjects = (
            'Re: "final" $(Get-Date) `date`; rm -rf / | more',
            "\u2018Quoted\u2019 *()\\ 50%, <b>bold</b>",
        )
        mail = [
            {
                "id": f"{'new' if new else 'old'}-{guid}-{n}",
                "folder": "Inbox",
                "subject": subjects[n % 2],
            }
            for n in range(items)
        ]
        self.boxes.append(
            {
                "guid": guid,
                "legacy_dn": legacy_dn,
                "display_name": name,
                "disconnected_at": disconnected_at,
                "items": mail,
            }
        )
        return [item["id"] for item in mail]

    def connected_mailbox(self, user: Doc, items: int, *, new: bool = False) -> list[str]:
        attributes = user["attributes"]
        return self.mailbox(
            attributes["msExchMailboxGuid"],
            attributes["legacyExchangeDN"],
            attributes["displayName"],
            items,
            new=new,
        )

    def document(self, scenario: Doc) -> Doc:
        services = [*ExchangeVersion(self.version).transport_services, "MSExchangeIS"]
        return {
            "format": "remediate.world/1",
            "scenario": scenario,
            "directory": {
                "domain": "corp.example",
                "base_dn": BASE_DN,
                "dcs": [
                    {"name": "DC1", "replication_delay_s": 0},
                    {"name": "DC2", "replication_delay_s": 900},
                ],
                "objects": self.objects,
            },
            "exchange": {
                "servers": [
                    {
                        "name": "EXCH01",
                        "version": self.version,
                        "dc": "DC2",
                        "legacy_dn": HOME_SERVER,
                        "services": dict.fromkeys(services, "running"),
                        "stores": [
                            {
                                "name": "Mailbox Store (EXCH01)",
                                "storage_group": "First Storage Group",
                                "dn": STORE_DN,
                                "mailboxes": self.boxes,
                            }
                        ],
                    }
                ]
            },
        }


# -- kb842101 -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Kb842101World:
    doc: Doc
    users: dict[str, list[Doc]]  # by container: the hostile users created in the window
    below: dict[str, list[str]]  # user GUID -> the GUIDs of the objects below it


def kb842101_world(version: str) -> Kb842101World:
    """The same hostile users in OU=Migrated and in the look-alike OU=Migrated\\, Old, each with
    a mailbox (every other one holding mail), the first with an ActiveSync container and a
    device below it; look-alike users in OU=Migrated created before the window."""
    world = WorldBuilder(version)
    assert world.ou("Staff", BASE_DN) == STAFF
    assert world.ou("Migrated", STAFF) == MIGRATED
    assert world.ou("Migrated, Old", STAFF) == MIGRATED_OLD
    users: dict[str, list[Doc]] = {}
    below: dict[str, list[str]] = {}
    for ou, suffix in ((MIGRATED, ""), (MIGRATED_OLD, ".old")):
        users[ou] = []
        for index, (name, sam) in enumerate(HOSTILE):
            unique = (sam + suffix)[-300:] if suffix else sam  # the long one stays 300 long
            user = world.user(ou, name, unique, IN_WINDOW)
            world.connected_mailbox(user, 3 if index % 2 == 0 else 0)
            users[ou].append(user)
        first = users[ou][0]
        sync = f"CN=ExchangeActiveSyncDevices,{first['dn']}"
        below[first["guid"]] = [
            world.add(sync, "msExchActiveSyncDevices", IN_WINDOW, {}),
            world.add(
                f"CN={escape_cn(DEVICE)},{sync}",
                "msExchActiveSyncDevice",
                IN_WINDOW,
                {"msExchDeviceFriendlyName": DEVICE},
            ),
        ]
    for name, sam in LOOK_ALIKES:
        world.connected_mailbox(world.user(MIGRATED, name, sam, BEFORE_WINDOW), 2)
    return Kb842101World(world.document({"name": "kb842101-hostile"}), users, below)


def kb842101_expected(world: Kb842101World, chosen: Iterable[Doc]) -> Doc:
    chosen = list(chosen)
    deleted = {user["guid"] for user in chosen}
    deleted |= {guid for user in chosen for guid in world.below.get(user["guid"], [])}
    boxes = {
        box["guid"]: box for box in world.doc["exchange"]["servers"][0]["stores"][0]["mailboxes"]
    }
    purged = {user["attributes"]["msExchMailboxGuid"] for user in chosen}
    return {
        "deleted_guids": sorted(deleted),
        "purged_mailboxes": sorted(purged),
        "exported_mailboxes": sorted(g for g in purged if boxes[g]["items"]),
        "untouched_guids": sorted({o["guid"] for o in world.doc["directory"]["objects"]} - deleted),
        "untouched_mailboxes": sorted(set(boxes) - purged),
    }


SCOPES = {
    "ou-and-window": lambda: {"ou": MIGRATED, **WINDOW},
    "ou-with-a-comma": lambda: {"ou": MIGRATED_OLD, **WINDOW},
    "users": lambda: {"users": ",".join(sam for _, sam in HOSTILE), **WINDOW},
}


def assert_dns_in_ldif_are_the_originals(records: list[LdifRecord], dns: set[str]) -> None:
    assert {record.dn for record in records} == dns
    assert any(record.lines[0].base64 for record in records), "no DN needed base64?"


@pytest.mark.parametrize("version", ["2003", "2016"])
@pytest.mark.parametrize("scope", sorted(SCOPES))
def test_kb842101_deletes_exactly_the_hostile_named_users_in_scope(
    engine: Engine, scope: str, version: str
) -> None:
    world = kb842101_world(version)
    params = SCOPES[scope]()
    chosen = world.users[MIGRATED_OLD if scope == "ou-with-a-comma" else MIGRATED]
    want = kb842101_expected(world, chosen)
    done = plan_and_apply(engine, "kb842101", load(world.doc), params)

    assert done.applied.state == "done", done.applied.error
    assert change_keys(done.applied.changes) == change_keys(done.plan.changes)
    assert_kb842101_end_state(done.before, done.world, done.applied, params, want)

    dns = {user["dn"] for user in chosen}
    sams = {user["attributes"]["sAMAccountName"] for user in chosen}
    for result in (done.plan, done.applied):
        deletions = [c for c in result.changes if c.step == "delete-ad-user"]
        assert {c.label for c in deletions} == dns
        exports = [c for c in result.changes if c.step == "export-mail"]
        assert {c.label.rsplit(" (", 1)[1][:-1] for c in exports} <= sams
    records = journal(run_dir(done.applied))
    applied = [r for r in records if r["event"] == "step.applied" and r["step"] == "delete-ad-user"]
    assert {r["label"] for r in applied} == dns
    [discovered] = [r for r in records if r["event"] == "run.discovered"]
    selection = discovered["selection"]
    assert {(u["dn"], u["sam"]) for u in selection["users"]} == {
        (user["dn"], user["attributes"]["sAMAccountName"]) for user in chosen
    }
    everything = {
        o["dn"]
        for o in world.doc["directory"]["objects"]
        if o["guid"] in set(want["deleted_guids"])
    }
    assert_dns_in_ldif_are_the_originals(ldif_backups(run_dir(done.applied)), everything)


# -- kb278447 -------------------------------------------------------------------------------------


def kb278447_world(version: str) -> Doc:
    """Each hostile user connected to a blank mailbox (new mail in it) while his original,
    matched by legacy DN, is disconnected; healthy look-alikes (one of them with an orphaned
    mailbox carrying its legacy DN), and an ambiguous user with a hostile name."""
    world = WorldBuilder(version)
    world.ou("Staff", BASE_DN)
    affected: list[Doc] = []
    for index, (name, sam) in enumerate(HOSTILE):
        blank = world.guid()
        user = world.user(STAFF, name, sam, LONG_AGO, mailbox=blank)
        old = world.mailbox(
            user["guid"], RECIPIENTS + sam, name, 3 + index % 3, disconnected_at=UPGRADED_AT
        )
        new = world.connected_mailbox(user, 1 + index % 2, new=True)
        affected.append(
            {
                "user": user["guid"],
                "original": user["guid"],
                "blank": blank,
                "old_items": len(old),
                "new_items": len(new),
            }
        )
    healthy: list[str] = []
    for name, sam in LOOK_ALIKES:
        guid = world.guid()
        user = world.user(STAFF, name, sam, LONG_AGO, mailbox=guid, guid=guid)
        world.connected_mailbox(user, 4)
        healthy.append(guid)
    curly = LOOK_ALIKES[0]
    world.mailbox(world.guid(), RECIPIENTS + curly[1], curly[0], 2, disconnected_at=UPGRADED_AT)
    blank = world.guid()
    name = 'Ambiguous, "Amb" \u2018Q\u2019 $(x) `y`'
    user = world.user(STAFF, name, "amb\u2018q\u2019", LONG_AGO, mailbox=blank)
    world.connected_mailbox(user, 1, new=True)
    for _ in range(2):
        world.mailbox(
            world.guid(),
            user["attributes"]["legacyExchangeDN"],
            name,
            5,
            disconnected_at=UPGRADED_AT,
        )
    return world.document(
        {
            "name": "kb278447-hostile",
            "parameters": {},
            "expected": {
                "affected": affected,
                "healthy_guids": healthy,
                "ambiguous_guids": [user["guid"]],
            },
        }
    )


@pytest.mark.parametrize("version", ["2000", "2003", "2016"])
def test_kb278447_reconnects_exactly_the_hostile_named_users(engine: Engine, version: str) -> None:
    doc = kb278447_world(version)
    want: Doc = doc["scenario"]["expected"]
    done = plan_and_apply(engine, "kb278447", load(doc), {})

    assert done.applied.state == "done", done.applied.error
    assert change_keys(done.applied.changes) == change_keys(done.plan.changes)
    assert_kb278447_end_state(done.before, done.world, done.applied, want)
    assert_reports_ambiguous(done.plan.findings, done.before, want)

    objects = {o["guid"]: o for o in doc["directory"]["objects"]}
    dns = {objects[case["user"]]["dn"] for case in want["affected"]}
    stripped = [c for c in done.applied.changes if c.step == "remove-exchange-attributes"]
    assert {c.label for c in stripped} == dns
    reconnected = [c for c in done.applied.changes if c.step == "reconnect-mailbox"]
    # Each label names the user's DN, then (in parentheses) what an approver checks.
    assert {c.label.split(" -> ", 1)[1].split(" (user ", 1)[0] for c in reconnected} == dns
    records = journal(run_dir(done.applied))
    labels = {
        r["label"]
        for r in records
        if r["event"] == "step.applied" and r["step"] == "remove-exchange-attributes"
    }
    assert labels == dns
    [discovered] = [r for r in records if r["event"] == "run.discovered"]
    assert {(u["dn"], u["sam"]) for u in discovered["selection"]["users"]} == {
        (objects[c["user"]]["dn"], objects[c["user"]]["attributes"]["sAMAccountName"])
        for c in want["affected"]
    }
    assert_dns_in_ldif_are_the_originals(ldif_backups(run_dir(done.applied)), dns)


def test_hostile_names_round_trip_through_the_world_file(tmp_path: Path) -> None:
    """The worlds above are what the tests think they are: every name arrives as written."""
    doc = kb278447_world("2003")
    world = load(doc)
    for entry in doc["directory"]["objects"]:
        [seen] = world.directory.read([UUID(entry["guid"])], "DC1").values()
        assert seen.dn == entry["dn"]
        assert seen.attributes == entry["attributes"]
