"""The passwords never leak. Every credential here is a sentinel (tests/sentinel.py): the Samba
DC's Administrator password and the WinRM account's, both given to the command line through the
inventory's password_env variables, and the wrong passwords of the failure paths. The command
line runs plan, plan --out, apply (of a saved plan, of a playbook, one failing on the WinRM
password), resume (of that failed run: refused, and of a finished one), runs, show-run and
snapshot, and fails on a wrong password, a refused certificate and an
unreachable host, in a subprocess (its /proc/<pid>/cmdline and its children's watched while it
runs) and in-process; no sentinel may appear in stdout, stderr (structlog's events), the state
directory (journals, plans, logs, LDIF backups, run state), the files written, or in any
exception's str, repr, args or traceback along its __cause__/__context__ chain."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path
from typing import Any

import pytest
from directory_backends import (
    SAMBA_DC_NAME,
    SambaBackend,
    directory_section,
    samba_directory,
    unique,
    window_around_now,
)
from kb_support import load, scenario
from samba_dc import SambaDC
from sentinel import (
    MARK,
    ProcessWatch,
    assert_no_mark,
    contains_mark,
    exception_texts,
    leaking_files,
    leaking_sections,
    sentinel,
)
from winrm_endpoint.certs import make_pki
from winrm_support import PASSWORD, USER, Site, serve

from remediate.adapters.winrm import WinRmExchange
from remediate.cli.main import main
from remediate.inventory import live_world, load_inventory
from remediate.model import UserQuery

pytestmark = [pytest.mark.security, pytest.mark.samba, pytest.mark.winrm]

AD_VARIABLE, EXCH_VARIABLE = "REMEDIATE_TEST_AD_PASSWORD", "REMEDIATE_TEST_EXCH_PASSWORD"


@dataclass(frozen=True)
class Organisation:
    """The Samba DC and one WinRM endpoint, and inventories for them: ``good`` and the broken
    ones of the failure paths."""

    samba: SambaDC
    site: Site
    folder: Path
    inventories: dict[str, Path]

    def passwords(self, **wrong: str) -> dict[str, str]:
        return {AD_VARIABLE: self.samba.password, EXCH_VARIABLE: PASSWORD, **wrong}


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port  # bound, never listening: connection refused


def inventory_text(samba: SambaDC, ca_file: Path, address: str, winrm_port: int) -> str:
    directory = directory_section(
        samba,
        password_env=AD_VARIABLE,
        ca_file=ca_file,
        address=address,
        extra=f'dcs = ["{SAMBA_DC_NAME}"]\nconnect_timeout_s = 3',
    )
    return (
        directory
        + f"""
