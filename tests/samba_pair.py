"""Two replicating Samba AD DCs, each in a network namespace the tests create (sdc1, sdc2, joined
by one veth pair; shared/research/samba_ad_dc.md §7). Automatic replication is off (notify and
periodic intervals of an hour): a change reaches the other DC only when a test runs
``samba-tool drs replicate``. The test process talks to them from inside ``sdc1``
(:func:`in_namespace`: the calling thread only; sockets keep the namespace they were made in).
"""

from __future__ import annotations

import ctypes
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import samba_dc
from samba_dc import run_checked as _run
from samba_dc import wait_ready

REALM = "REPL.TEST"
DOMAIN = "REPL"
BASE_DN = "DC=repl,DC=test"
NAMESPACES = ("sdc1", "sdc2")
ADDRESSES = ("10.99.0.1", "10.99.0.2")
HOSTS = ("ndc1", "ndc2")
CLONE_NEWNET = 0x40000000


@dataclass(frozen=True)
class SambaPair:
    base: Path
    password: str
    ca_file: Path  # both DCs' CAs
    pids: tuple[int, int]
    names: tuple[str, str]  # DNS names, as the certificates say
    addresses: tuple[str, str]

    @property
    def bind_user(self) -> str:
        return f"Administrator@{REALM.lower()}"

    def smb_conf(self, index: int) -> Path:
        return self.base / HOSTS[index] / "etc" / "smb.conf"

    def replicate(self, destination: int, source: int, nc: str = BASE_DN) -> None:
        """``samba-tool drs replicate`` run on the destination DC's namespace."""
        _in_ns(
            NAMESPACES[destination],
            [
                "samba-tool",
                "drs",
                "replicate",
                HOSTS[destination].upper(),
                HOSTS[source].upper(),
                nc,
                "-s",
                str(self.smb_conf(destination)),
                f"-U{DOMAIN}\\Administrator%{self.password}",
            ],
            f"drs replicate {HOSTS[destination]} <- {HOSTS[source]} {nc}",
        )


_libc = ctypes.CDLL(None, use_errno=True)


@contextmanager
def in_namespace(name: str) -> Iterator[None]:
    """Run the calling thread inside network namespace ``name``, then back."""
    with open("/proc/thread-self/ns/net", "rb") as home, open(f"/run/netns/{name}", "rb") as ns:
        if _libc.setns(ns.fileno(), CLONE_NEWNET) != 0:
            raise OSError(ctypes.get_errno(), f"setns into {name} failed")
        try:
            yield
        finally:
            if _libc.setns(home.fileno(), CLONE_NEWNET) != 0:
                raise OSError(ctypes.get_errno(), "setns back to the test's namespace failed")


def _in_ns(namespace: str, command: list[str], what: str) -> None:
    _run(["ip", "netns", "exec", namespace, *command], what)


def _networks() -> None:
    # We hold the "samba-pair" lock, so namespaces left behind are a killed session's.
    stop_pair(None, release=False)
    for namespace in NAMESPACES:
        _run(["ip", "netns", "add", namespace], f"ip netns add {namespace}")
    _run(["ip", "link", "add", "vsdc1", "type", "veth", "peer", "name", "vsdc2"], "veth")
    for index, namespace in enumerate(NAMESPACES):
        device = f"vsdc{index + 1}"
        _run(["ip", "link", "set", device, "netns", namespace], f"move {device}")
        _run(
            ["ip", "-n", namespace, "addr", "add", f"{ADDRESSES[index]}/24", "dev", device],
            "address",
        )
        for link in ("lo", device):
            _run(["ip", "-n", namespace, "link", "set", link, "up"], f"{link} up")
        _in_ns(namespace, ["sysctl", "-q", "-w", f"net.ipv6.conf.{device}.disable_ipv6=1"], "v6")
        etc = Path("/etc/netns") / namespace
        etc.mkdir(parents=True, exist_ok=True)
        (etc / "resolv.conf").write_text(f"search {REALM.lower()}\nnameserver {ADDRESSES[0]}\n")
        (etc / "hosts").write_text(
            "127.0.0.1 localhost\n"
            + "".join(
                f"{a} {h}.{REALM.lower()} {h}\n" for a, h in zip(ADDRESSES, HOSTS, strict=True)
            )
        )


def _options(target: Path, device: str) -> list[str]:
    # Automatic replication effectively off: the tests replicate with samba-tool drs replicate.
    options = samba_dc.dc_options(target, f"{device} lo")
    options.update({"dreplsrv:notify_interval": "3600", "dreplsrv:periodic_interval": "3600"})
    return [f"--option={key}={value}" for key, value in options.items()]


