"""Distinguished names as LDAP writes them (RFC 4514 escaping), compared the way AD compares them.

A DN is a comma-separated list of RDNs, each ``type=value`` (or several joined by ``+``). Values
escape ``, + " \\ < > ; =`` with a backslash, a leading ``#`` and leading/trailing spaces too, and
any character as ``\\XX`` hex of its UTF-8 bytes (AD writes a line feed as ``\\0A``).
"""

from __future__ import annotations

import re

_SPECIAL = frozenset(',+"\\<>;=')
_HEX_OR_CHAR = re.compile(r"((?:\\[0-9A-Fa-f]{2})+)|\\(.)", re.DOTALL)
# A DN without any of these is already in normal form once lower-cased (the common case, fast).
_NOT_PLAIN = re.compile(r'[\\+"<>;#\x00-\x1f\x7f]|(?:^|[,=]) | (?:$|[,=])|(?:^|,)=')


def _escaped(text: str, index: int) -> bool:
    """Whether the character at ``index`` is escaped (preceded by an odd run of backslashes)."""
    run = 0
    while index - run - 1 >= 0 and text[index - run - 1] == "\\":
        run += 1
    return run % 2 == 1


def _split_unescaped(text: str, separator: str) -> list[str]:
    parts: list[str] = []
    start = search = 0
    while (found := text.find(separator, search)) >= 0:
        if not _escaped(text, found):
            parts.append(text[start:found])
            start = found + 1
        search = found + 1
    parts.append(text[start:])
    return parts


def split_rdns(dn: str) -> list[str]:
    """The RDNs of ``dn`` as written (still escaped), most specific first; ``""`` has none."""
    if not dn:
        return []
    return dn.split(",") if "\\" not in dn else _split_unescaped(dn, ",")


def parent_dn(dn: str) -> str:
    """``dn`` without its first RDN (``""`` for a single-RDN name)."""
    search = 0
    while (found := dn.find(",", search)) >= 0:
        if not _escaped(dn, found):
            return dn[found + 1 :]
        search = found + 1
    return ""


def _decode_hex(match: re.Match[str]) -> str:
    if match.group(1) is not None:
        raw = bytes.fromhex(match.group(1).replace("\\", ""))
        return raw.decode("utf-8")
    return match.group(2)


def unescape_value(value: str) -> str:
    """An RDN value without its escaping. Raises ValueError on hex escapes that are not UTF-8."""
    if "\\" not in value:
        return value
    try:
        return _HEX_OR_CHAR.sub(_decode_hex, value)
    except UnicodeDecodeError as error:
        raise ValueError(f"hex escapes in {value!r} are not UTF-8") from error


def _split_type_value(ava: str) -> tuple[str, str]:
    kind, sep, value = ava.partition("=")  # an attribute type never holds '=' or '\'
    if not sep or not kind.strip():
        raise ValueError(f"not a type=value pair: {ava!r}")
    return kind.strip(), value


def rdn_value(dn: str) -> str:
    """The unescaped value of the first RDN (of its first part, for a multi-valued RDN)."""
    rdns = split_rdns(dn)
    if not rdns:
        raise ValueError("an empty DN has no RDN")
    first_ava = _split_unescaped(rdns[0], "+")[0]
    return unescape_value(_strip_unescaped_spaces(_split_type_value(first_ava)[1]))


def rdn_type(dn: str) -> str:
    """The attribute type of the first RDN as written (``CN``, ``OU``, ...)."""
    rdns = split_rdns(dn)
    if not rdns:
        raise ValueError("an empty DN has no RDN")
    return _split_type_value(rdns[0])[0]


def escape_rdn_value(value: str) -> str:
    """``value`` escaped for use in a DN; ``rdn_value`` of the result gives ``value`` back."""
    out: list[str] = []
    last = len(value) - 1
    for index, char in enumerate(value):
        if char in _SPECIAL or (char == "#" and index == 0):
            out.append("\\" + char)
        elif char == " " and index in (0, last):
            out.append("\\ ")
        elif char < " " or char == "\x7f":
            out.append(f"\\{ord(char):02X}")
        else:
            out.append(char)
    return "".join(out)


def _strip_unescaped_spaces(value: str) -> str:
    """Drop the insignificant spaces around a value, keeping an escaped trailing one."""
    value = value.lstrip(" ")
    end = len(value)
    while end > 0 and value[end - 1] == " " and not _escaped(value, end - 1):
        end -= 1
    return value[:end]


def _normal_rdn(rdn: str) -> str:
    avas = []
    for ava in _split_unescaped(rdn, "+"):
        kind, value = _split_type_value(ava)
        plain = unescape_value(_strip_unescaped_spaces(value)).lower()
        avas.append(f"{kind.lower()}={escape_rdn_value(plain)}")
    return "+".join(sorted(avas))


def normalize(dn: str) -> str:
    """A canonical, case-folded form of ``dn``: equal for DNs AD considers the same object.

    Raises ValueError for text that is not a DN.
    """
    if not _NOT_PLAIN.search(dn) and dn.count("=") == (dn.count(",") + 1 if dn else 0):
        return dn.lower()
    return ",".join(_normal_rdn(rdn) for rdn in split_rdns(dn))


def is_within_normalized(dn: str, base: str) -> bool:
    """``is_within`` for names already passed through :func:`normalize`."""
    if dn == base or not base:
        return True
    cut = len(dn) - len(base) - 1
    return cut > 0 and dn.endswith(base) and dn[cut] == "," and not _escaped(dn, cut)


def is_within(dn: str, base: str) -> bool:
    """Whether ``dn`` is ``base`` or below it (``OU=A,DC=x`` is not within ``OU=AB,DC=x``)."""
    return is_within_normalized(normalize(dn), normalize(base))
