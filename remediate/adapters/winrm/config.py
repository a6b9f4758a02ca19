r"""``[[exchange]]`` entries of the inventory (TOML): how to reach each Exchange server.

```toml
[[exchange]]
host = "exch01.corp.example"
name = "EXCH01"                 # optional (default: host up to the first dot, upper-case)
version = "2016"
transport = "ntlm"              # ntlm (default) | kerberos | credssp | basic (HTTPS only)
kerberos_delegation = false     # kerberos only: forward the ticket so the server can reach AD
scheme = "https"                # http | https (default: https for basic and credssp, else http)
port = 5986                     # default 5985 for http, 5986 for https
identity = "CORP\\svc-remediate"
password_env = "REMEDIATE_EXCH_PASSWORD"   # or: password_prompt = true
ca_file = "/etc/remediate/corp-ca.pem"     # certificate validation is always on for https
export_directory = '\\fs01\pst$\remediate'  # where exports go; see below
```

``export_directory``: Exchange 2010 and later (``New-MailboxExportRequest`` and
``New-MailboxImportRequest``) take only a UNC path (``\\server\share\...``) on a share that the
Exchange Trusted Subsystem group can read and write, so for them it is required and must be
one. ExMerge (2000/2003) runs on the server itself and writes a local path (default
``C:\remediate\exports``); Exchange 2007 exports nothing through remediate.

Secrets never come from the file or the command line: only from the named environment variable
or a prompt, and they are never logged.
"""

from __future__ import annotations

import getpass
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, cast

from remediate.errors import InputError
from remediate.inventoryfile import read_inventory
from remediate.model import ExchangeVersion, line_unsafe

Transport = Literal["ntlm", "kerberos", "credssp", "basic"]
TRANSPORTS: tuple[Transport, ...] = ("ntlm", "kerberos", "credssp", "basic")
LOCAL_EXPORT_DIRECTORY = "C:\\remediate\\exports"  # ExMerge's default (2000/2003)
_UNC = re.compile(r"\\\\[^\\/?.:*\"<>|][^\\/:*?\"<>|]*\\[^\\/:*?\"<>|]+(\\.*)?")
_KEYS = {
    "host",
    "name",
    "version",
    "transport",
    "scheme",
    "port",
    "identity",
    "password_env",
    "password_prompt",
    "ca_file",
    "export_directory",
    "operation_timeout_s",
    "deadline_s",
    "kerberos_delegation",
}


@dataclass(frozen=True, slots=True)
class ServerConfig:
    """One Exchange server and how to reach it over WinRM."""

    host: str
    version: ExchangeVersion
    identity: str
    password: Callable[[], str] = field(repr=False, compare=False)
    name: str = ""
    transport: Transport = "ntlm"
    kerberos_delegation: bool = False  # forward the TGT (the double hop, with Kerberos)
    scheme: Literal["http", "https"] = "http"
    port: int = 5985
    ca_file: Path | None = None
    export_directory: str = ""  # "": ExMerge's local default (2000-2007); 2010+ need a UNC path
    operation_timeout_s: int = 20  # one WS-Management Receive
    deadline_s: float = 3600.0  # one whole script, however many Receives it takes

    def __post_init__(self) -> None:
        """Every construction (the inventory, or code) gets the same checks."""
        if not self.export_directory and not needs_unc_export_directory(self.version):
            object.__setattr__(self, "export_directory", LOCAL_EXPORT_DIRECTORY)
        problem = _export_directory_problem(self.export_directory, self.version)
        if problem is not None:
            raise InputError(
                f"export_directory ({self.host}, Exchange {self.version.value}) {problem}",
                hint="write a share that the Exchange Trusted Subsystem group can read and "
                "write, as a TOML literal string, e.g. export_directory = "
                "'\\\\fs01\\pst$\\remediate'"
                if needs_unc_export_directory(self.version)
                else "write the directory's path as it is, e.g. export_directory = "
                f"'{LOCAL_EXPORT_DIRECTORY}'",
            )

    @property
    def server(self) -> str:
        return self.name or self.host.split(".", 1)[0].upper()

    @property
    def url(self) -> str:
        return f"{self.scheme}://{self.host}:{self.port}/wsman"


def load_exchange_servers(path: Path) -> list[ServerConfig]:
    """Every ``[[exchange]]`` entry of an inventory file, validated."""
    entries = read_inventory(path).get("exchange", [])
    if not isinstance(entries, list):
        raise _bad(path, "exchange", "an array of tables: [[exchange]]")
    return [parse_entry(entry, path, index) for index, entry in enumerate(entries)]


def _bad(path: Path, key: str, expected: str) -> InputError:
    return InputError(
        f"{key}: expected {expected}", target=str(path), hint="fix the inventory and try again"
    )


