"""CLIXML as Windows PowerShell writes it to stderr: progress records and error lines."""

from __future__ import annotations

from xml.sax.saxutils import escape

HEADER = "#< CLIXML\r\n"
PROGRESS = (
    '<Obj S="progress" RefId="0"><TN RefId="0"><T>System.Management.Automation.PSCustomObject</T>'
    '<T>System.Object</T></TN><MS><I64 N="SourceId">1</I64><PR N="Record"><AV>Preparing '
    "modules for first use.</AV><AI>0</AI><Nil /><PI>-1</PI><PC>-1</PC><T>Completed</T>"
    "<SR>-1</SR><SD> </SD></PR></MS></Obj>"
)


def _encode(text: str) -> str:
    return escape(text).replace("\r", "_x000D_").replace("\n", "_x000A_")


def document(*, progress: bool, error_lines: list[str]) -> bytes:
    """One ``<Objs>`` (pywinrm cannot clean two): optional progress noise, then one
    ``<S S="Error">`` per error line."""
    errors = "".join(f'<S S="Error">{_encode(line)}\r\n</S>' for line in error_lines)
    objs = (
        '<Objs Version="1.1.0.1" xmlns="http://schemas.microsoft.com/powershell/2004/04">'
        f"{PROGRESS if progress else ''}{errors}</Objs>"
    )
    return (HEADER + objs).encode("utf-8")


def error_record(
    message: str,
    *,
    category: str = "NotSpecified: (:) [], RuntimeException",
    error_id: str = "RuntimeException",
) -> list[str]:
    """The lines PowerShell writes for an error that stops a script."""
    return [
        *message.splitlines(),
        f"    + CategoryInfo          : {category}",
        f"    + FullyQualifiedErrorId : {error_id}",
    ]
