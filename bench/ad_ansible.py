"""Benchmark: deleting users on a Samba AD DC through kb842101 vs Ansible's
community.general.ldap_entry with ``state: absent``.

    python bench/ad_ansible.py [--users 1000] [--rounds 2]

Root, Samba installed (scripts/install-samba.sh). On first use it installs what Ansible needs:
Debian's libldap2-dev and libsasl2-dev (python-ldap builds against them) and, into its own venv
(/tmp/remediate-bench-ansible), ``ansible`` (ansible-core with community.general) and
python-ldap from PyPI. Each round creates users/rounds users in two fresh OUs; kb842101 deletes
one OU's users (apply: discovery, rehearsal, LDIF backups, deletes, replication wait, verify),
ansible-playbook the other's (one ldap_entry task looping over their DNs, on localhost with
connection local), the order alternating between rounds. Ansible binds over LDAPS with the DC's
CA and checks its name (the ansible process alone resolves it to 127.0.0.1, through a private
mount namespace with its own /etc/hosts); the password reaches it in an environment variable.
Reports both totals and their ratio (target: the playbook at least 20 times faster).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import ldap3
from ad_support import SAMBA_DC_NAME, populate, quiet, samba_dc, samba_directory, with_playbook

from remediate.engine.runner import Engine

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
        raise RuntimeError(f"{what} failed (exit {done.returncode}):\n"
                           f"{done.stdout[-3000:]}\n{done.stderr[-3000:]}")


def ensure_ansible() -> Path:
    """The venv's python, with ansible-core, community.general and python-ldap."""
    python = VENV / "bin" / "python"
    probe = [str(python), "-c", "import ldap, ansible_collections.community.general"]
    if python.exists() and subprocess.run(probe, capture_output=True, check=False).returncode == 0:
        return python
    if not Path("/usr/include/lber.h").exists():
        run(["apt-get", "update", "-qq"], "apt-get update")
        run(["apt-get", "install", "-y", "-qq", "libldap2-dev", "libsasl2-dev", "gcc"],
            "apt-get install", env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"})
    if not python.exists():
        run([sys.executable, "-m", "venv", str(VENV)], "python -m venv")
    run([str(python), "-m", "pip", "install", "-q", "ansible", "python-ldap"], "pip install")
    run(probe, "importing python-ldap and community.general")
    return python


def with_ansible(python: Path, dc: samba_dc.SambaDC, dns: list[str], work: Path) -> float:
    """Seconds for ansible-playbook deleting ``dns``, one ldap_entry call per DN."""
    (work / "dns.json").write_text(json.dumps(dns))
    (work / "delete.yml").write_text(PLAYBOOK % {
        "server": dc.server_name.lower(), "bind_dn": dc.bind_user, "ca_file": dc.ca_file,
        "dns": work / "dns.json",
    })
    (work / "inventory").write_text(
        f"localhost ansible_connection=local ansible_python_interpreter={python}\n"
    )
    hosts = work / "hosts"
    hosts.write_text(Path("/etc/hosts").read_text() + f"\n{dc.host} {dc.server_name.lower()}\n")
    env = {**os.environ, "BENCH_LDAP_PASSWORD": dc.password, "ANSIBLE_NOCOLOR": "1",
           "ANSIBLE_LOCAL_TEMP": str(work / "tmp"), "ANSIBLE_PIPELINING": "1"}
    command = [
        "unshare", "--mount", "--propagation", "private", "sh", "-c",
        'mount --bind "$0" /etc/hosts && exec "$@"', str(hosts),
        str(python.parent / "ansible-playbook"), "-i", str(work / "inventory"),
        str(work / "delete.yml"),
    ]
    start = time.perf_counter()
    run(command, "ansible-playbook", env=env, cwd=work)
    return time.perf_counter() - start


def remaining(connection: ldap3.Connection, ou: str) -> int:
    _, _, response, _ = connection.search(ou, "(objectClass=user)", attributes=["cn"])
    return sum(1 for entry in response or [] if entry.get("type") == "searchResEntry")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--users", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    quiet()
    python = ensure_ansible()
    per_round = args.users // args.rounds
    dc = samba_dc.start()
    work = Path(tempfile.mkdtemp(prefix="remediate-bench-ansible-"))
    try:
        directory = samba_directory(dc)
        setup = samba_directory(dc).connection(SAMBA_DC_NAME)  # apart: the runs reconnect
        playbook_s = ansible_s = 0.0
        engine = Engine(state_dir=work / "state")
        for number in range(args.rounds):
            with_kb = populate(setup, dc.base_dn, f"kb{number}", per_round)
            with_ans = populate(setup, dc.base_dn, f"ans{number}", per_round)
            dns = [f"CN=ans{number} user {user},{with_ans}" for user in range(per_round)]
            order = ("kb", "ansible") if number % 2 == 0 else ("ansible", "kb")
            for which in order:
                if which == "kb":
                    playbook_s += with_playbook(directory, engine, with_kb)[0]
                else:
                    ansible_s += with_ansible(python, dc, dns, work)
            assert remaining(setup, with_kb) == remaining(setup, with_ans) == 0
        print(json.dumps({
            "users_deleted_each_way": per_round * args.rounds,
            "rounds": args.rounds,
            "playbook_s": round(playbook_s, 2),
            "ansible_ldap_entry_s": round(ansible_s, 2),
            "ansible_per_user_ms": round(1000 * ansible_s / (per_round * args.rounds), 1),
            "speedup": round(ansible_s / playbook_s, 1),
        }, indent=1))
    finally:
        samba_dc.stop(dc)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
