"""The rollback notes and the ticket say where each server's exports really are: ExMerge
(2000/2003) writes on the Exchange server itself, in its export directory; Exchange 2007 exports
nothing through remediate (Export-Mailbox runs on a 32-bit management workstation); 2010 SP1 and
later write to the UNC share, as the Exchange Trusted Subsystem; a world-file run writes to its
run directory. The plan names them as apply does."""

from __future__ import annotations

import pytest
from kb_support import load, scenario
from winrm_support import EXPORT_SHARE, serve, snapshot_world

from remediate import Engine, get_playbook
from remediate.adapters.winrm import ServerConfig
from remediate.adapters.winrm.config import LOCAL_EXPORT_DIRECTORY
from remediate.adapters.winrm.exchange import export_location
from remediate.cli.ticket import render_markdown
from remediate.engine.runner import EXIT_DONE, EXIT_PENDING, RunResult
from remediate.model import ExchangeVersion
from remediate.steps.mail import ExportMail, ImportMail
from remediate.testing import apply_confirmed


def _where(result: RunResult, step: str, key: str) -> set[object]:
    return {
        record.after.get(key)
        for record in result.changes
        if record.step == step and isinstance(record.after, dict)
    }


def _rollback(result: RunResult, step: type[ExportMail] | type[ImportMail]) -> str:
    return " ".join(step.rollback([r for r in result.changes if r.step == step.name]))


@pytest.mark.winrm
@pytest.mark.parametrize(
    ("version", "location"),
    [
        ("2003", f"`{LOCAL_EXPORT_DIRECTORY}` on EXCH01, the Exchange server itself"),
        ("2010", f"`{EXPORT_SHARE}` ("),
        ("2016", f"`{EXPORT_SHARE}` ("),
    ],
)
def test_the_plan_and_the_ticket_name_the_servers_export_directory(
    engine: Engine,
    version: str,
    location: str,
) -> None:
    fake = load(scenario("kb278447", 3, seed=2, version=version))
    playbook = get_playbook("kb278447")
    with serve(fake) as site:
        world = snapshot_world(site)
        planned = engine.plan(playbook, world, {})
        assert planned.exit_code == EXIT_PENDING
        applied = apply_confirmed(engine, playbook, world, {})
    assert applied.exit_code == EXIT_DONE
    for result in (planned, applied):
        (exported_to,) = _where(result, "export-mail", "to")
        assert isinstance(exported_to, str) and exported_to.startswith(location)
        assert _where(result, "import-mail", "from") == {exported_to}
        assert exported_to in _rollback(result, ExportMail)
        assert exported_to in _rollback(result, ImportMail)
        ticket = render_markdown(result)
        rollback = ticket.split("### Rollback: export-mail", 1)[1].split("\n### ", 1)[0]
        assert exported_to.replace("\\", "\\\\") in rollback or exported_to in rollback
        assert "backups/mail/EXCH01" not in ticket


@pytest.mark.winrm
def test_exchange_2007_says_its_exports_are_made_on_a_management_workstation() -> None:
    with serve(load(scenario("kb278447", 2, seed=2, version="2007"))) as site:
        said = site.exchange().export_location("EXCH01")
    assert said.startswith("none from EXCH01") and "32-bit management workstation" in said


def test_a_world_file_run_names_its_run_directory(engine: Engine) -> None:
    world = load(scenario("kb278447", 3, seed=2, version="2003"))
    planned = engine.plan(get_playbook("kb278447"), world, {})
    assert _where(planned, "export-mail", "to") == {"`backups/mail/EXCH01/` in the run directory"}
    assert "`backups/mail/EXCH01/` in the run directory" in _rollback(planned, ExportMail)


@pytest.mark.parametrize(
    ("version", "directory", "said"),
    [
        ("2003", "D:\\pst`s", "``D:\\pst`s`` on EXCH01, the Exchange server itself"),
        ("2016", "\\\\fs01\\pst`s$", "``\\\\fs01\\pst`s$`` (`<mailbox guid>.pst`"),
    ],
)
def test_a_directory_with_a_backtick_stays_one_code_span(
    version: str,
    directory: str,
    said: str,
) -> None:
    config = ServerConfig(
        host="exch01.corp.example",
        name="EXCH01",
        version=ExchangeVersion(version),
        identity="CORP\\svc",
        password=lambda: "unused",
        export_directory=directory,
    )
    assert export_location(config).startswith(said)
