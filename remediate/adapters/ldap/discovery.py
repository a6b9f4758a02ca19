"""The domain's DCs from the configuration partition: each nTDSDSA object holding the domain
naming context, named by its parent server object's dNSHostName."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import NamedTuple

from remediate.dn import normalize, parent_dn

Search = Callable[[str, str, Sequence[str]], list[tuple[str, dict[str, list[bytes]]]]]


class DomainController(NamedTuple):
    name: str
    read_only: bool


def _values(raw: dict[str, list[bytes]], name: str) -> list[str]:
    for key, values in raw.items():
        if key.lower() == name.lower():
            return [value.decode("utf-8") for value in values]
    return []


def discover(search: Search, configuration_dn: str, domain_dn: str) -> list[DomainController]:
    """DCs (sorted by name) whose nTDSDSA lists ``domain_dn`` among its naming contexts.
    ``search(base, filter, attributes)`` runs one paged subtree search."""
    found = search(
        f"CN=Sites,{configuration_dn}",
        "(|(objectClass=nTDSDSA)(objectClass=server))",
        ("objectClass", "dNSHostName", "hasMasterNCs", "msDS-hasMasterNCs", "msDS-isRODC",
         "msDS-HasDomainNCs"),
    )
    host_names = {
        normalize(dn): names[0]
        for dn, raw in found
        if (names := _values(raw, "dNSHostName"))
    }
    domain = normalize(domain_dn)
    controllers: list[DomainController] = []
    for dn, raw in found:
        if "ntdsdsa" not in {c.lower() for c in _values(raw, "objectClass")}:
            continue
        contexts = {
            normalize(nc)
            for name in ("hasMasterNCs", "msDS-hasMasterNCs", "msDS-HasDomainNCs")
            for nc in _values(raw, name)
        }
        host = host_names.get(normalize(parent_dn(dn)))
        if host and domain in contexts:
            read_only = [v.upper() for v in _values(raw, "msDS-isRODC")] == ["TRUE"]
            controllers.append(DomainController(host, read_only))
    return sorted(controllers)