[[exchange]]
host = "127.0.0.1"
name = "EXCH01"
version = "2016"
port = {winrm_port}
identity = '{USER}'
password_env = "{EXCH_VARIABLE}"
export_directory = '\\\\fs01\\pst$\\remediate'
operation_timeout_s = 2
deadline_s = 30
"""
    )


def exchange_reading_the_samba_dc() -> dict[str, Any]:
    """A small Exchange 2016 organisation whose server reads AD from the Samba DC."""
    doc = scenario("kb842101", 2, seed=5, version="2016")
    doc["directory"]["dcs"] = [{"name": SAMBA_DC_NAME, "replication_delay_s": 0}]
    for server in doc["exchange"]["servers"]:
        server["dc"] = SAMBA_DC_NAME
    return doc


@pytest.fixture(scope="module")
def organisation(
    samba_dc: SambaDC, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Organisation]:
    folder = tmp_path_factory.mktemp("sentinel")
    other_ca = folder / "other-ca.pem"
    other_ca.write_bytes(make_pki("another CA").ca_pem)
    with serve(load(exchange_reading_the_samba_dc())) as site:
        port = site.configs[0].port
        variants = {
            "good": (samba_dc.ca_file, samba_dc.host, port),
            "untrusted-dc": (other_ca, samba_dc.host, port),
            "unreachable-dc": (samba_dc.ca_file, "127.0.0.2", port),
            "unreachable-exchange": (samba_dc.ca_file, samba_dc.host, closed_port()),
        }
        inventories = {}
        for name, (ca, address, winrm_port) in variants.items():
            inventories[name] = folder / f"{name}.toml"
            inventories[name].write_text(inventory_text(samba_dc, ca, address, winrm_port))
        yield Organisation(samba_dc, site, folder, inventories)


@dataclass(frozen=True)
class Outcome:
    code: int
    out: str
    err: str


@dataclass(frozen=True)
class Cli:
    mode: str  # "subprocess" or "in-process"
    run: Callable[[list[str], dict[str, str]], Outcome]


@pytest.fixture(params=["subprocess", "in-process"])
def cli(
    request: pytest.FixtureRequest,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> Iterator[Cli]:
    """Runs the command line with these environment variables; checks, for a subprocess,
    every command line of it and of its children while it runs."""
    cmdlines: list[bytes] = []

    def in_subprocess(argv: list[str], env: dict[str, str]) -> Outcome:
        process = subprocess.Popen(
            [sys.executable, "-m", "remediate", "--log-format", "json", "-v", *argv],
            env={**os.environ, **env},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
            text=True,
        )
        with ProcessWatch(process.pid) as watch:
            out, err = process.communicate(timeout=300)
        assert process.pid in watch.cmdlines, "the watch saw nothing"
        cmdlines.extend(watch.cmdlines.values())
        return Outcome(process.returncode, out, err)

    def in_process(argv: list[str], env: dict[str, str]) -> Outcome:
        for key, value in env.items():
            monkeypatch.setenv(key, value)
        code = main(["--log-format", "json", "-v", *argv])
        captured = capsys.readouterr()
        return Outcome(code, captured.out, captured.err)

    subprocess_mode = request.param == "subprocess"
    yield Cli(request.param, in_subprocess if subprocess_mode else in_process)
    assert_no_mark("process arguments", cmdlines)


def users_in_new_scope(organisation: Organisation, count: int) -> tuple[str, list[str]]:
    """A new OU with ``count`` users; returns its DN and their sAMAccountNames."""
    directory = samba_directory(organisation.samba)
    backend = SambaBackend(organisation.samba, directory)
    scope = backend.add(organisation.samba.base_dn, unique("sentinel-"), "organizationalUnit").dn
    sams = [unique("s") for _ in range(count)]
    for sam in sams:
        backend.add(scope, f"Sentinel {sam}", "user", {"sAMAccountName": sam})
    directory.close()
    return scope, sams


def test_no_command_leaks_a_password(organisation: Organisation, cli: Cli, tmp_path: Path) -> None:
    state = tmp_path / "state"
    good = str(organisation.inventories["good"])
    scope, (first, second) = users_in_new_scope(organisation, 2)
    base = ["--state-dir", str(state)]
    passwords = organisation.passwords()
    outcomes: list[Outcome] = []
    timings: list[str] = []

    def run(*argv: str, expect: int, env: dict[str, str] = passwords) -> Outcome:
        started = time.monotonic()
        outcome = cli.run([*base, *argv], env)
        timings.append(f"{time.monotonic() - started:6.1f} s  {' '.join(argv)[:90]}")
        outcomes.append(outcome)
        assert outcome.code == expect, (argv, outcome.out[-3000:], outcome.err[-3000:])
        return outcome

    on_first = [
        "--inventory",
        good,
        "-p",
        f"ou={scope}",
        "-p",
        f"users={first}",
        *window_around_now(),
    ]
    plan_file = tmp_path / "plan.json"
    run("plan", "kb842101", *on_first, "--format", "json", expect=2)
    run("plan", "kb842101", *on_first, "--out", str(plan_file), expect=2)
    applied = json.loads(run("apply", str(plan_file), "--yes", "--format", "json", expect=0).out)
    assert [c["step"] for c in applied["changes"]] == ["delete-ad-user"]

    # a run that fails on the WinRM password (in discovery: resume refuses, nothing changed),
    # the same apply with the right one, and a resume of that finished run
    on_second = [
        "--inventory",
        good,
        "-p",
        f"ou={scope}",
        "-p",
        f"users={second}",
        *window_around_now(),
    ]
    wrong_winrm = organisation.passwords(**{EXCH_VARIABLE: sentinel("wrong-winrm")})
    failed = run(
        "apply", "kb842101", *on_second, "--yes", "--format", "json", expect=1, env=wrong_winrm
    )
    assert "rejected the credentials" in failed.err
    run("resume", json.loads(failed.out)["run_id"], "--format", "json", expect=3)
    done = json.loads(
        run("apply", "kb842101", *on_second, "--yes", "--format", "json", expect=0).out
    )
    run("resume", done["run_id"], "--format", "json", expect=0)
    run("runs", "--format", "json", expect=0)
    run("show-run", done["run_id"], "--all", "--format", "json", expect=0)
    run("show-run", applied["run_id"], "--all", expect=0)
    run(
        "snapshot",
        "--inventory",
        good,
        "--base-dn",
        scope,
        "--out",
        str(tmp_path / "world.json"),
        expect=0,
    )

    # failures: a wrong directory password, a certificate from another CA, unreachable hosts
    plan = ["plan", "kb842101", "-p", f"ou={scope}", *window_around_now(), "--inventory"]
    wrong_ad = organisation.passwords(**{AD_VARIABLE: sentinel("wrong-ad")})
    assert "invalidCredentials" in run(*plan, good, expect=1, env=wrong_ad).err
    inventories = organisation.inventories
    untrusted = run(*plan, str(inventories["untrusted-dc"]), expect=1)
    assert "not issued by a CA we trust" in untrusted.err
    # a host that does not answer is retried (about 30 s by default): here for 1 s, so both
    # modes try each twice or so and say why they gave up
    unreachable = [*plan[:2], "--retry-deadline", "1", *plan[2:]]
    unreachable_dc = run(*unreachable, str(inventories["unreachable-dc"]), expect=1)
    assert "connection failed" in unreachable_dc.err
    unreachable_exchange = run(*unreachable, str(inventories["unreachable-exchange"]), expect=1)
    assert "cannot connect" in unreachable_exchange.err

    for outcome in outcomes:
        assert_no_mark("stdout", [outcome.out])
        assert_no_mark("stderr (structlog events, errors)", [outcome.err])
    assert (state / "runs").is_dir() and any((state / "runs").rglob("*.ldif"))
    assert leaking_files(tmp_path) == []
    print("\n".join(timings))


def test_no_error_carries_a_password(
    organisation: Organisation, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each failure, from the library: the exception and everything chained to it."""
    monkeypatch.setenv(AD_VARIABLE, sentinel("wrong-ad"))
    monkeypatch.setenv(EXCH_VARIABLE, PASSWORD)
    errors: dict[str, BaseException] = {}

    def capture(name: str, action: Callable[[], object]) -> None:
        with pytest.raises(Exception) as raised:
            action()
        errors[name] = raised.value

    def find_administrator(inventory: Path) -> object:
        directory = live_world(load_inventory(inventory)).directory
        return directory.find_users(UserQuery(sam_account_names=frozenset({"Administrator"})))

    for name in ("good", "untrusted-dc", "unreachable-dc"):
        capture(f"directory {name}", partial(find_administrator, organisation.inventories[name]))
    config = organisation.site.configs[0]
    capture(
        "winrm wrong password",
        WinRmExchange([replace(config, password=lambda: sentinel("wrong"))]).servers,
    )
    capture("winrm unreachable", WinRmExchange([replace(config, port=closed_port())]).servers)
    capture("winrm basic over http", WinRmExchange([replace(config, transport="basic")]).servers)

    assert len(errors) == 6
    for name, error in errors.items():
        texts = list(exception_texts(error))
        assert texts, name
        assert_no_mark(f"the {name} error", texts)


def test_the_scanners_find_a_sentinel_wherever_it_hides() -> None:
    secret = sentinel("probe")
    with tempfile.TemporaryDirectory() as folder:  # not the session's: it would be a leak there
        nested = Path(folder, "deep", "er", "log.jsonl")
        nested.parent.mkdir(parents=True)
        nested.write_text(json.dumps({"password": secret}))
        assert leaking_files(Path(folder)) == [nested]
    try:
        try:
            raise OSError(f"bind as x with {secret}")
        except OSError as inner:
            raise RuntimeError("wrapped") from inner
    except RuntimeError as outer:
        assert any(contains_mark(text) for text in exception_texts(outer))
    assert leaking_sections(
        [
            ("Captured stderr call", f"x {secret.encode().hex()}"),
            ("Captured log call", f"pw={secret}"),
        ]
    ) == ["Captured log call"]
    assert MARK in secret
