"""What a refused server certificate means and what to do about it, in the operator's words,
for every adapter (LDAP and WinRM see the same OpenSSL reasons through different exceptions)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class CertificateProblem:
    what: str  # what is wrong with the certificate
    advice: str  # what to do


def diagnose(error_text: str, *, server: str, ca_key: str, name_key: str) -> CertificateProblem:
    """The problem ``error_text`` (an SSL or certificate error) describes. ``ca_key`` and
    ``name_key`` say where the inventory sets the trusted CAs and the server's name."""
    text = error_text.lower()
    if "expired" in text or "not yet valid" in text:
        return CertificateProblem(
            f"the certificate {server} presented has expired or is not valid yet",
            "renew the server's certificate (and check this machine's clock)",
        )
    if "mismatch" in text or "doesn't match any name" in text or "not valid for" in text:
        return CertificateProblem(
            f"the certificate {server} presented was not issued for that name",
            f"connect by a name the certificate carries ({name_key}), or have the certificate "
            "reissued for this name",
        )
    if any(marker in text for marker in ("issuer", "self-signed", "self signed", "unknown ca")):
        return CertificateProblem(
            f"the certificate {server} presented was not issued by a CA we trust",
            f"set {ca_key} to the PEM file of the CA that issued the server's certificate",
        )
    return CertificateProblem(
        f"the TLS handshake with {server} failed ({error_text.strip()[:300]})",
        f"check {ca_key}, the server's certificate and its TLS configuration",
    )
