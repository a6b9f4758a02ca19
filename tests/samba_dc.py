"""A throwaway Samba AD DC on 127.0.0.1 for the ``samba`` tests (shared/research/samba_ad_dc.md).

Provisioned into a temporary directory, schema extended offline with the Exchange attributes the
adapter reads and writes, started as a daemon and stopped by its own PID. Nothing here skips: a
DC that cannot start is a failure with the reason.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Generic, TypeVar

import ldap3
from ldap3.core.exceptions import LDAPException
from sentinel import sentinel

REALM = "SAMDOM.TEST"
DOMAIN = "SAMDOM"
HOST_NAME = "dc1"
BASE_DN = "DC=samdom,DC=test"
SCHEMA_DN = f"CN=Schema,CN=Configuration,{BASE_DN}"
SERVER_NAME = f"{HOST_NAME.upper()}.{REALM.lower()}"  # the CN of the certificate Samba makes
ADDRESS = "127.0.0.1"
READY_TIMEOUT_S = 60.0
LOCK_TIMEOUT_S = 1800.0
Started = TypeVar("Started")

# (cn, lDAPDisplayName, attributeID, syntax, oMSyntax, schemaIDGUID base64, extra lines)
_ATTRIBUTES = (
    (
        "ms-Exch-Mail-Nickname",
        "mailNickname",
        "1.2.840.113556.1.2.447",
        "2.5.5.12",
        64,
        "s3mWv+YN0BGihQCqADBJ4g==",
        "isSingleValued: TRUE\nrangeLower: 1\nrangeUpper: 64\nsearchFlags: 5",
    ),
    (
        "ms-Exch-Mailbox-Guid",
        "msExchMailboxGuid",
        "1.2.840.113556.1.4.7000.102.11058",
        "2.5.5.10",
        4,
        "SK8zk56w0hGqBgDAT47t2A==",
        "isSingleValued: TRUE\nrangeLower: 16\nrangeUpper: 16\nsearchFlags: 9",
    ),
    (
        "ms-Exch-Home-Server-Name",
        "msExchHomeServerName",
        "1.2.840.113556.1.4.7000.102.47",
        "2.5.5.12",
        64,
        "DvOEopOw0hGqBgDAT47t2A==",
        "isSingleValued: TRUE\nsearchFlags: 25",
    ),
    (
        "ms-Exch-Home-MDB",
        "homeMDB",
        "1.2.840.113556.1.2.244",
        "2.5.5.1",
        127,
        "h3mWv+YN0BGihQCqADBJ4g==",
        "isSingleValued: TRUE\nlinkID: 32\noMObjectClass:: KwwCh3McAIVK",
    ),
    # What the strip clears and its LDIF backup puts back (tests/test_ldif_samba.py).
    (
        "ms-Exch-Home-MTA",
        "homeMTA",
        "1.2.840.113556.1.2.171",
        "2.5.5.1",
        127,
        "p3mWv+YN0BGihQCqADBJ4g==",
        "isSingleValued: TRUE\noMObjectClass:: KwwCh3McAIVK",
    ),
    (
        "ms-Exch-Mailbox-Security-Descriptor",
        "msExchMailboxSecurityDescriptor",
        "1.2.840.113556.1.4.7000.102.80",
        "2.5.5.15",
        66,
        "JulNk56w0hGqBgDAT47t2A==",
        "isSingleValued: TRUE",
    ),
    (
        "ms-Exch-Home-MDB-BL",
        "homeMDBBL",
        "1.2.840.113556.1.2.393",
        "2.5.5.1",
        127,
        "iHmWv+YN0BGihQCqADBJ4g==",
        "isSingleValued: FALSE\nlinkID: 33\nsystemFlags: 1\noMObjectClass:: KwwCh3McAIVK",
    ),
    # The server that owns a 2000/2003 store (what the adapter reads stores by). Its schemaIDGUID
    # is Exchange's; the attributeID is this test DC's own (Exchange's was not at hand).
    (
        "ms-Exch-Owning-Server",
        "msExchOwningServer",
        "1.2.840.113556.1.4.7000.102.99901",
        "2.5.5.1",
        127,
        "JAKRF5iw0hGqBgDAT47t2A==",
        "isSingleValued: TRUE\noMObjectClass:: KwwCh3McAIVK",
    ),
)


def schema_stages(schema_dn: str = SCHEMA_DN) -> list[str]:
    """The Exchange schema subset as three LDIF stages (each needs the previous one loaded)."""
    attributes = "\n".join(
        f"dn: CN={cn},{schema_dn}\nchangetype: add\nobjectClass: top\n"
        "objectClass: attributeSchema\n"
        f"cn: {cn}\nlDAPDisplayName: {name}\nattributeID: {oid}\nattributeSyntax: {syntax}\n"
        f"oMSyntax: {om}\nschemaIDGUID:: {guid}\nshowInAdvancedViewOnly: TRUE\n"
        f"isMemberOfPartialAttributeSet: TRUE\n{extra}\n"
        for cn, name, oid, syntax, om, guid, extra in _ATTRIBUTES
    )
    mail_storage = (
        f"dn: CN=ms-Exch-Mail-Storage,{schema_dn}\nchangetype: add\nobjectClass: top\n"
        "objectClass: classSchema\ncn: ms-Exch-Mail-Storage\nlDAPDisplayName: msExchMailStorage\n"
        "governsID: 1.2.840.113556.1.5.7000.62.5\nobjectClassCategory: 3\nsubClassOf: top\n"
        "rDNAttID: cn\nschemaIDGUID:: ACBlA4Gp0hGp/wDAT47t2A==\nmayContain: msExchMailboxGuid\n"
        "mayContain: msExchHomeServerName\nmayContain: homeMDB\nmayContain: homeMTA\n"
        "mayContain: msExchMailboxSecurityDescriptor\nshowInAdvancedViewOnly: TRUE\n"
    )
    # A 2000/2003 mailbox store; governsID the test DC's own, schemaIDGUID Exchange's.
    private_mdb = (
        f"dn: CN=ms-Exch-Private-MDB,{schema_dn}\nchangetype: add\nobjectClass: top\n"
        "objectClass: classSchema\ncn: ms-Exch-Private-MDB\nlDAPDisplayName: msExchPrivateMDB\n"
        "governsID: 1.2.840.113556.1.5.7000.99901\nobjectClassCategory: 1\nsubClassOf: top\n"
        "rDNAttID: cn\nschemaIDGUID:: 9FwUNoKp0hGp/wDAT47t2A==\nmayContain: msExchOwningServer\n"
        "possSuperiors: container\nshowInAdvancedViewOnly: TRUE\n"
    )
    wiring = (
        f"dn: CN=User,{schema_dn}\nchangetype: modify\nadd: auxiliaryClass\n"
        "auxiliaryClass: msExchMailStorage\n\n"
        f"dn: CN=Mail-Recipient,{schema_dn}\nchangetype: modify\nadd: mayContain\n"
        "mayContain: mailNickname\n\n"
        # Users with children (Exchange hangs containers such as ActiveSync devices below them).
        f"dn: CN=Container,{schema_dn}\nchangetype: modify\nadd: possSuperiors\n"
        "possSuperiors: user\n"
    )
    return [attributes, mail_storage + "\n" + private_mdb, wiring]


@dataclass(frozen=True)
class SambaDC:
    """A running DC: where it listens, how to bind, which CA signed its certificate."""

    base: Path
    host: str
    realm: str
    base_dn: str
    server_name: str
    bind_user: str
    password: str
    ca_file: Path
    pid: int

    @property
    def smb_conf(self) -> Path:
        return self.base / "dc1" / "etc" / "smb.conf"


def run_checked(command: list[str], what: str) -> None:
    done = subprocess.run(command, capture_output=True, text=True, check=False, timeout=300)
    if done.returncode != 0:
        raise RuntimeError(
            f"{what} failed (exit {done.returncode}): {' '.join(command[:3])} ...\n"
            f"{done.stdout[-2000:]}\n{done.stderr[-2000:]}"
        )


def check_tools() -> None:
    missing = [tool for tool in ("samba", "samba-tool", "ldbmodify") if shutil.which(tool) is None]
    if missing:
        raise RuntimeError(
            f"Samba is not installed ({', '.join(missing)} missing): run scripts/test.sh as root, "
            "it installs Debian's samba packages"
        )
    if os.geteuid() != 0:
        raise RuntimeError("a Samba AD DC must run as root: run the samba tests as root")


_HELD_LOCKS: dict[str, int] = {}


def acquire_exclusive(name: str) -> None:
    """Wait (up to LOCK_TIMEOUT_S) until no other test session or benchmark on this machine
    holds ``name``: the DCs use fixed addresses, ports and namespace names, so two sessions
    queue rather than collide. The kernel frees the lock when the holder dies."""
    path = Path(tempfile.gettempdir()) / f"remediate-{name}.lock"
    descriptor = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    deadline = time.monotonic() + LOCK_TIMEOUT_S
    while True:
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
            break
        except BlockingIOError:
            if time.monotonic() > deadline:
                os.close(descriptor)
                raise RuntimeError(
                    f"{path} stayed locked for {LOCK_TIMEOUT_S:.0f} s: another test session "
                    "is using the Samba test DC; wait for it or stop it"
                ) from None
            time.sleep(0.5)
    _HELD_LOCKS[name] = descriptor


def release_exclusive(name: str) -> None:
    descriptor = _HELD_LOCKS.pop(name, None)
    if descriptor is not None:
        os.close(descriptor)


def check_loopback_free() -> None:
    with socket.socket() as probe:
        if probe.connect_ex((ADDRESS, 636)) == 0:
            raise RuntimeError(f"{ADDRESS}:636 is already in use: another LDAP server is running")


def extend_schema(base: Path, target: Path, schema_dn: str = SCHEMA_DN) -> None:
    """Add the Exchange attributes to a stopped DC's schema: one ldbmodify per stage (each
    process loads the schema afresh)."""
    for number, stage in enumerate(schema_stages(schema_dn), 1):
        ldif = base / f"{target.name}-exchange-schema-{number}.ldif"
        ldif.write_text(stage)
        run_checked(
            [
                "ldbmodify",
                "-H",
                str(target / "private" / "sam.ldb"),
                "--option=dsdb:schema update allowed=true",
                str(ldif),
            ],
            f"Exchange schema stage {number}",
        )


def new_password() -> str:
    """A sentinel (tests/sentinel.py): any trace of it in output, files or arguments is a leak."""
    return sentinel("samba-admin")


def dc_options(target: Path, interfaces: str) -> dict[str, str]:
    """smb.conf options every test DC needs: only these interfaces, its own directories under
    ``target``, no DNS updates (they would query the host's resolver), schema updates allowed."""
    run_dir = target / "run"
    return {
        "interfaces": interfaces,
        "bind interfaces only": "yes",
        "disable netbios": "yes",
        "pid directory": str(run_dir),
        "winbindd socket directory": str(run_dir / "winbindd"),
        "ncalrpc dir": str(run_dir / "ncalrpc"),
        "ntp signd socket directory": str(run_dir / "ntp_signd"),
        "log file": str(target / "log.%m"),
        "server services": "-dnsupdate",
        "dsdb:schema update allowed": "true",
    }


def provision(base: Path, password: str) -> Path:
    """Provision a DC under ``base/dc1`` bound to loopback only, with the Exchange schema."""
    target = base / "dc1"
    empty = base / "empty.conf"
    empty.write_text("")
    options = dc_options(target, "lo")
    options["ldap server require strong auth"] = "yes"
    command = [
        "samba-tool",
        "domain",
        "provision",
        "-s",
        str(empty),
        "--use-rfc2307",
        f"--realm={REALM}",
        f"--domain={DOMAIN}",
        "--server-role=dc",
        "--dns-backend=SAMBA_INTERNAL",
        f"--adminpass={password}",
        f"--host-name={HOST_NAME}",
        f"--targetdir={target}",
        *(f"--option={key}={value}" for key, value in options.items()),
    ]
    run_checked(command, "samba-tool domain provision")
    smb_conf = target / "etc" / "smb.conf"
    lines = smb_conf.read_text().splitlines()
    kept = [line for line in lines if not line.strip().lower().startswith("dns forwarder")]
    smb_conf.write_text("\n".join(kept) + "\n")
    for sub in ("run", "cache"):
        (target / sub).mkdir(parents=True, exist_ok=True)
    extend_schema(base, target)
    run_checked(["samba_spnupdate", "-s", str(smb_conf)], "samba_spnupdate")
    return smb_conf


def wait_ready(pid_file: Path, log: Path, address: str = ADDRESS) -> int:
    deadline = time.monotonic() + READY_TIMEOUT_S
    last_error = "not started"
    while time.monotonic() < deadline:
        try:
            server = ldap3.Server(address, port=389, connect_timeout=2, get_info=ldap3.NONE)
            connection = ldap3.Connection(server, auto_bind=True, receive_timeout=5)
            connection.search("", "(objectClass=*)", ldap3.BASE, attributes=["isSynchronized"])
            answer = connection.response[0]["attributes"] if connection.response else {}
            connection.unbind()
            if str(answer.get("isSynchronized", [""])[0]).upper() == "TRUE" and pid_file.exists():
                with socket.create_connection((address, 636), timeout=2):
                    return int(pid_file.read_text().split()[0])
            last_error = f"rootDSE says isSynchronized={answer.get('isSynchronized')}"
        except (OSError, LDAPException, ValueError) as error:
            last_error = str(error)
        time.sleep(0.2)
    tail = log.read_text(errors="replace")[-3000:] if log.exists() else "(no log)"
    raise RuntimeError(
        f"Samba did not become ready in {READY_TIMEOUT_S:.0f} s: {last_error}\n{tail}"
    )


def start() -> SambaDC:
    """Provision and start a DC; the caller must :func:`stop` it."""
    check_tools()
    acquire_exclusive("samba-dc")
    base = Path(tempfile.mkdtemp(prefix="remediate-samba-"))
    try:
        check_loopback_free()
        password = new_password()
        smb_conf = provision(base, password)
        run_checked(["samba", "-D", "-s", str(smb_conf)], "samba -D")
        target = base / "dc1"
        pid = wait_ready(target / "run" / "samba.pid", target / "log.samba")
    except BaseException:
        shutil.rmtree(base, ignore_errors=True)
        release_exclusive("samba-dc")
        raise
    return SambaDC(
        base=base,
        host=ADDRESS,
        realm=REALM,
        base_dn=BASE_DN,
        server_name=SERVER_NAME,
        bind_user=f"Administrator@{REALM.lower()}",
        password=password,
        ca_file=target / "private" / "tls" / "ca.pem",
        pid=pid,
    )


def stop_pid(pid: int) -> None:
    """SIGTERM one Samba (its children exit with it), wait up to 10 s, then SIGKILL."""
    try:
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            os.kill(pid, 0)
            time.sleep(0.1)
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def stop(dc: SambaDC) -> None:
    """Stop the DC by its own PID and remove its directory."""
    stop_pid(dc.pid)
    shutil.rmtree(dc.base, ignore_errors=True)
    release_exclusive("samba-dc")


# One thread for every background start: the DCs are provisioned one after the other, in the
# order the session asked for them, so they compete with the running tests for one CPU only.
_STARTER = ThreadPoolExecutor(1, thread_name_prefix="samba-start")


class BackgroundStart(Generic[Started]):
    """Start a fixture (``start``) in the background as soon as the session knows it will need
    it, so provisioning overlaps with the tests that run first; ``stop`` undoes it."""

    def __init__(self, start: Callable[[], Started], stop: Callable[[Started], None]) -> None:
        self._start = start
        self._stop = stop
        self._future: Future[Started] | None = None

    def begin(self) -> None:
        if self._future is None:
            self._future = _STARTER.submit(self._start)

    def result(self) -> Started:
        """What start returned (started now if :meth:`begin` was not called); raises what
        start raised."""
        self.begin()
        assert self._future is not None
        return self._future.result()

    def stop(self) -> None:
        """Undo the start if it happened (whether or not a test used it)."""
        future, self._future = self._future, None
        if future is None or future.cancel():  # never asked for, or never begun
            return
        try:
            started = future.result()
        except Exception:
            started = None
        if started is not None:
            self._stop(started)
