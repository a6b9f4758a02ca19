"""remediate.dn: LDAP escaping (RFC 4514) and AD-style DN comparison."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from remediate.dn import (
    escape_rdn_value,
    is_within,
    normalize,
    parent_dn,
    rdn_value,
    split_rdns,
    unescape_value,
)

HOSTILE = [
    'Smith, "Smitty"',
    "Star *()\\",
    "\u2018Curly\u2019 \u201aQuotes\u201b",
    "$(whoami)",
    "`whoami`",
    "#Hash+Plus;Semi<Angle>=Equals",
    " leading and trailing ",
    "O'Brien, Se\u00e1n",
    "line\nfeed\x00nul",
    "x" * 300,
]


@pytest.mark.parametrize("value", HOSTILE)
def test_hostile_rdn_values_round_trip_exactly(value: str) -> None:
    dn = f"CN={escape_rdn_value(value)},OU=Migrated,DC=corp,DC=example"
    assert rdn_value(dn) == value
    assert parent_dn(dn) == "OU=Migrated,DC=corp,DC=example"
    assert len(split_rdns(dn)) == 4


@given(st.text())
def test_any_text_round_trips_through_escaping(value: str) -> None:
    assert rdn_value(f"CN={escape_rdn_value(value)},DC=x") == value
    assert unescape_value(escape_rdn_value(value)) == value


@given(st.text(alphabet='abcXYZ ,+"\\<>;=#*()$\u2018\n', min_size=1))
def test_normalize_ignores_the_case_of_types_and_values(value: str) -> None:
    lower = f"cn={escape_rdn_value(value.lower())},dc=corp"
    upper = f"CN={escape_rdn_value(value.upper())},DC=CORP"
    assert normalize(lower) == normalize(upper)
    assert normalize(lower) != normalize(f"CN={escape_rdn_value(value + 'q')},DC=CORP")


def test_split_rdns_keeps_escaped_commas_and_backslashes_inside_their_rdn() -> None:
    assert split_rdns(r"CN=Smith\, John,OU=A\\,DC=x") == [r"CN=Smith\, John", r"OU=A\\", "DC=x"]
    assert split_rdns("") == []


def test_hex_and_character_escapes_name_the_same_object() -> None:
    assert normalize(r"CN=Smith\2C John,DC=x") == normalize(r"CN=Smith\, John,DC=x")
    assert normalize(r"CN=S\C3\A1n,DC=x") == normalize("CN=S\u00e1n,DC=x")
    assert normalize("CN = Smith , DC = x") == normalize("cn=smith,dc=x")


def test_is_within_compares_whole_rdns_not_string_prefixes() -> None:
    assert is_within("OU=A,DC=x", "OU=A,DC=x")
    assert is_within("CN=u,OU=A,DC=x", "ou=a,dc=X")
    assert not is_within("OU=A,DC=x", "OU=AB,DC=x")
    assert not is_within("CN=u,OU=AB,DC=x", "OU=B,DC=x")
    # An escaped comma is part of a value, not a separator.
    assert not is_within(r"CN=x\,OU=A,DC=x", "OU=A,DC=x")
    assert is_within(r"CN=u,OU=Sales\, East,DC=x", r"OU=Sales\, East,DC=x")
    assert not is_within(r"CN=u,OU=Sales\, East,DC=x", "OU=East,DC=x")


def test_text_that_is_not_a_dn_is_a_value_error() -> None:
    for bad in ("no equals sign", "CN=a,,DC=x", "=value,DC=x"):
        with pytest.raises(ValueError):
            normalize(bad)
    with pytest.raises(ValueError):
        unescape_value(r"\FF\FE")


@given(st.lists(st.text(alphabet="aB1 -.", min_size=1), min_size=1, max_size=4))
def test_the_fast_and_the_escaping_path_of_normalize_agree(values: list[str]) -> None:
    plain = ",".join(f"OU={escape_rdn_value(value)}" for value in values)
    hexed = "".join(f"\\{byte:02X}" for byte in values[0].encode())
    escaped = ",".join([f"OU={hexed}", *split_rdns(plain)[1:]])
    assert normalize(escaped) == normalize(plain)
