"""How long a change takes to reach each DC, from the sites and site links of the configuration
partition (no DC needed: the searches are given as data)."""

from __future__ import annotations

from remediate.adapters.ldap.discovery import (
    DEFAULT_INTERVAL_S,
    DomainController,
    Found,
    SiteLink,
    delays,
    discover,
)

HUB, BRANCH, FAR, ALONE = "cn=hub", "cn=branch", "cn=far", "cn=alone"
DCS = [
    DomainController("dc1", False, HUB),
    DomainController("dc2", False, HUB),
    DomainController("dc3", True, BRANCH),
    DomainController("dc4", False, FAR),
    DomainController("dc5", False, ALONE),
]


def test_a_dc_in_the_writable_dcs_site_has_no_delay_others_the_cheapest_path_of_links() -> None:
    links = [
        SiteLink(15 * 60.0, (HUB, BRANCH)),
        SiteLink(60 * 60.0, (BRANCH, FAR)),
        SiteLink(180 * 60.0, (HUB, FAR)),  # direct, but dearer than through the branch
    ]
    assert delays(DCS, links, "DC1") == {
        "dc1": 0.0,
        "dc2": 0.0,
        "dc3": 15 * 60.0,
        "dc4": 75 * 60.0,
        "dc5": DEFAULT_INTERVAL_S,
    }


def test_delays_are_counted_from_the_writable_dcs_site() -> None:
    links = [SiteLink(15 * 60.0, (HUB, BRANCH)), SiteLink(60 * 60.0, (BRANCH, FAR))]
    assert delays(DCS, links, "dc4") == {
        "dc1": 75 * 60.0,
        "dc2": 75 * 60.0,
        "dc3": 60 * 60.0,
        "dc4": 0.0,
        "dc5": DEFAULT_INTERVAL_S,
    }


def test_a_link_of_three_sites_joins_each_pair() -> None:
    links = [SiteLink(30 * 60.0, (HUB, BRANCH, FAR))]
    assert delays(DCS, links, "dc3")["dc4"] == 30 * 60.0


def test_a_global_catalog_of_another_domain_is_found_as_a_partial_replica() -> None:
    """nTDSDSA objects as the configuration partition holds them: DC1 masters the domain, GC7
    (another domain's DC) holds it in hasPartialReplicaNCs, DC9 holds neither."""
    domain, other = "DC=corp,DC=example", "DC=other,DC=example"
    servers = "CN=Servers,CN=Hub,CN=Sites,CN=Configuration,DC=corp,DC=example"

    def dsa(host: str, masters: str, partial: str = "") -> Found:
        server = f"CN={host},{servers}"
        held = {"hasPartialReplicaNCs": [partial.encode()]} if partial else {}
        return [
            (server, {"objectClass": [b"server"], "dNSHostName": [f"{host}.x".encode()]}),
            (
                f"CN=NTDS Settings,{server}",
                {"objectClass": [b"nTDSDSA"], "hasMasterNCs": [masters.encode()], **held},
            ),
        ]

    found = [*dsa("DC1", domain), *dsa("GC7", other, domain), *dsa("DC9", other)]

    assert discover(
        lambda base, flt, attrs: found, "CN=Configuration,DC=corp,DC=example", domain
    ) == [
        DomainController("DC1.x", False, "cn=hub,cn=sites,cn=configuration,dc=corp,dc=example"),
        DomainController(
            "GC7.x", False, "cn=hub,cn=sites,cn=configuration,dc=corp,dc=example", partial=True
        ),
    ]
