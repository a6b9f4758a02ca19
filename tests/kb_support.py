"""What the playbook tests share: worlds as JSON, run directories, an LDIF reader, and the end
state each KB promises, checked against the world (not against the code that repaired it)."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any, NamedTuple
from uuid import UUID

from ldap3.utils.dn import parse_dn

from remediate import Engine, Finding, RunResult, get_playbook
from remediate.fakes import FakeWorld, world_from_json, world_to_json
from remediate.fakes.scenarios import SCENARIOS
from remediate.model import (
    GUID_ATTRIBUTES,
    MAILBOX_TYPE_ATTRIBUTES,
    RECIPIENT_SETTINGS,
    ExchangeVersion,
    MailItem,
    utc,
)
from remediate.steps.ad import cleared_attributes
from remediate.testing import apply_confirmed

Doc = dict[str, Any]
KBS = ("kb842101", "kb278447")


# -- worlds ---------------------------------------------------------------------------------------


@cache
def _scenario_text(name: str, size: int, seed: int, version: str, servers: int | None) -> str:
    return json.dumps(SCENARIOS[name](size, seed, version=version, servers=servers))


def scenario(
    name: str, size: int, *, seed: int = 1, version: str = "2003", servers: int | None = None
) -> Doc:
    """A fresh copy of a scenario's world document (built once per arguments)."""
    doc: Doc = json.loads(_scenario_text(name, size, seed, version, servers))
    return doc


def load(doc: Doc) -> FakeWorld:
    """A fake world from a document (the document is not shared with it)."""
    return world_from_json(json.loads(json.dumps(doc)))


def snapshot(world: FakeWorld) -> Doc:
    """The world's whole state as plain JSON, shared with nothing."""
    doc: Doc = json.loads(json.dumps(world_to_json(world)))
    return doc


def json_object(value: object) -> Doc:
    """A JSON object whose shape the test knows, to read by key: the library types documents
    as JSON values, which a test would otherwise narrow at every step."""
    assert isinstance(value, dict), f"not a JSON object: {value!r}"
    return value


def parameters(doc: Doc) -> dict[str, str]:
    return {str(k): str(v) for k, v in doc["scenario"]["parameters"].items()}


def scenario_parameters(world: FakeWorld) -> dict[str, str]:
    """The parameters the scenario builder that made the world chose."""
    return parameters({"scenario": json_object(world.scenario)})


def expected(doc: Doc) -> Doc:
    block: Doc = doc["scenario"]["expected"]
    return block


def live_objects(doc: Doc) -> dict[str, Doc]:
    return {entry["guid"]: entry for entry in doc["directory"]["objects"]}


def tombstones(doc: Doc) -> dict[str, Doc]:
    return {entry["guid"]: entry for entry in doc["directory"].get("tombstones", [])}


class Mailbox(NamedTuple):
    server: str
    store_dn: str
    box: Doc


def mailboxes(doc: Doc) -> dict[str, Mailbox]:
    return {
        box["guid"]: Mailbox(server["name"], store["dn"], box)
        for server in doc["exchange"]["servers"]
        for store in server["stores"]
        for box in store["mailboxes"]
    }


def services(doc: Doc) -> dict[str, dict[str, str]]:
    return {server["name"]: server["services"] for server in doc["exchange"]["servers"]}


def attribute(entry: Doc, name: str) -> Any:
    """An attribute of an object document, by name case-insensitively (as LDAP compares)."""
    for key, value in entry["attributes"].items():
        if key.lower() == name.lower():
            return value
    return None


def mailbox_guid(entry: Doc) -> str | None:
    value = attribute(entry, "msExchMailboxGuid")
    return str(UUID(value)) if value else None


# -- DNs, read with ldap3 (independently of remediate.dn) -----------------------------------------


def rdns(dn: str) -> list[tuple[str, str]]:
    return [(kind.lower(), value.lower()) for kind, value, _ in parse_dn(dn)]


def is_below(dn: str, base: str) -> bool:
    """``dn`` is strictly below ``base`` (both escaped the same way, as in our worlds)."""
    inner, outer = rdns(dn), rdns(base)
    return len(inner) > len(outer) and inner[len(inner) - len(outer) :] == outer


# -- run directories ------------------------------------------------------------------------------


def run_dir(result: RunResult) -> Path:
    assert result.run_dir is not None, f"{result.mode} has no run directory"
    return Path(result.run_dir)


