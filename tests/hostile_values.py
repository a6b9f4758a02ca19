"""Values built to break quoting: PowerShell's five single quotes (' and U+2018-U+201B) and its
double quotes, sub-expressions, backticks, separators, pipes, newlines, NUL, long strings."""

from __future__ import annotations

_PIECES = (
    "'", "\u2018", "\u2019", "\u201a", "\u201b", '"', "\u201c", "\u201d", "\u201e",
    "$(whoami)", "${env:PATH}", "$x", "`", "`n", ";", "|", "&", "&&", "||", "\n", "\r\n", "\x00",
    "#", "<#", "#>", "@'", "'@", '@"', '"@', "{", "}", "(", ")", "[", "]", ",", "\\", "%", "^",
    "--%", "-EncodedCommand", "exit 0", "REMEDIATE-RESULT {}", "=", "é", "€", "Ω", "中文", "🙂",
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
        " leading and trailing ",
        "x" * 1024,
        ("\u2018$(`;|\n\x00" * 80)[:1024],
        "",
    ]
    return values


HOSTILE: list[str] = _values()
assert len(HOSTILE) >= 100, len(HOSTILE)
