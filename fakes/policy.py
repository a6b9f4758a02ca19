"""The recipient policy, as the fakes apply it: which addresses a mailbox gets from it.

From Microsoft's documentation:

- Exchange 2000/2003: the Recipient Update Service "stamps e-mail addresses in the
  proxyAddresses attribute on recipient objects" from the recipient policies, for the objects
  created or changed since its last pass, on its schedule or at once with "Update Now" in
  Exchange System Manager (KB328738, "How the Recipient Update Service applies recipient
  policies"; "Recipient Update Service and Exchange Server 2003", TechNet bb123665). The default
  policy has an SMTP address from the alias (``%m@domain``) and an X.400 address.
- Exchange 2007 and later: email address policies; ``Update-Recipient`` "adds Exchange
  attributes to recipient objects" (office-docs-powershell Update-Recipient.md), and a change of
  alias changes the primary address "only ... where the recipient is subject to email address
  policies (the EmailAddressPolicyEnabled property is True)" (Connect-Mailbox.md, -Alias).
  Recipients opted out of the policy hold its GUID in ``msExchPoliciesExcluded``.
  The fakes' default 2007+ policy has no X.400 address [I: new 2007+ organisations do not
  generate X.400 addresses; upgraded ones may].

A policy only adds its own addresses (making its SMTP address primary where the recipient is
subject to it); it never brings back a secondary SMTP, X500 or X.400 address that was removed.
"""

from __future__ import annotations

from remediate.model import DirectoryEntry, ExchangeVersion


def policy_addresses(
    alias: str, version: ExchangeVersion, organisation: str, domain: str
) -> list[str]:
    """The default policy's addresses for ``alias``, primary form."""
    addresses = [f"SMTP:{alias}@{domain}"]
    if version.legacy:
        addresses.append(f"X400:c=US;a= ;p={organisation};o=Exchange;s={alias};")
    return addresses


def policy_stamp(
    entry: DirectoryEntry, version: ExchangeVersion, organisation: str, domain: str
) -> dict[str, str | list[str] | None]:
    """What the policy writes on ``entry`` (empty: nothing). Only a mailbox-enabled user (alias
    and home store) is stamped."""
    alias = entry.get("mailNickname")
    if not alias or not entry.get("homeMDB"):
        return {}
    raw = entry.attributes.get("proxyAddresses") or []
    current = [raw] if isinstance(raw, str) else list(raw)
    governed = not entry.get("msExchPoliciesExcluded")
    result = list(current)
    for address in policy_addresses(alias, version, organisation, domain):
        kind, _, value = address.partition(":")
        present = any(a.lower() == address.lower() for a in result)
        has_primary = any(a.startswith(kind + ":") for a in result)
        if governed:
            # The policy's address becomes the primary of its type, the others secondary.
            result = [
                _secondary(a) if a.startswith(kind + ":") else a
                for a in result
                if a.lower() != address.lower()
            ] + [address]
        elif not present:
            result.append(f"{kind.lower()}:{value}" if has_primary else address)
    primary = next((a.partition(":")[2] for a in result if a.startswith("SMTP:")), None)
    changes: dict[str, str | list[str] | None] = {}
    if sorted(result) != sorted(current):
        changes["proxyAddresses"] = result
    if primary is not None and entry.get("mail") != primary:
        changes["mail"] = primary
    return changes


def _secondary(address: str) -> str:
    kind, _, value = address.partition(":")
    return f"{kind.lower()}:{value}"
