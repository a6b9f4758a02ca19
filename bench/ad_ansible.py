"""Benchmark: deleting users on a Samba AD DC through kb842101 vs Ansible's
community.general.ldap_entry with ``state: absent``.

    python bench/ad_ansible.py [--users 1000] [--rounds 1]

Root, Samba installed (scripts/install-samba.sh). On first use it installs what Ansible needs:
Debian's libldap2-dev and libsasl2-dev (python-ldap builds against them) and, into its own venv
(/tmp/remediate-bench-ansible), ``ansible`` (ansible-core with community.general) and
python-ldap from PyPI. Each round creates --users users in each of two fresh OUs (the same
meaning as in bench/ad_delete.py); kb842101 deletes one OU's users in one apply (discovery,
rehearsal, LDIF backups, deletes, replication wait, verify), ansible-playbook the other's (one
ldap_entry task looping over their DNs, on localhost with connection local), the order
alternating between rounds. Ansible binds over LDAPS with the DC's
CA and checks its name (the ansible process alone resolves it to 127.0.0.1, through a private
mount namespace with its own /etc/hosts); the password reaches it in an environment variable.
Reports both totals and their ratio (target: the playbook at least 20 times faster).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import ldap3
from ad_support import (
    SAMBA_DC_NAME,
    alternate,
    populate,
    quiet,
    round_arguments,
    samba_dc,
    samba_directory,
    total,
    with_playbook,
)

from remediate.engine.runner import Engine
from remediate.gcpolicy import program_collector

VENV = Path("/tmp/remediate-bench-ansible")
PLAYBOOK = """\
- hosts: localhost
  gather_facts: false
  tasks:
    - name: delete the users
      community.general.ldap_entry:
        dn: "{{ item }}"
        state: absent
        server_uri: "ldaps://%(server)s:636"
        bind_dn: "%(bind_dn)s"
        bind_pw: "{{ lookup('ansible.builtin.env', 'BENCH_LDAP_PASSWORD') }}"
        ca_path: "%(ca_file)s"
        validate_certs: true
      loop: "{{ lookup('ansible.builtin.file', '%(dns)s') | from_json }}"
"""


def run(command: list[str], what: str, **kwargs: object) -> None:
    done = subprocess.run(command, capture_output=True, text=True, check=False, **kwargs)  # type: ignore[call-overload]
    if done.returncode != 0:
        raise RuntimeError(
            f"{what} failed (exit {done.returncode}):\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
        )


def ensure_ansible() -> Path:
    """The venv's python, with ansible-core, community.general and python-ldap."""
    python = VENV / "bin" / "python"
    probe = [str(python), "-c", "import ldap, ansible_collections.community.general"]
    if python.exists() and subprocess.run(probe, capture_output=True, check=False).returncode == 0:
        return python
    if not Path("/usr/include/lber.h").exists():
        run(["apt-get", "update", "-qq"], "apt-get update")
        run(
            ["apt-get", "install", "-y", "-qq", "libldap2-dev", "libsasl2-dev", "gcc"],
            "apt-get install",
            env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"},
        )
    if not python.exists():
        run([sys.executable, "-m", "venv", str(VENV)], "python -m venv")
    run([str(python), "-m", "pip", "install", "-q", "ansible", "python-ldap"], "pip install")
    run(probe, "importing python-ldap and community.general")
    return python


def with_ansible(python: Path, dc: samba_dc.SambaDC, dns: list[str], work: Path) -> float:
    """Seconds for ansible-playbook deleting ``dns``, one ldap_entry call per DN."""
    (work / "dns.json").write_text(json.dumps(dns))
    (work / "delete.yml").write_text(
        PLAYBOOK
        % {
            "server": dc.server_name.lower(),
            "bind_dn": dc.bind_user,
            "ca_file": dc.ca_file,
            "dns": work / "dns.json",
        }
    )
    (work / "inventory").write_text(
        f"localhost ansible_connection=local ansible_python_interpreter={python}\n"
    )
    hosts = work / "hosts"
    hosts.write_text(Path("/etc/hosts").read_text() + f"\n{dc.host} {dc.server_name.lower()}\n")
    env = {
        **os.environ,
        "BENCH_LDAP_PASSWORD": dc.password,
        "ANSIBLE_NOCOLOR": "1",
        "ANSIBLE_LOCAL_TEMP": str(work / "tmp"),
        "ANSIBLE_PIPELINING": "1",
    }
    command = [
        "unshare",
        "--mount",
        "--propagation",
        "private",
        "sh",
        "-c",
        'mount --bind "$0" /etc/hosts && exec "$@"',
        str(hosts),
        str(python.parent / "ansible-playbook"),
        "-i",
        str(work / "inventory"),
        str(work / "delete.yml"),
    ]
    start = time.perf_counter()
    run(command, "ansible-playbook", env=env, cwd=work)
    return time.perf_counter() - start


def remaining(connection: ldap3.Connection, ou: str) -> int:
    _, _, response, _ = connection.search(ou, "(objectClass=user)", attributes=["cn"])
    return sum(1 for entry in response or [] if entry.get("type") == "searchResEntry")


def main() -> None:
    args = round_arguments(__doc__.split("\n")[0], rounds=1)
    quiet()
    python = ensure_ansible()
    dc = samba_dc.start()
    work = Path(tempfile.mkdtemp(prefix="remediate-bench-ansible-"))
    try:
        directory = samba_directory(dc)
        engine = Engine(state_dir=work / "state")

        def setup() -> ldap3.Connection:
            """A connection of its own, opened when needed: Samba closes one left idle for 15
            minutes, as long as Ansible takes."""
            return samba_directory(dc).connection(SAMBA_DC_NAME)

        def emptied(ou: str, seconds: float) -> float:
            assert remaining(setup(), ou) == 0, f"{ou} still holds users"
            return seconds

        def playbook(number: int) -> float:
            ou = populate(setup(), dc.base_dn, f"kb{number}", args.users)
            return emptied(ou, with_playbook(directory, engine, ou)[0])

        def ansible(number: int) -> float:
            ou = populate(setup(), dc.base_dn, f"ans{number}", args.users)
            dns = [f"CN=ans{number} user {user},{ou}" for user in range(args.users)]
            return emptied(ou, with_ansible(python, dc, dns, work))

        rounds = alternate(args.rounds, {"playbook": playbook, "ansible": ansible})
        for one in rounds:
            one["speedup"] = round(float(one["ansible_s"]) / float(one["playbook_s"]), 1)
        playbook_s, ansible_s = total(rounds, "playbook"), total(rounds, "ansible")
        deleted = args.users * args.rounds
        print(
            json.dumps(
                {
                    "users_per_round": args.users,
                    "users_deleted_each_way": deleted,
                    "rounds": args.rounds,
                    "playbook_s": playbook_s,
                    "ansible_ldap_entry_s": ansible_s,
                    "ansible_per_user_ms": round(1000 * ansible_s / deleted, 1),
                    "speedup": round(ansible_s / playbook_s, 1),
                    "each_round": rounds,
                },
                indent=1,
            )
        )
    finally:
        samba_dc.stop(dc)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    with program_collector():  # as the command line runs
        main()
