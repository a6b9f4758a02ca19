"""``[[exchange]]`` inventory entries: defaults, and errors that name the file, the key and what
is expected. Passwords only from an environment variable or a prompt, never in the file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from remediate.adapters.winrm import ServerConfig, load_exchange_servers
from remediate.errors import InputError
from remediate.model import ExchangeVersion

pytestmark = pytest.mark.winrm


def inventory(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "inventory.toml"
    path.write_text(body, encoding="utf-8")
    return path


def test_an_entry_with_defaults(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "ca.pem").write_text("-----BEGIN CERTIFICATE-----\n")
    path = inventory(
        tmp_path,
        """
[[exchange]]
host = "exch01.corp.example"
version = "2003"
identity = 'CORP\\svc'
password_env = "EXCH_PW"

[[exchange]]
host = "exch02.corp.example"
name = "MAIL2"
version = "2016"
transport = "basic"
identity = "svc@corp.example"
password_prompt = true
ca_file = "ca.pem"
export_directory = '\\\\fs01\\pst$'
""",
    )
    first, second = load_exchange_servers(path)
    assert (first.server, first.version, first.transport, first.url) == (
        "EXCH01",
        ExchangeVersion.E2003,
        "ntlm",
        "http://exch01.corp.example:5985/wsman",
    )
    assert first.ca_file is None
    monkeypatch.setenv("EXCH_PW", "s3cret")
    assert first.password() == "s3cret"
    assert "s3cret" not in repr(first)
    assert (second.server, second.scheme, second.port) == ("MAIL2", "https", 5986)
    assert second.ca_file == tmp_path / "ca.pem"
    assert not first.kerberos_delegation and not second.kerberos_delegation
    assert (first.export_directory, second.export_directory) == (
        "C:\\remediate\\exports",
        "\\\\fs01\\pst$",
    )


def test_kerberos_may_delegate_for_the_double_hop(tmp_path: Path) -> None:
    path = inventory(
        tmp_path,
        """[[exchange]]
host = "exch01"
version = "2016"
transport = "kerberos"
kerberos_delegation = true
identity = "svc@CORP.EXAMPLE"
password_env = "PW"
export_directory = '\\\\fs01\\pst$'
""",
    )
    (config,) = load_exchange_servers(path)
    assert config.transport == "kerberos" and config.kerberos_delegation


def test_a_missing_password_variable_says_which(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("EXCH_PW", raising=False)
    path = inventory(
        tmp_path,
        """[[exchange]]
