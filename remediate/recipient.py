"""What the recipient policy gives back after a reconnect, and how to have it applied now."""

from __future__ import annotations


def recipient_update_instructions(server: str, domain: str | None = None) -> str:
    """The operator's part on Exchange 2000/2003, where no API applies the policy now: the
    Recipient Update Service's "Update Now" (KB328738, "How the Recipient Update Service applies
    recipient policies": it stamps the objects created or changed since its last pass)."""
    which = f"of the domain {domain}" if domain else "of the users' domain"
    return (
        f"On {server} open Exchange System Manager > Recipients > Recipient Update Services, "
        f"right-click the Recipient Update Service {which} and click Update Now (it applies "
        "the recipient policies to the users changed since its last pass, the restored users "
        "among them, on the domain controller it is configured with). The restored addresses "
        "are already in place; this only adds what the policy itself would. Then resume the run"
    )
