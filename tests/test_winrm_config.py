"""``[[exchange]]`` inventory entries: defaults, and errors that name the file, the key and what
is expected. Passwords only from an environment variable or a prompt, never in the file."""

from __future__ import annotations

from pathlib import Path

import pytest

from remediate.adapters.winrm import load_exchange_servers
from remediate.errors import InputError
from remediate.model import ExchangeVersion

pytestmark = pytest.mark.winrm


def inventory(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "inventory.toml"
    path.write_text(body, encoding="utf-8")
    return path


def test_an_entry_with_defaults(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "ca.pem").write_text("-----BEGIN CERTIFICATE-----\n")
    path = inventory(tmp_path, """
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
""")
    first, second = load_exchange_servers(path)
    assert (first.server, first.version, first.transport, first.url) == (
        "EXCH01", ExchangeVersion.E2003, "ntlm", "http://exch01.corp.example:5985/wsman")
    assert first.ca_file is None
    monkeypatch.setenv("EXCH_PW", "s3cret")
    assert first.password() == "s3cret"
    assert "s3cret" not in repr(first)
    assert (second.server, second.scheme, second.port) == ("MAIL2", "https", 5986)
    assert second.ca_file == tmp_path / "ca.pem"


def test_a_missing_password_variable_says_which(tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("EXCH_PW", raising=False)
    path = inventory(tmp_path, """[[exchange]]
host = "exch01"
version = "2016"
identity = "svc"
password_env = "EXCH_PW"
""")
    (config,) = load_exchange_servers(path)
    with pytest.raises(InputError, match=r"EXCH_PW is not set.*export EXCH_PW"):
        config.password()


BASE = 'host = "exch01"\nversion = "2016"\nidentity = "svc"\npassword_env = "PW"\n'


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