host = "exch01"
version = "2016"
identity = "svc"
password_env = "EXCH_PW"
export_directory = '\\\\fs01\\pst$'
""",
    )
    (config,) = load_exchange_servers(path)
    with pytest.raises(InputError, match=r"EXCH_PW is not set.*export EXCH_PW"):
        config.password()


BASE = (
    'host = "exch01"\nversion = "2016"\nidentity = "svc"\npassword_env = "PW"\n'
    "export_directory = '\\\\fs01\\pst$'\n"
)


@pytest.mark.security
@pytest.mark.parametrize(
    ("extra", "key", "expected"),
    [
        ('version = "5.5"', "exchange[0].version", "one of 2000, 2003"),
        ('transport = "digest"', "exchange[0].transport", "one of ntlm, kerberos"),
        ('transport = "basic"\nscheme = "http"', "exchange[0].scheme", "password in clear"),
        ("port = 0", "exchange[0].port", "an integer from 1 to 65535"),
        ('ca_file = "nowhere.pem"', "exchange[0].ca_file", "an existing PEM file"),
        ('password = "hunter2"', "exchange[0].password", "no password in the inventory"),
        ('colour = "blue"', "exchange[0].colour", "one of ca_file, deadline_s"),
        ("password_prompt = true", "exchange[0].password_env", "not both"),
        ("deadline_s = 0", "exchange[0].deadline_s", "a whole number of seconds"),
        (
            "kerberos_delegation = true",
            "exchange[0].kerberos_delegation",
            'true only with transport = "kerberos"',
        ),
        (
            'transport = "kerberos"\nkerberos_delegation = "yes"',
            "exchange[0].kerberos_delegation",
            "true or false",
        ),
    ],
)
def test_errors_name_the_file_the_key_and_what_is_expected(
    tmp_path: Path, extra: str, key: str, expected: str
) -> None:
    body = BASE
    for line in extra.splitlines():
        name = line.split("=")[0].strip()
        body = "\n".join(row for row in body.splitlines() if not row.startswith(name + " "))
        body += "\n" + line
    path = inventory(tmp_path, "[[exchange]]\n" + body + "\n")
    with pytest.raises(InputError) as raised:
        load_exchange_servers(path)
    text = str(raised.value)
    assert str(path) in text and key in text and expected in text


def test_no_password_source_at_all(tmp_path: Path) -> None:
    path = inventory(tmp_path, '[[exchange]]\nhost = "h"\nversion = "2016"\nidentity = "svc"\n')
    with pytest.raises(InputError, match="password_env: expected the name of an environment"):
        load_exchange_servers(path)


def test_broken_toml_names_the_file(tmp_path: Path) -> None:
    path = inventory(tmp_path, "[[exchange]\nhost = ")
    with pytest.raises(InputError, match="not valid TOML") as raised:
        load_exchange_servers(path)
    assert str(path) in str(raised.value)


def entry(version: str, directory: str | None) -> str:
    line = "" if directory is None else f"export_directory = '{directory}'\n"
    return (
        f'[[exchange]]\nhost = "exch01.corp.example"\nversion = "{version}"\n'
        f'identity = "svc"\npassword_env = "PW"\n{line}'
    )


@pytest.mark.parametrize("version", ["2010", "2013", "2016", "2019", "SE"])
@pytest.mark.parametrize(
    ("directory", "found"),
    [
        (None, "is missing"),
        ("C:\\remediate\\exports", "is 'C:\\\\remediate\\\\exports', not a UNC path"),
        ("\\\\?\\C:\\exports", "not a UNC path"),
        ("\\\\fs01", "not a UNC path"),
        ("//fs01/pst", "not a UNC path"),
    ],
)
def test_exchange_2010_and_later_export_only_to_a_unc_path(
    tmp_path: Path, version: str, directory: str | None, found: str
) -> None:
    path = inventory(tmp_path, entry(version, directory))
    with pytest.raises(InputError) as raised:
        load_exchange_servers(path)
    text = str(raised.value)
    assert str(path) in text
    assert f"exchange[0].export_directory (exch01.corp.example, Exchange {version}) " in text
    assert found in text
    assert "export_directory = '\\\\fs01\\pst$\\remediate'" in text  # what to write


@pytest.mark.parametrize(
    ("version", "directory", "kept"),
    [
        ("2016", "\\\\fs01\\pst$\\remediate", "\\\\fs01\\pst$\\remediate"),
        ("2010", "\\\\10.0.0.5\\exports", "\\\\10.0.0.5\\exports"),
        ("2003", None, "C:\\remediate\\exports"),  # ExMerge writes on the server itself
        ("2000", "D:\\exmerge", "D:\\exmerge"),
        ("2003", "\\\\fs01\\pst$", "\\\\fs01\\pst$"),
        ("2007", None, "C:\\remediate\\exports"),  # 2007 exports nothing through remediate
    ],
)
def test_where_a_local_export_directory_is_fine(
    tmp_path: Path, version: str, directory: str | None, kept: str
) -> None:
    (config,) = load_exchange_servers(inventory(tmp_path, entry(version, directory)))
    assert config.export_directory == kept


def in_code(version: str, directory: str = "") -> ServerConfig:
    return ServerConfig(
        host="exch01.corp.example",
        version=ExchangeVersion(version),
        identity="svc",
        password=lambda: "unused",
        export_directory=directory,
    )


@pytest.mark.parametrize("version", ["2010", "2013", "2016", "2019", "SE"])
@pytest.mark.parametrize(
    ("directory", "found"),
    [
        ("", "is missing"),
        ("C:\\remediate\\exports", "is 'C:\\\\remediate\\\\exports', not a UNC path"),
        ("\\\\?\\C:\\exports", "not a UNC path"),
        ("\\\\fs01", "not a UNC path"),
    ],
)
def test_a_server_config_built_in_code_is_checked_as_the_inventory_is(
    version: str, directory: str, found: str
) -> None:
    with pytest.raises(InputError) as raised:
        in_code(version, directory)
    text = str(raised.value)
    assert f"export_directory (exch01.corp.example, Exchange {version}) is" in text
    assert found in text
    assert "export_directory = '\\\\fs01\\pst$\\remediate'" in text  # what to write


@pytest.mark.parametrize(
    ("version", "directory", "kept"),
    [
        ("2016", "\\\\fs01\\pst$\\remediate", "\\\\fs01\\pst$\\remediate"),
        ("2003", "", "C:\\remediate\\exports"),
        ("2007", "", "C:\\remediate\\exports"),
        ("2000", "D:\\exmerge", "D:\\exmerge"),
    ],
)
def test_a_server_config_built_in_code_keeps_or_defaults_its_directory(
    version: str, directory: str, kept: str
) -> None:
    assert in_code(version, directory).export_directory == kept


@pytest.mark.parametrize("version", ["2003", "2016"])
@pytest.mark.parametrize("tail", ["\n", "\r\nD:\\other", "\x00", "\u2028x", " "])
def test_an_export_directory_that_is_not_one_line_is_refused_in_code_and_in_the_file(
    tmp_path: Path, version: str, tail: str
) -> None:
    directory = ("\\\\fs01\\pst$\\remediate" if version == "2016" else "D:\\exmerge") + tail
    with pytest.raises(InputError, match=f"Exchange {version}\\) is ") as raised:
        in_code(version, directory)
    assert repr(directory) in str(raised.value)
    path = inventory(
        tmp_path,
        entry(version, "x").replace(
            "export_directory = 'x'", f"export_directory = {json.dumps(directory)}"
        ),
    )
    with pytest.raises(InputError) as in_file:
        load_exchange_servers(path)
    assert str(path) in str(in_file.value) and repr(directory) in str(in_file.value)
    assert "exchange[0].export_directory (exch01.corp.example" in str(in_file.value)
