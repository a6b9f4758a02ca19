"""HTTP authentication as WinRM does it: Basic, and NTLM (raw NTLMSSP in the Negotiate scheme)
with MS-WSMV message encryption over http."""

from __future__ import annotations

import base64
import hashlib
import os
import struct
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import spnego
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

PROTOCOL = "application/HTTP-SPNEGO-session-encrypted"
BOUNDARY = "Encrypted Boundary"
ENCRYPTED_TYPE = f'multipart/encrypted;protocol="{PROTOCOL}";boundary="{BOUNDARY}"'


@contextmanager
def ntlm_accounts(accounts: dict[str, str]) -> Iterator[None]:
    """pyspnego's NTLM acceptor reads ``user:password`` lines from the file NTLM_USER_FILE
    names (process-global): set it for the endpoint's lifetime, restore it after."""
    before = os.environ.get("NTLM_USER_FILE")
    with tempfile.NamedTemporaryFile("w", suffix=".ntlm", delete=False) as handle:
        for user, password in accounts.items():
            domain, _, name = user.rpartition("\\")
            handle.write(f"{domain}:{name}:{password}\n")
    os.environ["NTLM_USER_FILE"] = handle.name
    try:
        yield
    finally:
        os.unlink(handle.name)
        if before is None:
            os.environ.pop("NTLM_USER_FILE", None)
        else:
            os.environ["NTLM_USER_FILE"] = before


def channel_bindings(certificate_pem: bytes) -> spnego.channel_bindings.GssChannelBindings:
    """RFC 5929 tls-server-end-point: the hash of the server certificate (SHA-256 for MD5/SHA-1)."""
    cert = x509.load_pem_x509_certificate(certificate_pem)
    algorithm = cert.signature_hash_algorithm
    name = algorithm.name if algorithm is not None else "sha256"
    if name in ("md5", "sha1"):
        name = "sha256"
    digest = hashlib.new(name, cert.public_bytes(Encoding.DER)).digest()
    return spnego.channel_bindings.GssChannelBindings(
        application_data=b"tls-server-end-point:" + digest
    )


def basic_user(header: str) -> tuple[str, str] | None:
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        user, _, password = base64.b64decode(value).decode("utf-8").partition(":")
    except ValueError:
        return None
    return user, password


def unseal(context: Any, body: bytes) -> bytes:
    """The plaintext of an MS-WSMV encrypted body (signature length, signature, sealed data)."""
    marker = b"\tContent-Type: application/octet-stream\r\n"
    start = body.index(marker) + len(marker)
    end = body.index(f"--{BOUNDARY}--\r\n".encode(), start)
    payload = body[start:end]
    (signature_length,) = struct.unpack("<I", payload[:4])
    plain: bytes = context.unwrap(payload[4:]).data
    declared = body.split(b"Length=", 1)[1].split(b"\r\n", 1)[0]
    if int(declared) != len(plain) or signature_length != 16:
        raise ValueError("encrypted body length does not match")
    return plain


def seal(context: Any, plain: bytes) -> bytes:
    wrapped: bytes = context.wrap(plain, encrypt=True).data
    return (
        (
            f"--{BOUNDARY}\r\n\tContent-Type: {PROTOCOL}\r\n"
            f"\tOriginalContent: type=application/soap+xml;charset=UTF-8;Length={len(plain)}\r\n"
            f"--{BOUNDARY}\r\n\tContent-Type: application/octet-stream\r\n"
        ).encode()
        + struct.pack("<I", 16)
        + wrapped
        + f"--{BOUNDARY}--\r\n".encode()
    )


def ntlm_acceptor(bindings: Any | None) -> Any:
    return spnego.server(
        protocol="ntlm", options=spnego.NegotiateOptions.use_ntlm, channel_bindings=bindings
    )
