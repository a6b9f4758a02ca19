"""Windows PowerShell's CLIXML stderr turned into the lines a person would read."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

_HEADER = b"#< CLIXML"
_ESCAPE = re.compile(r"_x([0-9A-Fa-f]{4})_")
# Where PowerShell says an error happened, not what it is: "At line:1 char:5", "+ ~~~~",
# "    + CategoryInfo : ...", "    + FullyQualifiedErrorId : ...".
_POSITION = re.compile(r"^\s*(At line:\d+|At .+:\d+ char:\d+|\+ )")


def clean(stderr: bytes) -> str:
    """Error and warning text of a CLIXML stream, without progress records and without the lines
    that only locate the error; anything else as decoded text."""
    if not stderr.lstrip().startswith(_HEADER):
        return stderr.decode("utf-8", errors="replace").strip()
    lines: list[str] = []
    for document in stderr.split(_HEADER)[1:]:
        body = document.strip()
        try:
            root = ET.fromstring(body)
        except ET.ParseError:
            lines.append(body.decode("utf-8", errors="replace"))
            continue
        for node in root.iter():
            if node.tag.rsplit("}", 1)[-1] == "S" and node.get("S") in ("Error", "Warning"):
                lines.append(_ESCAPE.sub(lambda m: chr(int(m.group(1), 16)), node.text or ""))
    text = "".join(lines).replace("\r\n", "\n")
    kept = [line.strip() for line in text.split("\n") if line.strip() and not _POSITION.match(line)]
    return "\n".join(kept)