def parse_entry(
    entry: object, path: Path, index: int, *, environ: Mapping[str, str] | None = None
) -> ServerConfig:
    where = f"exchange[{index}]"
    if not isinstance(entry, dict):
        raise _bad(path, where, "a table")
    if "password" in entry:
        raise _bad(
            path,
            f"{where}.password",
            "no password in the inventory: name an environment "
            "variable with password_env, or set password_prompt = true",
        )
    unknown = sorted(set(entry) - _KEYS)
    if unknown:
        raise _bad(path, f"{where}.{unknown[0]}", "one of " + ", ".join(sorted(_KEYS)))

    def text(key: str, default: str | None = None) -> str:
        value = entry.get(key, default)
        if not isinstance(value, str) or not value.strip():
            raise _bad(path, f"{where}.{key}", "a non-empty string")
        return value

    host = text("host")
    try:
        version = ExchangeVersion(str(entry.get("version")))
    except ValueError:
        raise _bad(
            path, f"{where}.version", "one of " + ", ".join(v.value for v in ExchangeVersion)
        ) from None
    transport = text("transport", "ntlm").lower()
    if transport not in TRANSPORTS:
        raise _bad(path, f"{where}.transport", "one of " + ", ".join(TRANSPORTS))
    secure_only = transport in ("basic", "credssp")
    scheme = text("scheme", "https" if secure_only else "http").lower()
    if scheme not in ("http", "https"):
        raise _bad(path, f"{where}.scheme", '"http" or "https"')
    if secure_only and scheme != "https":
        raise _bad(
            path,
            f"{where}.scheme",
            f'"https" with transport {transport} (it would send the password in clear)',
        )
    port = entry.get("port", 5986 if scheme == "https" else 5985)
    if not isinstance(port, int) or isinstance(port, bool) or not 0 < port < 65536:
        raise _bad(path, f"{where}.port", "an integer from 1 to 65535")
    ca_file = None
    if "ca_file" in entry:
        ca_file = Path(text("ca_file"))
        if not ca_file.is_absolute():
            ca_file = path.parent / ca_file
        if not ca_file.is_file():
            raise _bad(path, f"{where}.ca_file", f"an existing PEM file (no file {ca_file})")
    delegation = entry.get("kerberos_delegation", False)
    if not isinstance(delegation, bool) or (delegation and transport != "kerberos"):
        raise _bad(
            path,
            f"{where}.kerberos_delegation",
            'true or false, and true only with transport = "kerberos"',
        )
    identity = text("identity")
    password = _password_source(entry, path, where, identity=identity, host=host, environ=environ)
    name = text("name", host.split(".", 1)[0].upper())
    export_directory = _export_directory(entry, path, where)
    operation_timeout_s = _number(entry, "operation_timeout_s", 20, path, where)
    deadline_s = float(_number(entry, "deadline_s", 3600, path, where))
    try:
        return ServerConfig(
            host=host,
            version=version,
            identity=identity,
            password=password,
            name=name,
            transport=transport,
            kerberos_delegation=delegation,
            scheme=cast(Literal["http", "https"], scheme),
            port=port,
            ca_file=ca_file,
            export_directory=export_directory,
            operation_timeout_s=operation_timeout_s,
            deadline_s=deadline_s,
        )
    except InputError as error:  # ServerConfig's own checks, placed in the file
        raise InputError(f"{where}.{error.message}", target=str(path), hint=error.hint) from None


def needs_unc_export_directory(version: ExchangeVersion) -> bool:
    """Exchange 2010 and later export and import through mailbox requests, which the Mailbox
    Replication Service carries out from wherever it runs: only a UNC path reaches the file."""
    return not version.legacy and version is not ExchangeVersion.E2007


def is_unc(value: str) -> bool:
    r"""``\\server\share`` or below (not ``\\?\C:\...`` nor ``\\.\...``: local)."""
    return _UNC.fullmatch(value) is not None


def _export_directory_problem(value: str, version: ExchangeVersion) -> str | None:
    if needs_unc_export_directory(version) and not is_unc(value):
        found = "is missing" if not value else f"is {value!r}, not a UNC path"
        return (
            f"{found}: New-MailboxExportRequest/New-MailboxImportRequest write only to a UNC path"
        )
    if line_unsafe(value):
        return (
            f"is {value!r}: a path holding a line break or another control character, or "
            "beginning or ending with a blank, names another directory (or none) on the "
            "server"
        )
    return None


def _export_directory(entry: dict[str, object], path: Path, where: str) -> str:
    value = entry.get("export_directory")
    if value is not None and (not isinstance(value, str) or not value.strip()):
        raise _bad(path, f"{where}.export_directory", "a non-empty string")
    return value or ""


def _number(entry: dict[str, object], key: str, default: int, path: Path, where: str) -> int:
    value = entry.get(key, default)
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise _bad(path, f"{where}.{key}", "a whole number of seconds >= 1")
    return value


def _password_source(
    entry: dict[str, object],
    path: Path,
    where: str,
    *,
    identity: str,
    host: str,
    environ: Mapping[str, str] | None,
) -> Callable[[], str]:
    variable = entry.get("password_env")
    prompt = entry.get("password_prompt", False)
    if variable is not None and prompt:
        raise _bad(
            path, f"{where}.password_env", "either password_env or password_prompt, not both"
        )
    if variable is None:
        if prompt is not True:
            raise _bad(
                path,
                f"{where}.password_env",
                "the name of an environment variable holding the password "
                "(or password_prompt = true)",
            )
        return lambda: getpass.getpass(f"Password for {identity} on {host}: ")
    if not isinstance(variable, str) or not variable.isidentifier():
        raise _bad(
            path,
            f"{where}.password_env",
            "an environment variable name such as REMEDIATE_EXCH_PASSWORD",
        )

    def from_environment() -> str:
        value = (os.environ if environ is None else environ).get(variable)
        if not value:
            raise InputError(
                f"environment variable {variable} is not set",
                target=f"{path} {where}.password_env",
                hint=f"export {variable} with the password of {identity}",
            )
        return value

    return from_environment
