"""The directory servers an operator leaves out of the replication waits (``--leave-out-dc``,
a DC that is down) must be ones the waits would watch: a name that is neither a DC of the
domain nor a global catalog an Exchange server uses is a typo, refused before anything runs."""

from __future__ import annotations

from collections.abc import Sequence

from remediate.errors import InputError
from remediate.hosts import same_host
from remediate.ports import World


def check_left_out(world: World, names: Sequence[str]) -> None:
    """Raise InputError naming the first of ``names`` that no DC or used GC has, or that is
    the pinned writable DC."""
    if not names:
        return
    known = list(world.directory.domain_controllers())
    for server in world.exchange.servers():
        known += [
            name
            for name in (*server.domain_controllers, *server.global_catalogs)
            if same_host(name, known) is None
        ]
    writable = world.directory.writable_dc()
    for name in names:
        if same_host(name, [writable]) is not None:
            raise InputError(
                "it is the DC this run writes to, which every wait compares against",
                target=f"--leave-out-dc {name}",
                hint="pin another DC for writes (writable_dc in the inventory's [directory]) "
                "if it is down",
            )
        if same_host(name, known) is None:
            raise InputError(
                f"no DC of {world.directory.domain} and no global catalog an Exchange server "
                f"uses has that name (known: {', '.join(known)})",
                target=f"--leave-out-dc {name}",
                hint="name one of the known ones, as the plan's replication waits list them",
            )
