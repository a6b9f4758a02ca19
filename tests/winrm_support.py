"""What the WinRM tests share: a fake world whose Exchange servers each answer on their own
loopback WS-Management endpoint, and a ``World`` whose exchange is the real WinRM adapter (over
unmodified pywinrm) while its directory, clock and rehearsals are the fake world's."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, replace
from pathlib import Path

from winrm_endpoint import Endpoint, EndpointOptions
from winrm_endpoint.auth import ntlm_accounts
from winrm_endpoint.exchange_host import ExchangeHost
from winrm_endpoint.export_share import ExportShare
from winrm_endpoint.server import ACCOUNT, ACCOUNT_PASSWORD

from remediate.adapters.winrm import ServerConfig, WinRmExchange
from remediate.adapters.winrm.config import Transport, needs_unc_export_directory
from remediate.adapters.world import LiveWorld
from remediate.fakes import FakeCatalog, FakeDirectory, FakeWorld, world_from_json
from remediate.model import ExchangeVersion, MailboxInfo
from remediate.ports import World
from remediate.snapshot import snapshot

USER, PASSWORD = ACCOUNT, ACCOUNT_PASSWORD
EXPORT_SHARE = "\\\\fs01\\pst$\\remediate"  # what the servers of 2010 and later write to


@dataclass
class Site:
    """The fake world, one endpoint and one host per Exchange server, and configs to reach them."""

    world: FakeWorld
    endpoints: dict[str, Endpoint]
    hosts: dict[str, ExchangeHost]
    configs: list[ServerConfig]
    share: ExportShare  # the export directory every server's scripts write their records to

    def exchange(self) -> WinRmExchange:
        return WinRmExchange(
            self.configs, catalog=FakeCatalog(self.world.directory, self.world.exchange)
        )

    def commands(self) -> int:
        return sum(endpoint.calls() for endpoint in self.endpoints.values())


def server_config(
    name: str,
    endpoint: Endpoint,
    version: str,
    *,
    transport: Transport = "ntlm",
    password: str = PASSWORD,
    ca_file: Path | None = None,
    deadline_s: float = 60.0,
    operation_timeout_s: int = 2,
) -> ServerConfig:
    https = endpoint.options.tls is not None
    unc = needs_unc_export_directory(ExchangeVersion(version))
    return ServerConfig(
        export_directory=EXPORT_SHARE if unc else "",
        host="127.0.0.1",
        name=name,
        version=ExchangeVersion(version),
        identity=USER,
        password=lambda: password,
        transport=transport,
        scheme="https" if https else "http",
        port=endpoint.port,
        ca_file=ca_file,
        deadline_s=deadline_s,
        operation_timeout_s=operation_timeout_s,
    )


def as_read(boxes: list[MailboxInfo]) -> dict[object, MailboxInfo]:
    """Mailboxes by GUID as the adapter reads them from a store: a count instead of item ids,
    and no size (the fake has none; the endpoint derives one)."""
    return {
        box.guid: replace(box, item_ids=None, counted_items=box.item_count, size_bytes=None)
        for box in boxes
    }


@contextmanager
def serve(world: FakeWorld, options: EndpointOptions | None = None) -> Iterator[Site]:
    """Start one endpoint per Exchange server of ``world`` (NTLM unless ``options`` say)."""
    base = options or EndpointOptions()
    with ExitStack() as stack:
        stack.enter_context(ntlm_accounts(base.accounts))
        endpoints, hosts, configs, share = {}, {}, [], ExportShare()
        for server in world.exchange.servers():
            host = ExchangeHost(world.exchange, server.name, share, directory=world.directory)
            endpoint = Endpoint(host, replace(base, machine=server.name)).start()
            stack.callback(endpoint.stop)
            endpoints[server.name], hosts[server.name] = endpoint, host
            configs.append(server_config(server.name, endpoint, server.version.value))
        yield Site(world, endpoints, hosts, configs, share)


class WinRmWorld:
    """``World`` with the WinRM adapter for Exchange; the rest is the fake world it serves."""

    def __init__(self, fake: FakeWorld, exchange: WinRmExchange) -> None:
        self.fake = fake
        self._exchange = exchange

    @property
    def directory(self) -> FakeDirectory:
        return self.fake.directory

    @property
    def exchange(self) -> WinRmExchange:
        return self._exchange

    @property
    def clock(self):  # type: ignore[no-untyped-def]
        return self.fake.clock

    @property
    def organisation(self) -> str:
        return self.fake.organisation

    def attach_run(self, run_dir: Path | None) -> None:
        self.fake.attach_run(run_dir)  # the servers' exports: the fake's sink

    def rehearsal(self) -> World:
        """The fake's copy, its exports located where the real servers put them (as a
        snapshot through the ports records them)."""
        rehearsal = self.fake.rehearsal()
        for server in rehearsal.exchange.servers():
            rehearsal.exchange.locate_exports(
                server.name, self._exchange.export_location(server.name)
            )
        return rehearsal


def snapshot_world(site: Site) -> LiveWorld:
    """The served world as the inventory would give it: WinRM for Exchange, plans rehearsed on
    a snapshot read through the ports."""
    worlds: list[World] = []

    def rehearse() -> World:
        return world_from_json(snapshot(worlds[0]), source="snapshot")

    live = LiveWorld(
        site.world.directory,
        site.exchange(),
        rehearse=rehearse,
        clock=site.world.clock,
        organisation=site.world.organisation,
    )
    worlds.append(live)
    return live
