"""Fixtures shared by the test modules. Keep this small and generic."""

from __future__ import annotations

import io
import sys
from collections.abc import Generator, Iterator
from pathlib import Path

import pytest
import samba_dc as samba
import structlog
from directory_backends import DirectoryBackend, FakeBackend, SambaBackend, samba_directory
from run_support import quiet_events
from samba_dc import SambaDC
from samba_pair import SambaPair, start_pair, stop_pair
from sentinel import leaking_files, leaking_sections

from remediate import Engine
from remediate.adapters.ldap import LdapDirectory


@pytest.fixture
def state_dir(tmp_path: Path) -> Path:
    """A fresh state directory (runs, locks) for one test."""
    return tmp_path / "state"


@pytest.fixture
def engine(state_dir: Path) -> Engine:
    """An engine keeping its runs in ``state_dir``."""
    return Engine(state_dir=state_dir)


@pytest.fixture
def quiet() -> Iterator[None]:
    """Events go nowhere, for a module whose runs emit too many to keep
    (``pytestmark = pytest.mark.usefixtures("quiet")``)."""
    yield from quiet_events()


@pytest.fixture
def command_line(tmp_path: Path, state_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """For a module of command-line runs (``pytestmark = pytest.mark.usefixtures(...)``): runs
    go to the test's state directory, from its own folder; stdin is not a terminal; output is
    not wrapped to a width taken from the environment."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("REMEDIATE_STATE_DIR", str(state_dir))
    monkeypatch.delenv("COLUMNS", raising=False)
    monkeypatch.setattr(sys, "stdin", io.StringIO(""))


@pytest.fixture(autouse=True)
def _structlog_configuration_restored() -> Iterator[None]:
    """A test that configures structlog (the command line does) must not leave it writing to
    that test's captured, since closed, stderr: every later test that logs would fail."""
    saved = structlog.get_config()
    yield
    structlog.configure(**saved)


_SAMBA = samba.BackgroundStart(samba.start, samba.stop)
_SAMBA_PAIR = samba.BackgroundStart(start_pair, stop_pair)


@pytest.hookimpl(trylast=True)  # after ``-m``/``-k`` deselection: only what will run counts
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """A session with ``samba`` tests starts the DC (and the pair, if a test uses it) now, in
    the background."""
    if any(item.get_closest_marker("samba") for item in items):
        _SAMBA.begin()
    if any("samba_pair" in getattr(item, "fixturenames", ()) for item in items):
        _SAMBA_PAIR.begin()


def pytest_sessionfinish() -> None:
    _SAMBA.stop()
    _SAMBA_PAIR.stop()


@pytest.fixture(scope="session")
def samba_dc() -> SambaDC:
    """One Samba AD DC for the whole session (tests/samba_dc.py); fails, never skips, if it
    cannot start."""
    try:
        return _SAMBA.result()
    except RuntimeError as error:
        pytest.fail(f"the Samba AD DC fixture could not start: {error}", pytrace=False)


@pytest.fixture(scope="session")
def samba_pair() -> SambaPair:
    """Two replicating Samba AD DCs in network namespaces (tests/samba_pair.py), automatic
    replication off; fails, never skips, if they cannot start."""
    try:
        return _SAMBA_PAIR.result()
    except (RuntimeError, OSError) as error:
        pytest.fail(f"the Samba DC pair could not start: {error}", pytrace=False)


@pytest.fixture(scope="session")
def samba_ldap(samba_dc: SambaDC) -> Iterator[LdapDirectory]:
    """The ldap3 adapter on the session's DC."""
    directory = samba_directory(samba_dc)
    yield directory
    directory.close()


@pytest.fixture(params=["fake", pytest.param("samba", marks=pytest.mark.samba)])
def backend(request: pytest.FixtureRequest) -> DirectoryBackend:
    """Each implementation of the Directory port (tests/directory_backends.py) in turn."""
    if request.param == "fake":
        return FakeBackend()
    return SambaBackend(request.getfixturevalue("samba_dc"), request.getfixturevalue("samba_ldap"))


# -- every test: the sentinel passwords (tests/sentinel.py) never show ---------------------------


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """A test whose captured stdout, stderr or log holds a sentinel password fails."""
    report = yield
    leaked = leaking_sections(report.sections)
    if leaked and report.passed:
        report.outcome = "failed"
        report.longrepr = f"a sentinel password leaked into: {', '.join(leaked)}"
    return report


@pytest.fixture(scope="session", autouse=True)
def _no_sentinel_in_any_file(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """At the end of the session no file any test wrote (runs, plans, logs, LDIF, worlds)
    holds a sentinel password."""
    yield
    leaked = leaking_files(tmp_path_factory.getbasetemp())
    assert not leaked, f"a sentinel password leaked into: {[str(p) for p in leaked]}"
