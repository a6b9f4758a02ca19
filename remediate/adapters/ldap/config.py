"""The inventory's ``[directory]`` table (TOML), validated, and the adapter it describes.

    [directory]
    domain = "corp.example"
    base_dn = "DC=corp,DC=example"
    bind_user = "svc-remediate@corp.example"     # simple bind, over TLS only
    password_env = "REMEDIATE_AD_PASSWORD"       # or: password_prompt = true
    tls_mode = "ldaps"                           # or "starttls"
    ca_file = "corp-ca.pem"                      # optional (default: the system's CAs);
                                                 # relative to the inventory file
    dcs = ["dc1.corp.example"]                   # optional: discovered when absent
    writable_dc = "dc1.corp.example"             # optional: the DC pinned for writes
    [directory.addresses]                        # optional: dial an address for a DC name
    "dc1.corp.example" = "10.0.0.5"              # (the certificate is checked against the name)

The password itself never appears in the file, on the command line or in a log.
"""

from __future__ import annotations

import getpass
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from remediate.dn import normalize
from remediate.errors import InputError
from remediate.inventoryfile import read_inventory

from .connection import ConnectionSettings, TlsMode
from .directory import LdapDirectory

_OPTIONAL_NUMBERS = {"connect_timeout_s": 10.0, "receive_timeout_s": 60.0}
_KEYS = frozenset(
    {
        "domain",
        "base_dn",
        "bind_user",
        "password_env",
        "password_prompt",
        "tls_mode",
        "ca_file",
        "verify_certificate",
        "dcs",
        "writable_dc",
        "addresses",
        "page_size",
        *_OPTIONAL_NUMBERS,
    }
)


@dataclass(frozen=True)
class DirectoryConfig:
    domain: str
    base_dn: str
    bind_user: str
    password_env: str | None
    tls_mode: TlsMode
    ca_file: Path | None
    verify_certificate: bool = True
    dcs: tuple[str, ...] | None = None
    writable_dc: str | None = None
    addresses: dict[str, str] = field(default_factory=dict)
    page_size: int = 1000
    connect_timeout_s: float = 10.0
    receive_timeout_s: float = 60.0

    def password(self, prompt: Callable[[str], str] = getpass.getpass) -> str:
        """From the environment variable named in the file, else asked for at the terminal."""
        if self.password_env is not None:
            value = os.environ.get(self.password_env)
            if not value:
                raise InputError(
                    f"the environment variable {self.password_env} is not set or empty",
                    target="[directory] password_env",
                    hint=f"export {self.password_env} before running, or set password_prompt",
                )
            return value
        return prompt(f"Password for {self.bind_user}: ")

    def connect(self, prompt: Callable[[str], str] = getpass.getpass) -> LdapDirectory:
        settings = ConnectionSettings(
            bind_user=self.bind_user,
            password=self.password(prompt),
            tls_mode=self.tls_mode,
            ca_file=self.ca_file,
            verify_certificate=self.verify_certificate,
            addresses=dict(self.addresses),
            connect_timeout_s=self.connect_timeout_s,
            receive_timeout_s=self.receive_timeout_s,
        )
        return LdapDirectory(
            settings,
            domain=self.domain,
            base_dn=self.base_dn,
            dcs=list(self.dcs) if self.dcs else None,
            writable_dc=self.writable_dc,
            page_size=self.page_size,
        )


class _Reader:
    """Typed access to one TOML table, every error naming the file, the key and what is
    expected."""

    def __init__(self, source: Path, table: Mapping[str, Any]) -> None:
        self.source = source
        self.table = table

    def error(self, key: str, expected: str) -> InputError:
        got = self.table.get(key)
        shown = "missing" if key not in self.table else f"got {got!r}"
        return InputError(
            f"[directory] {key}: expected {expected} ({shown})",
            target=str(self.source),
            hint="fix the inventory file and try again",
        )

    def text(self, key: str, expected: str, *, required: bool = True) -> str | None:
        value = self.table.get(key)
        if value is None and not required:
            return None
        if not isinstance(value, str) or not value.strip():
            raise self.error(key, expected)
        return value

    def flag(self, key: str, default: bool) -> bool:
        value = self.table.get(key, default)
        if not isinstance(value, bool):
            raise self.error(key, "true or false")
        return value

    def number(self, key: str, default: float) -> float:
        value = self.table.get(key, default)
        if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
            raise self.error(key, "a positive number")
        return float(value)


