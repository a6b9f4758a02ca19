"""kb278447 gives each user back what the strip removed: the plan shows every attribute the strip
clears and what the restore brings back, Connect-Mailbox takes the user's parameter set and
archive, an Exchange 2000 re-home is whole, and the verification names what differs."""

from __future__ import annotations

import base64
from datetime import UTC, datetime
from pathlib import Path
from uuid import UUID, uuid4

import pytest
from kb_support import (
    assert_recipient_restored,
    attribute,
    expected,
    live_objects,
    load,
    plan_and_apply,
    scenario,
    snapshot,
)

from remediate import Engine, get_playbook
from remediate.engine.backups import DirectoryBackups, MemoryBackups
from remediate.engine.changes import NoOp, Planned, WouldFail
from remediate.fakes import world_from_json, world_to_json
from remediate.fakes.policy import policy_addresses
from remediate.fakes.scenarios import DOMAIN, KB278447_WINDOW, ORGANISATION, kb278447
from remediate.model import DirectoryEntry, ExchangeVersion, MailboxInfo
from remediate.playbooks.kb278447 import STRIPPED_BEFORE_RUN
from remediate.playbooks.kb278447_evidence import NOT_RESTORED
from remediate.steps.ad import cleared_attributes
from remediate.steps.exchange import rehome_attributes
from remediate.steps.recipient import (
    STRIP_RECORD,
    RecipientObservation,
    RecipientTarget,
    RestoreRecipient,
    VerifyRecipient,
    differences,
)
from remediate.steps.targets import ReconnectTarget, UserTarget

WHEN = datetime(2026, 11, 1, tzinfo=UTC)
STORE = (
    "CN=Mailbox Store (EXCH02),CN=First Storage Group,CN=InformationStore,CN=EXCH02,"
    "CN=Servers,CN=First Administrative Group,CN=Administrative Groups,CN=Corp,"
    "CN=Microsoft Exchange,CN=Services,CN=Configuration,DC=corp,DC=example"
)


def _user(**attributes: str | list[str]) -> DirectoryEntry:
    return DirectoryEntry(
        UUID(int=7),
        "CN=Ann,OU=Staff,DC=corp,DC=example",
        "user",
        WHEN,
        WHEN,
        1,
        attributes=dict(attributes),
    )


def _as_list(value: object) -> list[str]:
    """A multi-valued attribute as a change carries it: absent, one value, or a list."""
    values = [] if value is None else value if isinstance(value, list) else [value]
    return [str(v) for v in values]


@pytest.mark.parametrize("version", ["2003", "2016"])
def test_the_plan_lists_every_attribute_the_strip_clears_and_what_the_restore_brings_back(
    engine: Engine, version: str
) -> None:
    doc = scenario("kb278447", 6, version=version)
    objects = live_objects(doc)
    plan = engine.plan(get_playbook("kb278447"), load(doc), {})
    strips = [c for c in plan.changes if c.step == "remove-exchange-attributes"]
    assert len(strips) == 6
    for change in strips:
        user = objects[change.target.removeprefix("user:")]
        held = [
            n
            for n in cleared_attributes(ExchangeVersion(version))
            if attribute(user, n) is not None or n in user.get("binary", {})
        ]
        assert isinstance(change.before, dict) and isinstance(change.after, dict)
        assert sorted(change.before) == sorted(held)
        assert change.after == dict.fromkeys(held)
        assert sorted(_as_list(change.before["proxyAddresses"])) == sorted(
            attribute(user, "proxyAddresses")
        )
    restores = {c.target: c for c in plan.changes if c.step == "restore-recipient"}
    assert len(restores) == 6
    for key, change in restores.items():
        user = objects[key.removeprefix("user:")]
        assert isinstance(change.after, dict)
        back = set(_as_list(change.after["proxyAddresses"]))
        had = set(attribute(user, "proxyAddresses"))
        # plus an X500 of the legacyExchangeDN where the reconnect changed it
        assert had <= back and back - had <= {f"X500:{attribute(user, 'legacyExchangeDN')}"}
        assert change.after.get("mail", attribute(user, "mail")) == attribute(user, "mail")


def test_connect_mailbox_takes_each_users_parameter_set_and_archive(engine: Engine) -> None:
    """On 2016 the restore never has to write a shared, room or equipment type nor an archive
    (Connect-Mailbox's -Shared/-Room/-Equipment/-Archive did): only a linked mailbox's."""
    doc = scenario("kb278447", 14, version="2016")
    objects = live_objects(doc)
    done = plan_and_apply(engine, "kb278447", load(doc), {})
    assert done.applied.state == "done", done.applied.error
    restored = {
        c.target.removeprefix("user:"): c
        for c in done.applied.changes
        if c.step == "restore-recipient"
    }
    kinds = {guid: attribute(objects[guid], "msExchRecipientTypeDetails") for guid in restored}
    assert {"4", "16", "32", "2"} <= set(kinds.values())
    for guid, change in restored.items():
        assert isinstance(change.after, dict)
        typed = "msExchRecipientTypeDetails" in change.after
        assert typed == (kinds[guid] == "2"), objects[guid]["dn"]
        assert "msExchArchiveGUID" not in change.after
    archived = [g for g, o in objects.items() if attribute(o, "msExchArchiveGUID")]
    assert archived
    for guid in archived:
        [entry] = done.world.directory.read([UUID(guid)], "DC1").values()
        assert entry.get("msExchArchiveGUID") == attribute(objects[guid], "msExchArchiveGUID")


