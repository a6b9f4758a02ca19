"""The endpoint: an HTTP/1.1 server on 127.0.0.1 answering WS-Management for WinRS shells."""

from __future__ import annotations

import base64
import http.server
import socket
import ssl
import tempfile
import threading
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from typing import Any, Literal

from sentinel import sentinel

from . import auth, soap
from .shells import Command, Host, Shell
from .soap import Fault

AuthMode = Literal["basic", "ntlm"]
# The one account the endpoint knows unless told otherwise; its password is a sentinel
# (tests/sentinel.py), so any trace of it outside the endpoint is a leak.
ACCOUNT, ACCOUNT_PASSWORD = "CORP\\admin", sentinel("winrm")
WINDOWS_MAX_ENVELOPE = 153600


@dataclass
class EndpointOptions:
    auth: AuthMode = "ntlm"
    accounts: dict[str, str] = field(default_factory=lambda: {ACCOUNT: ACCOUNT_PASSWORD})
    tls: tuple[bytes, bytes] | None = None  # (certificate PEM, key PEM): serve HTTPS
    allow_unencrypted: bool = False  # Windows' default: plaintext SOAP over http refused
    receive_cap_s: float = 5.0  # a Receive waits at most this long (and OperationTimeout)
    receive_chunk_bytes: int = 112_000  # output handed out per Receive (MaxEnvelopeSize bound)
    machine: str = "EXCH01"
    # Seconds before each command is answered: a remote site's round trip (real time).
    command_delay_s: float = 0.0


@dataclass
class SeenRequest:
    """One request as the endpoint saw it (tests inspect these)."""

    action: str
    user: str
    encrypted: bool