def journal(directory: Path) -> list[Doc]:
    """Every line of the run's journal, each one a JSON object."""
    lines = (directory / "journal.jsonl").read_text(encoding="utf-8").splitlines()
    records = [json.loads(line) for line in lines]
    assert all(isinstance(record, dict) for record in records)
    return records


def mail_exports(directory: Path) -> dict[str, Doc]:
    """The run's mail exports by mailbox GUID, read from their files."""
    found: dict[str, Doc] = {}
    for path in sorted((directory / "backups" / "mail").glob("**/*.json")):
        export: Doc = json.loads(path.read_text(encoding="utf-8"))
        assert export["mailbox"] not in found, f"two exports of {export['mailbox']}"
        found[export["mailbox"]] = export
    return found


# -- LDIF (RFC 2849) ------------------------------------------------------------------------------


@dataclass(frozen=True)
class LdifLine:
    name: str
    raw: bytes
    base64: bool


@dataclass(frozen=True)
class LdifRecord:
    lines: tuple[LdifLine, ...]

    @property
    def dn(self) -> str:
        first = self.lines[0]
        assert first.name == "dn", f"a record starts with {first.name}, not dn"
        return first.raw.decode("utf-8")

    def values(self, name: str) -> list[bytes]:
        return [line.raw for line in self.lines[1:] if line.name.lower() == name.lower()]

    def attributes(self) -> dict[str, list[str]]:
        """Every attribute but the operational ones the backup adds, decoded."""
        result: dict[str, list[str]] = {}
        for line in self.lines[1:]:
            if line.name in (
                "objectClass",
                "objectGUID",
                "whenCreated",
                "whenChanged",
                "uSNChanged",
            ):
                continue
            if line.name.lower() in GUID_ATTRIBUTES:  # written as AD holds it: 16 bytes
                text = str(UUID(bytes_le=line.raw))
            else:
                text = line.raw.decode("utf-8")
            result.setdefault(line.name, []).append(text)
        return result


def needs_base64(raw: bytes) -> bool:
    """Whether RFC 2849 requires the value base64-encoded: it is not a SAFE-STRING (or it ends
    with a space, which the RFC says SHOULD be encoded)."""
    if not raw:
        return False
    unsafe_first = raw[0] in (0x00, 0x0A, 0x0D, 0x20, 0x3A, 0x3C) or raw[0] >= 0x80
    unsafe_any = any(byte in (0x00, 0x0A, 0x0D) or byte >= 0x80 for byte in raw)
    return unsafe_first or unsafe_any or raw.endswith(b" ")


def parse_ldif(text: str) -> list[LdifRecord]:
    """A small RFC 2849 reader: folded lines, ``name: value``, ``name:: base64``."""
    logical: list[str] = []
    for line in text.split("\n"):
        if line.startswith(" ") and logical and logical[-1]:
            logical[-1] += line[1:]
        else:
            logical.append(line)
    records: list[LdifRecord] = []
    current: list[LdifLine] = []
    for logical_line in [*logical, ""]:
        line = logical_line
        if not line:
            if current:
                records.append(LdifRecord(tuple(current)))
                current = []
            continue
        if current and line.startswith("# "):
            line = line[2:]  # what AD owns (objectGUID, ...): kept in a comment an import skips
        elif line.startswith("#") or (not current and line.startswith("version:")):
            continue
        if current and (line == "-" or line.startswith(("changetype:", "replace:"))):
            continue  # a change record's structure; its values follow as lines
        name, sep, rest = line.partition(":")
        assert sep, f"not an LDIF line: {line!r}"
        if rest.startswith(":"):
            current.append(LdifLine(name, base64.b64decode(rest[1:].strip(), validate=True), True))
        else:
            assert not rest.startswith("<"), "URL values are not expected in a backup"
            current.append(LdifLine(name, rest.lstrip(" ").encode("utf-8"), False))
    return records


def ldif_backups(directory: Path) -> list[LdifRecord]:
    """Every record of the run's LDIF backups; the files are pure ASCII as RFC 2849 wants."""
    records: list[LdifRecord] = []
    for path in sorted((directory / "backups" / "ad").glob("*.ldif")):
        raw = path.read_bytes()
        assert raw.isascii(), f"{path.name} holds non-ASCII bytes outside base64"
        records += parse_ldif(raw.decode("ascii"))
    return records


def assert_ldif_encodes_as_rfc_2849_requires(records: Iterable[LdifRecord]) -> None:
    for record in records:
        for line in record.lines:
            if needs_base64(line.raw):
                assert line.base64, f"{line.name} of {record.dn!r} must be base64: {line.raw!r}"


