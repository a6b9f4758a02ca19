"""A loopback LDAP server front that presents a test certificate (LDAPS, or StartTLS: it answers
the StartTLS request itself, then the handshake), records what each client sent in clear and
after the handshake, and closes. Enough to show that a client refuses a certificate (no bind
ever arrives) and accepts a good one (the bind arrives, encrypted)."""

from __future__ import annotations

import socket
import ssl
import tempfile
import threading
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

START_TLS_OID = b"1.3.6.1.4.1.1466.20037"
BIND_REQUEST = 0x60  # [APPLICATION 0], constructed
EXTENDED_REQUEST = 0x77  # [APPLICATION 23], constructed


def read_message(sock: socket.socket | ssl.SSLSocket) -> bytes:
    """One BER-encoded LDAPMessage (b"" when the peer closed first)."""

    def exactly(count: int) -> bytes:
        data = b""
        while len(data) < count:
            chunk = sock.recv(count - len(data))
            if not chunk:
                raise ConnectionError("closed")
            data += chunk
        return data

    try:
        head = exactly(2)
        length = head[1]
        extra = b""
        if length & 0x80:
            extra = exactly(length & 0x7F)
            length = int.from_bytes(extra, "big")
        return head + extra + exactly(length)
    except ConnectionError:
        return b""


def operation_of(message: bytes) -> int:
    """The protocolOp tag of an LDAPMessage (after the SEQUENCE header and the messageID)."""
    start = 2 + (message[1] & 0x7F if message[1] & 0x80 else 0)
    id_length = message[start + 1]
    return message[start + 2 + id_length]


def start_tls_response(request: bytes) -> bytes:
    """A success ExtendedResponse to the StartTLS ``request``, same messageID."""
    start = 2 + (request[1] & 0x7F if request[1] & 0x80 else 0)
    message_id = request[start : start + 2 + request[start + 1]]
    name = b"\x8a" + bytes([len(START_TLS_OID)]) + START_TLS_OID
    body = b"\x0a\x01\x00" + b"\x04\x00" + b"\x04\x00" + name
    op = b"\x78" + bytes([len(body)]) + body
    inner = message_id + op
    return b"\x30" + bytes([len(inner)]) + inner


@dataclass
class Seen:
    """One client connection: what it sent in clear, whether the handshake succeeded, and the
    protocolOp of the first message it sent over TLS."""

    cleartext: list[bytes] = field(default_factory=list)
    handshake: str = "none"  # "ok" or the server side's SSL error
    first_operation_over_tls: int | None = None


class TlsFront:
    def __init__(self, cert_pem: bytes, key_pem: bytes, *, starttls: bool = False) -> None:
        self.starttls = starttls
        self.seen: list[Seen] = []
        self._context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        with tempfile.TemporaryDirectory() as folder:
            cert, key = Path(folder, "cert.pem"), Path(folder, "key.pem")
            cert.write_bytes(cert_pem)
            key.write_bytes(key_pem)
            self._context.load_cert_chain(cert, key)
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.05)  # so the loop sees _stop soon after the test ends
        self.port: int = self._listener.getsockname()[1]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)

    def __enter__(self) -> TlsFront:
        self._thread.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self._listener.close()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                client, _ = self._listener.accept()
            except TimeoutError:
                continue
            with client:
                client.settimeout(1)  # a client that refused hangs up, or stays silent
                self._handle(client)

    def _handle(self, client: socket.socket) -> None:
        seen = Seen()
        self.seen.append(seen)
        if self.starttls:
            request = read_message(client)
            seen.cleartext.append(request)
            if not request or operation_of(request) != EXTENDED_REQUEST:
                return
            client.sendall(start_tls_response(request))
        try:
            secure = self._context.wrap_socket(client, server_side=True)
        except (ssl.SSLError, OSError) as error:
            seen.handshake = str(error)
            return
        seen.handshake = "ok"
        with secure:
            first = read_message(secure)
            seen.first_operation_over_tls = operation_of(first) if first else None
