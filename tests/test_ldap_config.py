"""The inventory's [directory] table: validated with errors that name the file and the key, the
password only from the environment or a prompt, and a working adapter on Samba."""

from __future__ import annotations

from pathlib import Path

import pytest
from directory_backends import SAMBA_DC_NAME, directory_section
from samba_dc import SambaDC

from remediate.adapters.ldap import TlsMode
from remediate.adapters.ldap.config import load_directory_config
from remediate.errors import InputError
from remediate.model import UserQuery

MINIMAL = """
[directory]
domain = "corp.example"
base_dn = "DC=corp,DC=example"
bind_user = "svc@corp.example"
password_env = "REMEDIATE_TEST_AD_PASSWORD"
"""


def inventory(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "inventory.toml"
    path.write_text(text)
    return path


def test_a_minimal_table_takes_the_safe_defaults(tmp_path: Path) -> None:
    config = load_directory_config(inventory(tmp_path, MINIMAL))
    assert config.tls_mode is TlsMode.LDAPS
    assert config.verify_certificate
    assert config.dcs is None and config.ca_file is None


@pytest.mark.security
@pytest.mark.parametrize(
    ("extra", "key", "expected"),
    [
        ('tls_mode = "none"', "tls_mode", "starttls"),
        ('ca_file = "missing.pem"', "ca_file", "does not exist"),
        ("dcs = []", "dcs", "non-empty list"),
        ('dcs = ["dc1"]\nwritable_dc = "dc2"', "writable_dc", "one of the dcs"),
        ("page_size = 5000", "page_size", "1 to 1000"),
        ("receive_timeout_s = -1", "receive_timeout_s", "positive"),
        ("verify_certificate = 0", "verify_certificate", "true or false"),
        ("colour = 1", "colour", "known keys"),
        ('password = "hunter2"', "password", "never read from the inventory"),
    ],
)
def test_a_bad_value_names_the_file_the_key_and_what_is_expected(
    tmp_path: Path, extra: str, key: str, expected: str
) -> None:
    path = inventory(tmp_path, MINIMAL + extra + "\n")
    with pytest.raises(InputError) as refused:
        load_directory_config(path)
    message = str(refused.value)
    assert str(path) in message
    assert f"[directory] {key}" in message
    assert expected in message
    assert "hunter2" not in message


def test_a_missing_table_or_key_is_named(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no \\[directory\\] table"):
        load_directory_config(inventory(tmp_path, "[exchange]\n"))
    without_base = MINIMAL.replace('base_dn = "DC=corp,DC=example"\n', "")
    with pytest.raises(InputError, match=r"base_dn: expected .* \(missing\)"):
        load_directory_config(inventory(tmp_path, without_base))
    no_password = MINIMAL.replace('password_env = "REMEDIATE_TEST_AD_PASSWORD"\n', "")
    with pytest.raises(InputError, match="password_env"):
        load_directory_config(inventory(tmp_path, no_password))


def test_the_password_comes_from_the_named_variable_or_a_prompt(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = load_directory_config(inventory(tmp_path, MINIMAL))
    monkeypatch.delenv("REMEDIATE_TEST_AD_PASSWORD", raising=False)
    with pytest.raises(InputError, match="REMEDIATE_TEST_AD_PASSWORD is not set"):
        config.password()
    monkeypatch.setenv("REMEDIATE_TEST_AD_PASSWORD", "from-env")
    assert config.password() == "from-env"
    prompted = MINIMAL.replace(
        'password_env = "REMEDIATE_TEST_AD_PASSWORD"', "password_prompt = true"
    )
    asked: list[str] = []
    config = load_directory_config(inventory(tmp_path, prompted))

    def typed(text: str) -> str:
        asked.append(text)
        return "typed"

    assert config.password(typed) == "typed"
    assert asked == ["Password for svc@corp.example: "]


@pytest.mark.samba
def test_an_inventory_connects_to_the_samba_dc(
    samba_dc: SambaDC, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REMEDIATE_TEST_AD_PASSWORD", samba_dc.password)
    path = inventory(tmp_path, directory_section(samba_dc, extra='tls_mode = "starttls"'))
    config = load_directory_config(path)
    directory = config.connect(prompt=lambda text: pytest.fail("must not prompt"))
    assert directory.domain_controllers() == [SAMBA_DC_NAME]
    assert directory.find_users(UserQuery(sam_account_names=frozenset({"Administrator"})))
    directory.close()