def test_an_exchange_2000_rehome_keeps_the_alias_and_names_the_originals_server_and_mta() -> None:
    recorded = _user(
        mailNickname="ann.custom",
        msExchHomeServerName="/o=Corp/ou=First Administrative Group/cn=Configuration"
        "/cn=Servers/cn=EXCH01",
    )
    stripped = _user(sAMAccountName="ann")
    target = ReconnectTarget(
        "EXCH02",
        "2000",
        STORE,
        uuid4(),
        stripped.guid,
        stripped.dn,
        recorded.get("msExchHomeServerName") or "",
    )
    box = MailboxInfo(
        target.mailbox, "EXCH02", STORE, "/o=Corp/ou=X/cn=Recipients/cn=ann", "Ann", None, (), None
    )
    written = rehome_attributes(target, box, stripped, recorded)
    assert written["mailNickname"] == "ann.custom"
    assert written["homeMTA"] == "CN=Microsoft MTA," + STORE.split(",CN=InformationStore,")[1]
    assert written["msExchHomeServerName"] == (
        "/o=Corp/ou=First Administrative Group/cn=Configuration/cn=Servers/cn=EXCH02"
    )


def test_a_changed_legacy_dn_gets_an_x500_of_the_former_one_and_the_primary_stays() -> None:
    recorded = _user(
        legacyExchangeDN="/o=Corp/ou=Old/cn=Recipients/cn=ann",
        proxyAddresses=["SMTP:ann.own@corp.example", "smtp:ann@corp.example"],
        mail="ann.own@corp.example",
        homeMDB=STORE,
    )
    now = _user(
        legacyExchangeDN="/o=Corp/ou=New/cn=Recipients/cn=ann",
        proxyAddresses=["SMTP:ann@corp.example"],
        mail="ann@corp.example",
        homeMDB=STORE,
    )
    differ = differences(now, recorded, ExchangeVersion.E2003)
    assert differ["proxyAddresses"][1] == tuple(
        sorted(
            [
                "SMTP:ann.own@corp.example",
                "smtp:ann@corp.example",
                "X500:/o=Corp/ou=Old/cn=Recipients/cn=ann",
            ]
        )
    )
    assert differ["mail"][1] == ("ann.own@corp.example",)
    assert "legacyExchangeDN" not in differ


def test_verify_names_every_attribute_that_differs_from_before_the_strip() -> None:
    recorded = _user(
        proxyAddresses=["SMTP:ann@corp.example", "smtp:a@old.corp.example"],
        mail="ann@corp.example",
        msExchHideFromAddressLists="TRUE",
    )
    now = _user(proxyAddresses=["SMTP:ann@corp.example"], mail="ann@corp.example")
    target = RecipientTarget(UserTarget(now.guid, now.dn, "ann"), "EXCH01", ExchangeVersion.E2016)
    verdict = VerifyRecipient([target]).plan(target, RecipientObservation(now, recorded))
    assert isinstance(verdict, WouldFail)
    assert "proxyAddresses" in verdict.reason and "msExchHideFromAddressLists" in verdict.reason
    assert "mail" not in verdict.reason.replace("corp.example", "")
    same = VerifyRecipient([target]).plan(target, RecipientObservation(recorded, recorded))
    assert isinstance(same, NoOp)


def test_a_resumed_run_reads_the_record_the_strip_wrote(tmp_path: Path) -> None:
    """What the strip backed up is read back by a new process's backups (a resumed run), as
    the rehearsal read it from memory: the same entry, binary values and absences included."""
    entry = _user(
        proxyAddresses=["SMTP:ann@corp.example", "X500:/o=Corp/cn=ann"],
        mail="ann@corp.example",
        msExchMailboxGuid=str(uuid4()),
    )
    entry.binary = {"msExchMailboxSecurityDescriptor": (b"\x01\x00\x04\x80\xff",)}
    names = cleared_attributes(ExchangeVersion.E2016)
    DirectoryBackups(tmp_path).save_cleared_attributes(STRIP_RECORD, [entry], names)
    memory = MemoryBackups()
    memory.save_cleared_attributes(STRIP_RECORD, [entry], names)
    [read] = DirectoryBackups(tmp_path).recorded(STRIP_RECORD, [entry.guid]).values()
    [rehearsed] = memory.recorded(STRIP_RECORD, [entry.guid]).values()
    assert read == rehearsed
    assert read.get_binary("msExchMailboxSecurityDescriptor") == (b"\x01\x00\x04\x80\xff",)
    assert read.attributes["proxyAddresses"] == ["SMTP:ann@corp.example", "X500:/o=Corp/cn=ann"]
    assert read.get("msExchMailboxGuid") == entry.get("msExchMailboxGuid")
    assert read.attributes["altRecipient"] == []  # recorded as not held