def assert_backups_hold_the_objects(records: Sequence[LdifRecord], objects: Iterable[Doc]) -> None:
    """Each object backed up once per batch with its DN, GUID, class and every attribute."""
    wanted = {entry["dn"]: entry for entry in objects}
    by_dn: dict[str, LdifRecord] = {}
    for record in records:
        by_dn.setdefault(record.dn, record)
    assert set(by_dn) == set(wanted)
    for dn, entry in wanted.items():
        record = by_dn[dn]
        assert record.values("objectGUID") == [UUID(entry["guid"]).bytes_le]
        assert record.values("objectClass") == [entry["object_class"].encode("utf-8")]
        original = {
            name: value if isinstance(value, list) else [value]
            for name, value in entry["attributes"].items()
        }
        assert record.attributes() == original
    assert_ldif_encodes_as_rfc_2849_requires(records)


def assert_strip_backups_hold_what_it_cleared(
    records: Sequence[LdifRecord], objects: Iterable[Doc], version: ExchangeVersion
) -> None:
    """Each stripped user backed up (first record) with its GUID and every attribute the strip
    clears, with its values as AD holds them (GUIDs as their 16 bytes, binary as it is)."""
    wanted = {entry["dn"]: entry for entry in objects}
    by_dn: dict[str, LdifRecord] = {}
    for record in records:
        by_dn.setdefault(record.dn, record)
    assert set(by_dn) == set(wanted)
    for dn, entry in wanted.items():
        record = by_dn[dn]
        assert record.values("objectGUID") == [UUID(entry["guid"]).bytes_le]
        binary = entry.get("binary", {})
        for name in cleared_attributes(version):
            value = attribute(entry, name)
            held = [] if value is None else [value] if isinstance(value, str) else value
            if name.lower() in GUID_ATTRIBUTES:
                expected = [UUID(text).bytes_le for text in held]
            else:
                expected = [text.encode("utf-8") for text in held]
            expected += [
                base64.b64decode(v)
                for k, vs in binary.items()
                if k.lower() == name.lower()
                for v in vs
            ]
            assert sorted(record.values(name)) == sorted(expected), f"{name} of {dn}"
    assert_ldif_encodes_as_rfc_2849_requires(records)


# -- running a playbook ---------------------------------------------------------------------------


@dataclass
class Repair:
    """A plan, its apply and the world around them."""

    before: Doc
    plan: RunResult
    applied: RunResult
    world: FakeWorld


def plan_and_apply(
    engine: Engine, name: str, world: FakeWorld, params: Mapping[str, str]
) -> Repair:
    before = snapshot(world)
    playbook = get_playbook(name)
    plan = engine.plan(playbook, world, params)
    applied = apply_confirmed(engine, playbook, world, params)
    return Repair(before, plan, applied, world)


# -- kb842101: the end state ----------------------------------------------------------------------


def kb842101_selection(doc: Doc, params: Mapping[str, str]) -> set[str]:
    """What the parameters select, read from the world itself: the users, and every object below
    them."""
    objects = live_objects(doc).values()
    wanted = (
        {name.strip().lower() for name in params["users"].split(",")} if "users" in params else None
    )
    after = utc(params["created_after"]) if "created_after" in params else None
    before = utc(params["created_before"]) if "created_before" in params else None
    users = []
    for entry in objects:
        created = utc(entry["when_created"])
        if entry["object_class"] != "user":
            continue
        if "ou" in params and not is_below(entry["dn"], params["ou"]):
            continue
        if (after and created < after) or (before and created > before):
            continue
        if wanted is not None and str(attribute(entry, "sAMAccountName")).lower() not in wanted:
            continue
        users.append(entry)
    below = {e["guid"] for e in objects for user in users if is_below(e["dn"], user["dn"])}
    return {user["guid"] for user in users} | below


