"""Both playbooks end to end with Exchange reached through unmodified pywinrm over NTLM (with
message encryption) to the loopback endpoint, for an Exchange 2003 and an Exchange 2016 world
(and kb278447 on 2010; Exchange 2000 is refused): plan, apply, the KB's end state, and a second
apply that changes nothing."""

from __future__ import annotations

import pytest
from kb_support import (
    assert_kb278447_end_state,
    assert_kb842101_end_state,
    expected,
    load,
    parameters,
    scenario,
    snapshot,
)
from winrm_endpoint import soap
from winrm_support import WinRmWorld, serve

from remediate import Engine, get_playbook
from remediate.engine.runner import EXIT_DONE, EXIT_PENDING
from remediate.testing import apply_confirmed, change_keys

pytestmark = pytest.mark.winrm


CASES = [(name, version) for name in ("kb842101", "kb278447") for version in ("2003", "2016")] + [
    ("kb278447", "2010")
]  # PowerShell 2.0 with cmdlets (Exchange 2000: refused, see below)


@pytest.mark.parametrize(("name", "version"), CASES)
def test_playbook_end_to_end_through_pywinrm_over_ntlm(
    engine: Engine, name: str, version: str
) -> None:
    doc = scenario(name, 7, seed=7, version=version)
    fake = load(doc)
    before = snapshot(fake)
    params = parameters(doc)
    playbook = get_playbook(name)
    with serve(fake) as site:
        world = WinRmWorld(fake, site.exchange())

        plan = engine.plan(playbook, world, params)
        applied = apply_confirmed(engine, playbook, world, params)

        assert plan.exit_code == EXIT_PENDING, plan.error
        assert applied.state == "done", applied.error
        assert applied.exit_code == EXIT_DONE
        assert change_keys(applied.changes) == change_keys(plan.changes)
        if name == "kb842101":
            assert_kb842101_end_state(before, fake, applied, params, expected(doc))
        else:
            assert_kb278447_end_state(before, fake, applied, expected(doc))

        repaired = snapshot(fake)
        again = apply_confirmed(engine, playbook, world, params)
        assert again.changes == [] and again.exit_code == EXIT_DONE
        assert snapshot(fake) == repaired

        requests = [r for e in site.endpoints.values() for r in e.requests]
        assert requests and all(r.encrypted and r.user for r in requests)
        assert sum(e.calls(soap.COMMAND) for e in site.endpoints.values()) > 0