def test_binary_attributes_survive_a_world_file_and_a_strip_clears_them() -> None:
    doc = scenario("kb278447", 3, version="2016")
    world = load(doc)
    again = world_from_json(world_to_json(world))
    with_rights = [o for o in live_objects(doc).values() if o.get("binary")]
    assert with_rights
    for obj in with_rights:
        guid = UUID(obj["guid"])
        [entry] = again.directory.read([guid], "DC1").values()
        assert {
            k: [base64.b64encode(v).decode() for v in vs] for k, vs in entry.binary.items()
        } == obj["binary"]
        world.directory.modify(guid, dict.fromkeys(cleared_attributes(ExchangeVersion.E2016)))
        [stripped] = world.directory.read([guid], "DC1").values()
        assert not stripped.binary


def test_without_a_record_a_user_stripped_before_the_run_is_left_alone_a_lost_one_fails() -> None:
    """No record of a user stripped before the run was ever made: restore and verification
    leave him as he is and say why. A missing record of a user this run stripped is a lost
    backup and fails. Where a record exists it is restored from, whoever stripped him."""
    recorded = _user(proxyAddresses=["SMTP:ann.own@corp.example"], mail="ann.own@corp.example")
    now = _user(proxyAddresses=["SMTP:ann@corp.example"], mail="ann@corp.example")
    user = UserTarget(now.guid, now.dn, "ann")
    by_hand = RecipientTarget(user, "EXCH01", ExchangeVersion.E2003, "stripped by hand")
    stripped_here = RecipientTarget(user, "EXCH01", ExchangeVersion.E2003)
    for step, verb in (
        (RestoreRecipient([by_hand]), "restore"),
        (VerifyRecipient([by_hand]), "verify"),
    ):
        left = step.plan(by_hand, RecipientObservation(now, None))
        assert isinstance(left, NoOp)
        assert left.reason == f"nothing recorded to {verb}: stripped by hand"
        lost = step.plan(stripped_here, RecipientObservation(now, None))
        assert isinstance(lost, WouldFail) and "no record" in lost.reason
        gone = step.plan(by_hand, RecipientObservation(None, None))
        assert isinstance(gone, WouldFail) and "no longer exists" in gone.reason
    restored = RestoreRecipient([by_hand]).plan(by_hand, RecipientObservation(now, recorded))
    assert isinstance(restored, Planned)
    assert restored.after == {
        "mail": "ann.own@corp.example",
        "proxyAddresses": "SMTP:ann.own@corp.example",
    }


@pytest.mark.parametrize("version", ["2000", "2003", "2016"])
def test_a_repair_half_done_by_hand_gets_no_invented_settings_a_blank_never_made_gets_his_own(
    engine: Engine, version: str
) -> None:
    """Both have no blank to export. The user stripped by hand has no record from before the
    strip: after the run he holds what the reconnect and the recipient policy gave him, no
    restore touched him, and a finding tells the operator what to put back. The user whose
    blank was never created is stripped by this run, so he is restored from its backup."""
    doc = kb278447(2, 5, version=version, cases=("half-done", "never-created"))
    cases = expected(doc)["cases"]
    half_done, never_made = cases["half-done"]["user"], cases["never-created"]["user"]
    before = live_objects(doc)
    # Addresses no policy gives back: only the strip's backup can.
    kept = before[never_made]["attributes"]
    kept["proxyAddresses"] = [
        *kept["proxyAddresses"],
        "smtp:kept@old.corp.example",
        "X500:/o=Corp/ou=Site55/cn=Recipients/cn=kept",
    ]
    world = load(doc)
    playbook = get_playbook("kb278447")
    params = dict(KB278447_WINDOW)
    selection = playbook.discover(world, playbook.parse(params)).selection
    # A resumed run reads the selection back from its journal: the mark must survive it.
    assert playbook.load_selection(selection.to_json()) == selection
    done = plan_and_apply(engine, "kb278447", world, params)
    assert done.applied.state == "done", done.applied.error
    after = live_objects(snapshot(done.world))
    for changes in (done.plan.changes, done.applied.changes):
        restored = {
            c.target.removeprefix("user:") for c in changes if c.step == "restore-recipient"
        }
        assert half_done not in restored and never_made in restored
    assert_recipient_restored(before[never_made], after[never_made])
    alias = attribute(after[half_done], "mailNickname")
    # On 2000 the reconnect is a re-home in AD and the Recipient Update Service's Update Now
    # is the operator's: nothing stamped him yet. Elsewhere the policy's addresses, only.
    stamped = (
        []
        if version == "2000"
        else policy_addresses(alias, ExchangeVersion(version), ORGANISATION, DOMAIN)
    )
    assert sorted(attribute(after[half_done], "proxyAddresses") or []) == sorted(stamped)
    said = {(f.target, f.kind): f.message for f in done.applied.findings}
    assert said[(before[half_done]["dn"], NOT_RESTORED)].endswith(STRIPPED_BEFORE_RUN)
    assert not any(kind == NOT_RESTORED and dn == before[never_made]["dn"] for dn, kind in said)
