"""One corpus of hostile values for every path a name or a value takes: the fakes, the Samba DC
(LDAP filters, DNs, <GUID=> names; tests/test_hostile_corpus.py) and the WinRM endpoint
(PowerShell; tests/test_winrm_transport.py, tests/test_winrm_scripts.py).

Built to break quoting: LDAP filter metacharacters (* ( ) \\ NUL) and filter injections, DN
metacharacters (, + " \\ < > ; = and a leading # or space), PowerShell's five single quotes
(' and U+2018-U+201B) and its double quotes, sub-expressions, backticks, separators, pipes,
newlines, WQL's LIKE wildcards, right-to-left and zero-width characters, non-BMP characters,
1 KB strings."""

from __future__ import annotations

_PIECES = (
    "'",
    "\u2018",
    "\u2019",
    "\u201a",
    "\u201b",
    '"',
    "\u201c",
    "\u201d",
    "\u201e",
    "$(whoami)",
    "${env:PATH}",
    "$x",
    "`",
    "`n",
    ";",
    "|",
    "&",
    "&&",
    "||",
    "\n",
    "\r\n",
    "\x00",
    "#",
    "<#",
    "#>",
    "@'",
    "'@",
    '@"',
    '"@',
    "{",
    "}",
    "(",
    ")",
    "[",
    "]",
    ",",
    "\\",
    "%",
    "^",
    "--%",
    "-EncodedCommand",
    "exit 0",
    "REMEDIATE-RESULT {}",
    "=",
    "é",
    "€",
    "Ω",
    "中文",
    "🙂",
    # LDAP and DN metacharacters the pieces above lack, WQL wildcards, bidi and invisible text
    "*",
    "+",
    "<",
    ">",
    "_",
    "\t",
    "\u202e",
    "\u200b",
    "\ufeff",
    "\U0001d518",
    "\u05e9\u05dc",
)


def _values() -> list[str]:
    values = [f"x{piece}y" for piece in _PIECES]
    values += [piece for piece in _PIECES if piece.strip()]
    values += [f"a{a}b{b}c" for a, b in zip(_PIECES, reversed(_PIECES), strict=True)]
    values += [
        "'; Remove-Item C:\\ -Recurse -Force; '",
        "\u2019; Stop-Service MSExchangeIS; \u2018",
        '"; $(Stop-Computer); "',
        "`$(calc)`",
        "line1\nline2\rline3\r\nline4",
        "O'Brien, Seán",
        "CN=O'Brien\\, Seán,OU=Staff,DC=corp,DC=example",
        "\\\\fs01\\pst$\\it's here",
        # filter and DN injections: what a missing escape would turn into another query or name
        "*)(objectClass=*",
        ")(|(sAMAccountName=*))",
        "\\2a\\28\\29\\5c\\00",
        "x,DC=evil,DC=example",
        "#4142",
        "a+sn=b",
        " leading",
        "trailing ",
        "  two  spaces  ",
        "' OR Name LIKE '%",
        "\u202eevil\u202c.exe \u0645\u0631\u062d\u0628\u0627",
        " leading and trailing ",
        "x" * 1024,
        ("\u2018$(`;|\n\x00" * 80)[:1024],
        "",
    ]
    return values


HOSTILE: list[str] = _values()
assert len(HOSTILE) >= 100, len(HOSTILE)
assert len(set(HOSTILE)) == len(HOSTILE)
