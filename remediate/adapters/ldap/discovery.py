"""The domain's DCs from the configuration partition: each nTDSDSA object holding the domain
naming context, named by its parent server object's dNSHostName, in the site above that server;
and how long a change takes to reach each DC: 0 within the writable DC's site, else the sum of
the site links' replInterval along the cheapest path of links between the two sites."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import NamedTuple

from remediate.dn import normalize, parent_dn

Found = list[tuple[str, dict[str, list[bytes]]]]
Search = Callable[[str, str, Sequence[str]], Found]


class DomainController(NamedTuple):
    name: str
    read_only: bool
    site: str = ""  # the site object's DN, normalized
    # A global catalog of another domain: this domain's NC is among its hasPartialReplicaNCs
    # ("other-domain NCs that have been replicated into a global catalog", MS-ADA1 2.290).
    partial: bool = False


class SiteLink(NamedTuple):
    interval_s: float
    sites: tuple[str, ...]  # normalized DNs


# What AD uses for a site link without replInterval (minutes), and for a site no link reaches.
DEFAULT_INTERVAL_S = 180 * 60.0


def _values(raw: dict[str, list[bytes]], name: str) -> list[str]:
    for key, values in raw.items():
        if key.lower() == name.lower():
            return [value.decode("utf-8") for value in values]
    return []


def discover(search: Search, configuration_dn: str, domain_dn: str) -> list[DomainController]:
    """DCs (sorted by name) whose nTDSDSA lists ``domain_dn`` among its naming contexts, and
    global catalogs of other domains holding a partial replica of it (``partial``).
    ``search(base, filter, attributes)`` runs one paged subtree search."""
    found = search(
        f"CN=Sites,{configuration_dn}",
        "(|(objectClass=nTDSDSA)(objectClass=server))",
        (
            "objectClass",
            "dNSHostName",
            "hasMasterNCs",
            "msDS-hasMasterNCs",
            "msDS-isRODC",
            "msDS-HasDomainNCs",
            "hasPartialReplicaNCs",
        ),
    )
    host_names = {
        normalize(dn): names[0] for dn, raw in found if (names := _values(raw, "dNSHostName"))
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
        partial = domain in {normalize(nc) for nc in _values(raw, "hasPartialReplicaNCs")}
        host = host_names.get(normalize(parent_dn(dn)))
        if host and (domain in contexts or partial):
            read_only = [v.upper() for v in _values(raw, "msDS-isRODC")] == ["TRUE"]
            # nTDSDSA < server < CN=Servers < the site
            site = parent_dn(parent_dn(parent_dn(normalize(dn))))
            controllers.append(
                DomainController(host, read_only, site, partial=domain not in contexts)
            )
    return sorted(controllers)


def site_links(search: Search, configuration_dn: str) -> list[SiteLink]:
    """Every site link of every inter-site transport, with its interval in seconds."""
    found = search(
        f"CN=Inter-Site Transports,CN=Sites,{configuration_dn}",
        "(objectClass=siteLink)",
        ("siteList", "replInterval"),
    )
    links = []
    for _, raw in found:
        minutes = _values(raw, "replInterval")
        interval = 60.0 * int(minutes[0]) if minutes else DEFAULT_INTERVAL_S
        links.append(SiteLink(interval, tuple(normalize(s) for s in _values(raw, "siteList"))))
    return links


def delays(
    controllers: Sequence[DomainController], links: Sequence[SiteLink], writable: str
) -> dict[str, float]:
    """Seconds for a change made on ``writable`` to reach each DC, by name: the cheapest path
    of site links from its site (Dijkstra), 0 within it, the default where no link leads."""
    origin = next((dc.site for dc in controllers if dc.name.lower() == writable.lower()), None)
    distance: dict[str, float] = {} if origin is None else {origin: 0.0}
    frontier = set(distance)
    while frontier:
        site = min(frontier, key=distance.__getitem__)
        frontier.discard(site)
        for link in links:
            if site not in link.sites:
                continue
            for other in link.sites:
                through = distance[site] + link.interval_s
                if through < distance.get(other, float("inf")):
                    distance[other] = through
                    frontier.add(other)
    return {dc.name: distance.get(dc.site, DEFAULT_INTERVAL_S) for dc in controllers}
