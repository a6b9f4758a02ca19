"""Tables that stay on one line per row at a terminal's width: each column gets a fair share
of the width, and a value longer than its column loses its middle, not its ends (a DN's
``CN=`` and its domain, a label's server and user, say the most)."""

from __future__ import annotations

from collections.abc import Sequence

ELLIPSIS = "…"
# A table with n columns spends 3 characters per column on borders and padding, plus 1.
BORDER_PER_COLUMN = 3


def shorten_middle(text: str, width: int) -> str:
    """``text`` in at most ``width`` characters: the start and the end, an ellipsis between."""
    if len(text) <= width:
        return text
    if width <= 1:
        return ELLIPSIS[:width]
    head = width // 2
    tail = width - 1 - head
    return text[:head] + ELLIPSIS + (text[-tail:] if tail else "")


def fit_widths(natural: Sequence[int], available: int, minimum: int = 6) -> list[int]:
    """Column widths within ``available`` characters: a column that needs less than an equal
    share keeps what it needs, and the others share what is left equally."""
    widths = [0] * len(natural)
    open_columns = sorted(range(len(natural)), key=lambda column: natural[column])
    left = max(available, minimum * len(natural))
    while open_columns:
        share = left // len(open_columns)
        column = open_columns[0]
        if natural[column] <= share:
            widths[column] = natural[column]
            left -= natural[column]
            open_columns.pop(0)
            continue
        for column in open_columns:  # every remaining column needs more than its share
            widths[column] = max(minimum, share)
        break
    return widths


def table_widths(rows: Sequence[Sequence[str]], headers: Sequence[str], width: int) -> list[int]:
    """The width of each column of a table of ``rows`` drawn within ``width`` characters."""
    natural = [
        max([len(header), *(len(row[i]) for row in rows)]) for i, header in enumerate(headers)
    ]
    return fit_widths(natural, width - BORDER_PER_COLUMN * len(headers) - 1)