def assert_kb842101_end_state(
    before: Doc, world: FakeWorld, applied: RunResult, params: Mapping[str, str], want: Doc
) -> None:
    """Every selected object gone on every DC, its mailbox gone from every store, mail exported,
    LDIF written, and nothing else changed."""
    after = snapshot(world)
    old_objects, new_objects = live_objects(before), live_objects(after)
    deleted = kb842101_selection(before, params)
    assert deleted == set(want["deleted_guids"])
    assert "pending" not in after["directory"], "replication has not converged"
    for dc in world.directory.domain_controllers():
        guids = [UUID(guid) for guid in deleted]
        assert world.directory.read(guids, dc) == {}, f"{dc} still shows selected objects"
        stones = world.directory.read(guids, dc, include_deleted=True)
        assert {str(g) for g, e in stones.items() if e.deleted} == deleted, f"tombstones on {dc}"
    assert set(tombstones(after)) == deleted
    kept = set(old_objects) - deleted
    assert set(new_objects) == kept
    assert set(want["untouched_guids"]) <= kept
    for guid in kept:
        assert new_objects[guid] == old_objects[guid], f"{old_objects[guid]['dn']} changed"

    old_boxes, new_boxes = mailboxes(before), mailboxes(after)
    purged = {box for g in deleted if (box := mailbox_guid(old_objects[g])) in old_boxes}
    assert purged == set(want["purged_mailboxes"])
    assert set(new_boxes) == set(old_boxes) - purged
    assert set(want["untouched_mailboxes"]) <= set(new_boxes)
    for guid, home in new_boxes.items():
        assert home == old_boxes[guid], f"mailbox {guid} changed"
    for server in world.exchange.servers():
        assert world.exchange.mailboxes(server.name, [UUID(g) for g in purged]) == []

    held_items = {guid for guid in purged if old_boxes[guid].box["items"]}
    assert held_items == set(want["exported_mailboxes"])
    exports = mail_exports(run_dir(applied))
    assert set(exports) == held_items
    for guid in held_items:
        assert exports[guid]["server"] == old_boxes[guid].server
        assert exports[guid]["items"] == old_boxes[guid].box["items"]

    assert_backups_hold_the_objects(
        ldif_backups(run_dir(applied)), [old_objects[guid] for guid in deleted]
    )
    assert services(after) == services(before)


# -- kb278447: the end state ----------------------------------------------------------------------


def kb278447_matches(doc: Doc, max_blank_items: int = 100) -> tuple[dict[str, str], set[str]]:
    """Read from the world itself: user -> original mailbox for each affected user (connected to
    another, near-empty mailbox; exactly one disconnected mailbox is his by legacy DN, or else by
    his objectGUID), and the users with more than one candidate."""
    boxes = mailboxes(doc)
    affected: dict[str, str] = {}
    ambiguous: set[str] = set()
    for user in live_objects(doc).values():
        current = mailbox_guid(user) if user["object_class"] == "user" else None
        if current is None or current not in boxes or current == user["guid"]:
            continue
        if boxes[current].box["disconnected_at"] is not None:
            continue
        legacy = str(attribute(user, "legacyExchangeDN") or "").lower()
        candidates = [
            guid
            for guid, home in boxes.items()
            if home.box["disconnected_at"] is not None
            and legacy
            and home.box["legacy_dn"].lower() == legacy
        ]
        own = boxes.get(user["guid"])
        if not candidates and own is not None and own.box["disconnected_at"] is not None:
            candidates = [user["guid"]]
        if len(candidates) > 1:
            candidates = [guid for guid in candidates if guid == user["guid"]] or candidates
        if len(candidates) > 1:
            ambiguous.add(user["guid"])
        elif candidates and len(boxes[current].box["items"]) <= max_blank_items:
            affected[user["guid"]] = candidates[0]
    return affected, ambiguous