def _after_provision(target: Path) -> Path:
    smb_conf = target / "etc" / "smb.conf"
    kept = [
        line
        for line in smb_conf.read_text().splitlines()
        if not line.strip().lower().startswith("dns forwarder")
    ]
    smb_conf.write_text("\n".join(kept) + "\n")
    for sub in ("run", "cache"):
        (target / sub).mkdir(parents=True, exist_ok=True)
    return smb_conf


def _start_in(index: int, smb_conf: Path, target: Path) -> int:
    _in_ns(NAMESPACES[index], ["samba", "-D", "-s", str(smb_conf)], f"samba {HOSTS[index]}")
    with in_namespace(NAMESPACES[index]):
        return wait_ready(target / "run" / "samba.pid", target / "log.samba", ADDRESSES[index])


def start_pair() -> SambaPair:
    """Provision DC1, join DC2, converge once; on any failure everything started is undone."""
    samba_dc.check_tools()
    samba_dc.acquire_exclusive("samba-pair")
    base = Path(tempfile.mkdtemp(prefix="remediate-samba-pair-"))
    started: list[int] = []
    try:
        return _start_pair(base, started)
    except BaseException:
        for pid in started:
            samba_dc.stop_pid(pid)
        stop_pair(None)
        shutil.rmtree(base, ignore_errors=True)
        raise


def _start_pair(base: Path, started: list[int]) -> SambaPair:
    password = samba_dc.new_password()
    empty = base / "empty.conf"
    empty.write_text("")
    _networks()
    dc1, dc2 = base / HOSTS[0], base / HOSTS[1]
    _in_ns(
        NAMESPACES[0],
        [
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
            f"--host-name={HOSTS[0]}",
            f"--host-ip={ADDRESSES[0]}",
            f"--targetdir={dc1}",
            *_options(dc1, "vsdc1"),
        ],
        "provision ndc1",
    )
    conf1 = _after_provision(dc1)
    samba_dc.extend_schema(base, dc1, f"CN=Schema,CN=Configuration,{BASE_DN}")
    _in_ns(NAMESPACES[0], ["samba_spnupdate", "-s", str(conf1)], "samba_spnupdate ndc1")
    started.append(_start_in(0, conf1, dc1))
    _in_ns(
        NAMESPACES[1],
        [
            "samba-tool",
            "domain",
            "join",
            REALM.lower(),
            "DC",
            f"-U{DOMAIN}\\Administrator%{password}",
            f"--server={ADDRESSES[0]}",
            f"--targetdir={dc2}",
            "--dns-backend=SAMBA_INTERNAL",
            "-s",
            str(empty),
            f"--option=netbios name={HOSTS[1].upper()}",
            *_options(dc2, "vsdc2"),
        ],
        "join ndc2",
    )
    conf2 = _after_provision(dc2)
    started.append(_start_in(1, conf2, dc2))
    ca_file = base / "cas.pem"
    ca_file.write_text(
        "".join((base / host / "private" / "tls" / "ca.pem").read_text() for host in HOSTS)
    )
    pair = SambaPair(
        base,
        password,
        ca_file,
        (started[0], started[1]),
        (f"{HOSTS[0].upper()}.{REALM.lower()}", f"{HOSTS[1].upper()}.{REALM.lower()}"),
        ADDRESSES,
    )
    # Each DC pulls once from the other, so each is in the other's repsTo (no KCC needed:
    # the tests trigger every replication themselves).
    pair.replicate(1, 0)
    pair.replicate(0, 1)
    return pair


def stop_pair(pair: SambaPair | None, release: bool = True) -> None:
    """Stop both DCs by PID, remove the namespaces, their /etc/netns files and the files."""
    if pair is not None:
        for pid in pair.pids:
            samba_dc.stop_pid(pid)
        shutil.rmtree(pair.base, ignore_errors=True)
    for namespace in NAMESPACES:
        if Path(f"/run/netns/{namespace}").exists():
            subprocess.run(["ip", "netns", "del", namespace], check=False)
        shutil.rmtree(Path("/etc/netns") / namespace, ignore_errors=True)
    if Path("/sys/class/net/vsdc1").exists():  # a setup killed before the move
        subprocess.run(["ip", "link", "del", "vsdc1"], check=False)
    if release:
        samba_dc.release_exclusive("samba-pair")
