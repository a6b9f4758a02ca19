"""What the recipient policy gives back after a reconnect, and how to have it applied now."""

from __future__ import annotations

from remediate.dn import split_rdns, unescape_value


def recipient_update_instructions(server: str, domain: str | None = None) -> str:
    """The operator's part on Exchange 2000/2003, where no API applies the policy now: the
    Recipient Update Service's "Update Now" (KB328738, "How the Recipient Update Service applies
    recipient policies": it stamps the objects created or changed since its last pass)."""
    which = f"of the domain {domain}" if domain else "of the users' domain"
    return (
        f"On {server} open Exchange System Manager > Recipients > Recipient Update Services, "
        f"right-click the Recipient Update Service {which}, Update Now: it stamps the policies "
        "on the users changed since its last pass, the reconnected ones among them. The run "
        "goes on; restore-recipient then puts back each user's own addresses (the service's "
        "later passes only add to them)"
    )


def email_address_policy_instructions(server: str, build: str) -> str:
    """The operator's part on Exchange 2007 before SP1, which has no Update-Recipient
    (bb738148 applies to SP1-SP3): apply the e-mail address policy from the console ("How to
    Apply an E-Mail Address Policy", bb201677, applies to Exchange 2007 RTM too)."""
    return (
        f"{server} runs Exchange 2007 without a service pack ({build}), which has no "
        "Update-Recipient: open the Exchange Management Console > Organization Configuration > "
        "Hub Transport > E-Mail Address Policies, select the policy that applies to the "
        "reconnected users, Apply > Immediately. The run goes on; restore-recipient then puts "
        "back each user's own addresses"
    )


def _server_rdns(store_dn: str) -> list[str] | None:
    """The RDNs from the server object up, for an Exchange 2000-2007 store DN
    (``CN=<store>,CN=<storage group>,CN=InformationStore,CN=<server>,CN=Servers,...``); None
    where the store's DN does not name its server (2010+ databases live under CN=Databases)."""
    rdns = split_rdns(store_dn)
    for index, rdn in enumerate(rdns):
        if rdn.lower() == "cn=informationstore" and index + 1 < len(rdns):
            return rdns[index + 1 :]
    return None


def home_mta(store_dn: str) -> str | None:
    """The ``homeMTA`` of a mailbox in this store: its server's MTA object (None: unknown)."""
    rdns = _server_rdns(store_dn)
    return None if rdns is None else ",".join(["CN=Microsoft MTA", *rdns])


def server_legacy_dn(store_dn: str, known: str | None = None) -> str | None:
    """The ``msExchHomeServerName`` of a mailbox in this store: the server's legacyExchangeDN.
    ``known`` (one seen on a user of that server) is taken where it names the same server;
    otherwise it is built from the store's DN, as Exchange builds it (``/o=<organisation>/
    ou=<administrative group>/cn=Configuration/cn=Servers/cn=<server>``). [I] An organisation
    upgraded from 5.5 uses the 5.5 directory names there, which the CNs need not match: hence
    ``known`` first."""
    rdns = _server_rdns(store_dn)
    if rdns is None or len(rdns) < 6:
        return known
    server, group, org = (
        unescape_value(rdn.partition("=")[2]) for rdn in (rdns[0], rdns[2], rdns[4])
    )
    if known and known.lower().rstrip("/").endswith(f"/cn={server.lower()}"):
        return known
    return f"/o={org}/ou={group}/cn=Configuration/cn=Servers/cn={server}"


def x500(legacy_dn: str) -> str:
    """The proxy address that keeps mail to a former legacyExchangeDN deliverable (replies to
    old mail, Outlook's nickname cache)."""
    return f"X500:{legacy_dn}"
