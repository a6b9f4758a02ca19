"""WS-Management SOAP: reading requests and writing responses and faults as Windows does."""

from __future__ import annotations

import uuid
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from xml.sax.saxutils import escape, quoteattr

NS = {
    "s": "http://www.w3.org/2003/05/soap-envelope",
    "a": "http://schemas.xmlsoap.org/ws/2004/08/addressing",
    "w": "http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd",
    "p": "http://schemas.microsoft.com/wbem/wsman/1/wsman.xsd",
    "x": "http://schemas.xmlsoap.org/ws/2004/09/transfer",
    "rsp": "http://schemas.microsoft.com/wbem/wsman/1/windows/shell",
    "f": "http://schemas.microsoft.com/wbem/wsman/1/wsmanfault",
}
SHELL = NS["rsp"]
CMD_RESOURCE = SHELL + "/cmd"
CREATE = "http://schemas.xmlsoap.org/ws/2004/09/transfer/Create"
DELETE = "http://schemas.xmlsoap.org/ws/2004/09/transfer/Delete"
COMMAND, RECEIVE, SEND, SIGNAL = (SHELL + "/" + n for n in ("Command", "Receive", "Send", "Signal"))
FAULT_ACTION = "http://schemas.dmtf.org/wbem/wsman/1/wsman/fault"
ANONYMOUS = "http://schemas.xmlsoap.org/ws/2004/08/addressing/role/anonymous"

TIMED_OUT = 2150858793
INVALID_SELECTORS = 2150858843
DESTINATION_UNREACHABLE = 2150858770
ACTION_NOT_SUPPORTED = 2150858771
SCHEMA_VALIDATION = 2150858817


class Fault(Exception):
    """A WS-Management fault, answered with HTTP 500."""

    def __init__(self, code: int, subcode: str, reason: str, *, sender: bool = True) -> None:
        super().__init__(reason)
        self.code = code
        self.subcode = subcode
        self.reason = reason
        self.sender = sender


@dataclass(frozen=True)
class Request:
    root: ET.Element
    action: str
    message_id: str
    resource_uri: str
    operation_timeout_s: float
    shell_id: str | None

    def find(self, path: str) -> ET.Element | None:
        return self.root.find(path, NS)

    def option(self, name: str) -> str | None:
        for node in self.root.iterfind("s:Header/w:OptionSet/w:Option", NS):
            if node.get("Name") == name:
                return node.text
        return None


def parse(body: bytes) -> Request:
    """The request's header fields; ``ET.ParseError`` for malformed XML (answered 400)."""
    root = ET.fromstring(body)

    def text(path: str) -> str | None:
        node = root.find("s:Header/" + path, NS)
        return node.text if node is not None else None

    message_id, action = text("a:MessageID"), text("a:Action")
    if not message_id or not action:
        raise Fault(
            SCHEMA_VALIDATION,
            "w:InvalidMessageInformationHeader",
            "The WS-Management service cannot process the request because the header is invalid.",
        )
    shell_id = None
    for node in root.iterfind("s:Header/w:SelectorSet/w:Selector", NS):
        if node.get("Name") == "ShellId":
            shell_id = node.text
    return Request(
        root,
        action,
        message_id,
        text("w:ResourceURI") or "",
        _duration(text("w:OperationTimeout") or "PT60S"),
        shell_id,
    )


def _duration(value: str) -> float:
    """``PT20S`` / ``PT20.000S`` in seconds."""
    return float(value.removeprefix("PT").removesuffix("S") or 60)


def envelope(
    request_action: str, relates_to: str, body: str, *, action: str | None = None
) -> bytes:
    header = (
        f"<s:Header><a:Action>{escape(action or request_action + 'Response')}</a:Action>"
        f"<a:MessageID>uuid:{str(uuid.uuid4()).upper()}</a:MessageID>"
        f"<a:To>{ANONYMOUS}</a:To><a:RelatesTo>{escape(relates_to)}</a:RelatesTo></s:Header>"
    )
    names = " ".join(f'xmlns:{k}="{v}"' for k, v in NS.items())
    return (
        f'<s:Envelope xml:lang="en-US" {names}>{header}<s:Body>{body}</s:Body></s:Envelope>'
    ).encode()


def fault_envelope(fault: Fault, relates_to: str, machine: str) -> bytes:
    side = "s:Sender" if fault.sender else "s:Receiver"
    body = (
        f"<s:Fault><s:Code><s:Value>{side}</s:Value><s:Subcode><s:Value>{escape(fault.subcode)}"
        f'</s:Value></s:Subcode></s:Code><s:Reason><s:Text xml:lang="en-US">{escape(fault.reason)}'
        f'</s:Text></s:Reason><s:Detail><f:WSManFault Code="{fault.code}" '
        f"Machine={quoteattr(machine)}>"
        f"<f:Message>{escape(fault.reason)}</f:Message></f:WSManFault></s:Detail></s:Fault>"
    )
    return envelope("", relates_to, body, action=FAULT_ACTION)
