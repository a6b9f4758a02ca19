"""Text that people read as Markdown (the change ticket) and as plain text (the console)."""

from __future__ import annotations

import re

_BACKTICKS = re.compile(r"`+")


def code(text: str) -> str:
    """``text`` as a Markdown code span, whatever backticks it holds (a directory name may):
    fenced by one backtick more than its longest run of them (CommonMark, code spans)."""
    longest = max((len(run) for run in _BACKTICKS.findall(text)), default=0)
    fence = "`" * (longest + 1)
    padded = f" {text} " if text.startswith("`") or text.endswith("`") else text
    return f"{fence}{padded}{fence}"