def assert_kb278447_end_state(before: Doc, world: FakeWorld, applied: RunResult, want: Doc) -> None:
    """Each affected user connected on every DC to his original mailbox, which holds his old
    items and the ones that reached the blank mailbox; everyone and everything else untouched;
    services as they were."""
    after = snapshot(world)
    old_objects, new_objects = live_objects(before), live_objects(after)
    old_boxes, new_boxes = mailboxes(before), mailboxes(after)
    cases = {case["user"]: case for case in want["affected"]}
    matches, ambiguous = kb278447_matches(before)
    assert matches == {user: case["original"] for user, case in cases.items()}
    assert ambiguous == set(want["ambiguous_guids"])
    assert "pending" not in after["directory"], "replication has not converged"
    assert tombstones(after) == {}
    dcs = world.directory.domain_controllers()
    exports = mail_exports(run_dir(applied))
    for guid, case in cases.items():
        original, blank = old_boxes[case["original"]], old_boxes[case["blank"]]
        user = UUID(guid)
        for dc in dcs:
            entry = world.directory.read([user], dc)[user]
            assert entry.mailbox_guid == UUID(case["original"]), f"{entry.dn} on {dc}"
            assert entry.get("homeMDB") == original.store_dn
        old, new = old_objects[guid], new_objects[guid]
        assert new["dn"] == old["dn"]
        for name in (
            "sAMAccountName",
            "displayName",
            "userPrincipalName",
            "mailNickname",
            "msExchHomeServerName",
        ):
            assert attribute(new, name) == attribute(old, name), f"{name} of {old['dn']}"
        assert attribute(new, "legacyExchangeDN") == original.box["legacy_dn"]
        assert_recipient_restored(old, new)
        [info] = world.exchange.mailboxes(original.server, [UUID(case["original"])])
        assert info.owner == user
        assert not info.disconnected
        items = new_boxes[case["original"]].box["items"]
        assert len(items) == case["old_items"] + case["new_items"]
        assert items == original.box["items"] + blank.box["items"]
        assert new_boxes[case["blank"]].box["items"] == blank.box["items"]
        assert exports[case["blank"]]["items"] == blank.box["items"]
    assert set(exports) == {case["blank"] for case in cases.values()}

    untouched = set(old_objects) - set(cases)
    assert set(want["healthy_guids"]) | set(want["ambiguous_guids"]) <= untouched
    assert set(new_objects) == set(old_objects)
    for guid in untouched:
        assert new_objects[guid] == old_objects[guid], f"{old_objects[guid]['dn']} changed"
    repaired = {case[key] for case in cases.values() for key in ("original", "blank")}
    assert set(new_boxes) == set(old_boxes)
    for guid in set(old_boxes) - repaired:
        assert new_boxes[guid] == old_boxes[guid], f"mailbox {guid} changed"
    for guid in (case["blank"] for case in cases.values()):
        assert new_boxes[guid].box["disconnected_at"] is not None, f"blank {guid} connected"

    assert_strip_backups_hold_what_it_cleared(
        ldif_backups(run_dir(applied)),
        [old_objects[guid] for guid in cases],
        ExchangeVersion(before["exchange"]["servers"][0]["version"]),
    )
    assert services(after) == services(before)
    if "services" in want:
        assert services(after) == want["services"]


def values(entry: Doc, name: str) -> list[str]:
    """An attribute's values in order (LDAP tells one value from a list of one apart no more
    than it keeps an order)."""
    value = attribute(entry, name)
    return sorted([] if value is None else [value] if isinstance(value, str) else value)


def assert_recipient_restored(old: Doc, new: Doc) -> None:
    """The user comes back whole: his addresses (the old primary still primary, plus an X500 of
    the legacyExchangeDN he had where the reconnect changed it), his recipient settings, mailbox
    type and archive, and his binary attributes (mailbox rights, linked master account)."""
    where = old["dn"]
    addresses = list(attribute(old, "proxyAddresses") or [])
    if attribute(new, "legacyExchangeDN") != attribute(old, "legacyExchangeDN"):
        addresses.append(f"X500:{attribute(old, 'legacyExchangeDN')}")
    assert sorted(attribute(new, "proxyAddresses") or []) == sorted(addresses), where
    assert attribute(new, "mail") == attribute(old, "mail"), where
    for name in (*RECIPIENT_SETTINGS, "showInAddressBook"):
        assert values(new, name) == values(old, name), f"{name} of {where}"
    # Where the world left them out, Connect-Mailbox sets a type and a 2000 re-home a homeMTA.
    for name in (*MAILBOX_TYPE_ATTRIBUTES, "homeMTA"):
        if values(old, name):
            assert values(new, name) == values(old, name), f"{name} of {where}"
    assert new.get("binary") == old.get("binary"), f"binary attributes of {where}"


def assert_reports_ambiguous(findings: Sequence[Finding], before: Doc, want: Doc) -> None:
    objects = live_objects(before)
    reported = {f.target for f in findings if f.kind == "ambiguous"}
    assert reported == {objects[guid]["dn"] for guid in want["ambiguous_guids"]}


def assert_mail_reaches_the_original_mailbox(world: FakeWorld, before: Doc, want: Doc) -> None:
    """Transport runs again and new mail for an affected user lands in his original mailbox."""
    objects, boxes = live_objects(before), mailboxes(before)
    for case in want["affected"]:
        legacy = str(attribute(objects[case["user"]], "legacyExchangeDN"))
        server = boxes[case["original"]].server
        item = MailItem(f"after-repair-{case['user']}", "Inbox", "after the repair")
        assert world.deliver(server, legacy, item) == "delivered"
        [info] = world.exchange.mailboxes(server, [UUID(case["original"])])
        assert info.item_ids is not None and item.id in info.item_ids