def load_directory_config(path: Path) -> DirectoryConfig:
    """Read and check the ``[directory]`` table of the inventory at ``path``."""
    table = read_inventory(path).get("directory")
    if not isinstance(table, dict):
        raise InputError(
            "no [directory] table",
            target=str(path),
            hint="add a [directory] table (see the README)",
        )
    return parse_directory_table(table, path)


def parse_directory_table(table: Mapping[str, Any], source: Path) -> DirectoryConfig:
    read = _Reader(source, table)
    if "password" in table:
        raise InputError(
            "[directory] password: a password is never read from the inventory",
            target=str(source),
            hint="name an environment variable in password_env, or set password_prompt = true",
        )
    unknown = sorted(set(table) - _KEYS)
    if unknown:
        raise read.error(unknown[0], f"one of the known keys {', '.join(sorted(_KEYS))}")
    base_dn = read.text("base_dn", 'the domain\'s DN, e.g. "DC=corp,DC=example"') or ""
    try:
        normalize(base_dn)
    except ValueError:
        raise read.error("base_dn", 'a DN, e.g. "DC=corp,DC=example"') from None
    password_env = read.text("password_env", "an environment variable name", required=False)
    if password_env is None and not read.flag("password_prompt", False):
        raise read.error("password_env", "an environment variable name (or password_prompt)")
    mode = table.get("tls_mode", TlsMode.LDAPS.value)
    if mode not in {m.value for m in TlsMode}:
        raise read.error("tls_mode", '"ldaps" or "starttls" (a bind without TLS is refused)')
    ca_text = read.text("ca_file", "a path to a PEM file of CA certificates", required=False)
    ca_file = None
    if ca_text is not None:
        ca_file = (source.parent / ca_text).resolve()
        if not ca_file.is_file():
            raise read.error("ca_file", f"an existing PEM file ({ca_file} does not exist)")
    dcs = _dcs(read)
    writable_dc = read.text("writable_dc", "a DC's DNS name", required=False)
    if dcs and writable_dc and writable_dc not in dcs:
        raise read.error("writable_dc", f"one of the dcs ({', '.join(dcs)})")
    page_size = read.number("page_size", 1000)
    if page_size != int(page_size) or not 1 <= page_size <= 1000:
        raise read.error("page_size", "a whole number from 1 to 1000 (AD's MaxPageSize)")
    return DirectoryConfig(
        domain=read.text("domain", 'the domain\'s DNS name, e.g. "corp.example"') or "",
        base_dn=base_dn,
        bind_user=read.text("bind_user", "a user principal name or DN to bind as") or "",
        password_env=password_env,
        tls_mode=TlsMode(mode),
        ca_file=ca_file,
        verify_certificate=read.flag("verify_certificate", True),
        dcs=dcs,
        writable_dc=writable_dc,
        addresses=_addresses(read),
        page_size=int(page_size),
        **{key: read.number(key, default) for key, default in _OPTIONAL_NUMBERS.items()},
    )


def _dcs(read: _Reader) -> tuple[str, ...] | None:
    value = read.table.get("dcs")
    if value is None:
        return None
    if (
        not isinstance(value, list)
        or not value
        or not all(isinstance(item, str) and item for item in value)
    ):
        raise read.error("dcs", "a non-empty list of DC names (or no dcs key: discover them)")
    return tuple(value)


def _addresses(read: _Reader) -> dict[str, str]:
    value = read.table.get("addresses", {})
    if not isinstance(value, dict) or not all(
        isinstance(k, str) and isinstance(v, str) and v for k, v in value.items()
    ):
        raise read.error("addresses", 'a table of DC name = "address"')
    return dict(value)
