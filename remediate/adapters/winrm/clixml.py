"""Windows PowerShell's CLIXML stderr turned into the lines a person would read."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

_HEADER = b"#< CLIXML"
_ESCAPE = re.compile(r"_x([0-9A-Fa-f]{4})_")


def clean(stderr: bytes) -> str:
    """Error and warning text of a CLIXML stream (progress records dropped); anything else as
    decoded text."""
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
    return "".join(lines).replace("\r\n", "\n").strip()