class Endpoint:
    def __init__(self, host: Host, options: EndpointOptions | None = None) -> None:
        self.host = host
        self.options = options or EndpointOptions()
        self.shells: dict[str, Shell] = {}
        self.commands: list[Command] = []
        self.requests: list[SeenRequest] = []
        self._lock = threading.Lock()
        self._server: http.server.ThreadingHTTPServer | None = None

    # -- lifecycle

    def start(self) -> Endpoint:
        endpoint = self

        class Handler(_Handler):
            owner = endpoint

        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        server.daemon_threads = True
        if self.options.tls is not None:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            cert, key = self.options.tls
            context.load_cert_chain(*_pem_files(cert, key))
            server.socket = context.wrap_socket(server.socket, server_side=True)
        self._server = server
        threading.Thread(target=server.serve_forever, args=(0.02,), daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    @property
    def port(self) -> int:
        assert self._server is not None
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        scheme = "https" if self.options.tls else "http"
        return f"{scheme}://127.0.0.1:{self.port}/wsman"

    def calls(self, action: str = soap.COMMAND) -> int:
        """How many requests with this action arrived (default: commands run)."""
        return sum(1 for request in self.requests if request.action == action)

    # -- WS-Management

    def handle(self, request: soap.Request) -> str:
        if request.resource_uri != soap.CMD_RESOURCE:
            raise Fault(
                soap.DESTINATION_UNREACHABLE,
                "w:DestinationUnreachable",
                "The WS-Management service cannot process the request because the "
                "resource URI is not supported.",
            )
        if request.action == soap.CREATE:
            return self._create(request)
        shell = self._shell(request.shell_id)
        if request.action == soap.COMMAND:
            if self.options.command_delay_s > 0:
                time.sleep(self.options.command_delay_s)
            return self._command(request, shell)
        if request.action == soap.SEND:
            return self._send(request, shell)
        if request.action == soap.RECEIVE:
            return self._receive(request, shell)
        if request.action == soap.SIGNAL:
            return "<rsp:SignalResponse/>"
        if request.action == soap.DELETE:
            with self._lock:
                self.shells.pop(shell.id, None)
            return ""
        raise Fault(
            soap.ACTION_NOT_SUPPORTED,
            "a:ActionNotSupported",
            "The action is not supported by the service.",
        )

    def _shell(self, shell_id: str | None) -> Shell:
        with self._lock:
            shell = self.shells.get(shell_id or "")
        if shell is None:
            raise Fault(
                soap.INVALID_SELECTORS,
                "w:InvalidSelectors",
                "The request for the Windows Remote Shell with ShellId "
                f"{shell_id} failed because the shell was not found on the server.",
            )
        return shell

    def _create(self, request: soap.Request) -> str:
        if request.find("s:Body/rsp:Shell") is None:
            raise Fault(
                soap.SCHEMA_VALIDATION,
                "w:SchemaValidationError",
                "The SOAP XML in the message does not match the corresponding XML schema "
                "definition.",
            )
        shell = Shell(int(request.option("WINRS_CODEPAGE") or 437))
        with self._lock:
            self.shells[shell.id] = shell
        return (
            "<x:ResourceCreated><a:Address>http://127.0.0.1/wsman</a:Address>"
            f"<a:ReferenceParameters><w:ResourceURI>{soap.CMD_RESOURCE}</w:ResourceURI>"
            f'<w:SelectorSet><w:Selector Name="ShellId">{shell.id}</w:Selector></w:SelectorSet>'
            "</a:ReferenceParameters></x:ResourceCreated>"
            f"<rsp:Shell><rsp:ShellId>{shell.id}</rsp:ShellId>"
            f"<rsp:ResourceUri>{soap.CMD_RESOURCE}</rsp:ResourceUri>"
            "<rsp:InputStreams>stdin</rsp:InputStreams>"
            "<rsp:OutputStreams>stdout stderr</rsp:OutputStreams></rsp:Shell>"
        )

    def _command(self, request: soap.Request, shell: Shell) -> str:
        line = request.find("s:Body/rsp:CommandLine")
        if line is None:
            raise Fault(
                soap.SCHEMA_VALIDATION,
                "w:SchemaValidationError",
                "The SOAP XML in the message does not match the corresponding XML schema "
                "definition.",
            )
        parts = [node.text or "" for node in line if node.tag.endswith(("Command", "Arguments"))]
        console = (request.option("WINRS_CONSOLEMODE_STDIN") or "TRUE").upper() == "TRUE"
        command = Command(" ".join(part for part in parts if part), shell, console)
        shell.commands[command.id] = command
        with self._lock:
            self.commands.append(command)
        command.start(self.host)
        return (
            f"<rsp:CommandResponse><rsp:CommandId>{command.id}</rsp:CommandId>"
            "</rsp:CommandResponse>"
        )

    def _send(self, request: soap.Request, shell: Shell) -> str:
        for stream in request.root.iterfind("s:Body/rsp:Send/rsp:Stream", soap.NS):
            command = shell.command(stream.get("CommandId"))
            command.send(base64.b64decode(stream.text or ""), stream.get("End") == "true")
        return "<rsp:SendResponse/>"

    def _receive(self, request: soap.Request, shell: Shell) -> str:
        desired = request.find("s:Body/rsp:Receive/rsp:DesiredStream")
        command = shell.command(desired.get("CommandId") if desired is not None else None)
        wait = min(request.operation_timeout_s, self.options.receive_cap_s)
        stdout, stderr, code = command.receive(wait, self.options.receive_chunk_bytes)
        cid = command.id
        streams = "".join(
            f'<rsp:Stream Name="{name}" CommandId="{cid}">{base64.b64encode(data).decode()}'
            "</rsp:Stream>"
            for name, data in (("stdout", stdout), ("stderr", stderr))
            if data
        )
        if code is None:
            state = (
                f'<rsp:CommandState CommandId="{cid}" State="{soap.SHELL}/CommandState/Running"/>'
            )
        else:
            streams += "".join(
                f'<rsp:Stream Name="{name}" CommandId="{cid}" End="true"></rsp:Stream>'
                for name in ("stdout", "stderr")
            )
            state = (
                f'<rsp:CommandState CommandId="{cid}" State="{soap.SHELL}/CommandState/Done">'
                f"<rsp:ExitCode>{code}</rsp:ExitCode></rsp:CommandState>"
            )
        return f"<rsp:ReceiveResponse>{streams}{state}</rsp:ReceiveResponse>"


def _pem_files(cert: bytes, key: bytes) -> tuple[str, str]:
    paths = []
    for data, suffix in ((cert, ".crt"), (key, ".key")):
        with tempfile.NamedTemporaryFile("wb", suffix=suffix, delete=False) as handle:
            handle.write(data)
            paths.append(handle.name)
    return paths[0], paths[1]


class _Handler(http.server.BaseHTTPRequestHandler):
    """One instance per TCP connection: NTLM authenticates the connection."""

    protocol_version = "HTTP/1.1"
    owner: Endpoint
    _context: Any = None
    _user: str | None = None

    def setup(self) -> None:
        super().setup()
        # Headers and body leave in two writes: without this, Nagle's algorithm and the
        # client's delayed ACK add 40 ms to every request.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        options = self.owner.options
        if options.auth == "basic":
            self._basic(body)
        else:
            self._ntlm(body)

    # -- authentication

    def _basic(self, body: bytes) -> None:
        options = self.owner.options
        found = auth.basic_user(self.headers.get("Authorization", ""))
        plaintext_refused = options.tls is None and not options.allow_unencrypted
        if found is None or options.accounts.get(found[0]) != found[1] or plaintext_refused:
            self._reply(401, b"", {"WWW-Authenticate": 'Basic realm="WSMAN"'})
            return
        self._soap(body, found[0], encrypted=False)

    def _ntlm(self, body: bytes) -> None:
        header = self.headers.get("Authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() in ("negotiate", "ntlm") and token:
            self._handshake(scheme, token, body)
            return
        if self._context is None or not self._context.complete:
            self._reply(401, b"", {"WWW-Authenticate": "Negotiate"})
            return
        self._authenticated(body)

    def _handshake(self, scheme: str, token: str, body: bytes) -> None:
        options = self.owner.options
        if self._context is None or self._context.complete:
            bindings = auth.channel_bindings(options.tls[0]) if options.tls else None
            self._context = auth.ntlm_acceptor(bindings)
        try:
            answer = self._context.step(base64.b64decode(token))
        except Exception:  # wrong password, bad channel binding: Windows answers 401
            self._context = None
            self._reply(401, b"", {"WWW-Authenticate": "Negotiate"})
            return
        if not self._context.complete:
            challenge = f"{scheme} {base64.b64encode(answer or b'').decode()}"
            self._reply(401, b"", {"WWW-Authenticate": challenge})
            return
        self._user = str(self._context.client_principal)
        self._authenticated(body)

    def _authenticated(self, body: bytes) -> None:
        encrypted = self.headers.get("Content-Type", "").startswith("multipart/encrypted")
        if not body:
            self._reply(200, b"")
            return
        options = self.owner.options
        if options.tls is None and not encrypted and not options.allow_unencrypted:
            self._reply(401, b"")
            return
        try:
            plain = auth.unseal(self._context, body) if encrypted else body
        except Exception:
            self._reply(400, b"")
            return
        self._soap(plain, self._user or "", encrypted=encrypted)

    # -- SOAP

    def _soap(self, body: bytes, user: str, *, encrypted: bool) -> None:
        relates_to = ""
        try:
            request = soap.parse(body)
            relates_to = request.message_id
            with self.owner._lock:
                self.owner.requests.append(SeenRequest(request.action, user, encrypted))
            answer = soap.envelope(request.action, relates_to, self.owner.handle(request))
            status = 200
        except ET.ParseError:
            self._reply(400, b"")
            return
        except Fault as fault:
            answer = soap.fault_envelope(fault, relates_to, self.owner.options.machine)
            status = 500
        if encrypted:
            self._reply(
                status, auth.seal(self._context, answer), {"Content-Type": auth.ENCRYPTED_TYPE}
            )
        else:
            self._reply(status, answer, {"Content-Type": "application/soap+xml;charset=UTF-8"})

    def _reply(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
