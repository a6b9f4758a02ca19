"""restart_transport: start the Exchange transport services that an interrupted repair (or an
operator) left stopped, on the servers you name or on every server.

A playbook of its own, outside remediate, found through the entry point group
``remediate.playbooks``. It shows the parts: parameters, a read-only discovery that selects
exactly what it will touch and reports the rest as findings, a selection that survives a
resume and a saved plan (JSON, fingerprints), and a step that speaks for itself in the change
ticket."""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from remediate import (
    ChangeRecord,
    Discovery,
    Finding,
    InputError,
    JsonValue,
    Parameter,
    Playbook,
    Scope,
    ServiceState,
    Step,
    Wording,
    World,
    parse_names,
    parse_parameters,
    service_key,
)
from remediate.steps import ServiceTarget, StartService


@dataclass(frozen=True, slots=True)
class Params:
    servers: frozenset[str] | None  # None: every Exchange server


@dataclass(frozen=True, slots=True)
class Stopped:
    """The transport services found stopped: the only things this playbook touches."""

    services: tuple[tuple[str, str], ...]  # (server, service)

    def to_json(self) -> JsonValue:
        return {"services": [[server, service] for server, service in self.services]}

    def summary(self) -> dict[str, int]:
        return {
            "stopped_services": len(self.services),
            "servers": len({server for server, _ in self.services}),
        }

    def scope(self) -> Scope:
        return Scope(services=self.services)

    def without(self, keys: Collection[str]) -> Stopped:
        return Stopped(tuple(s for s in self.services if service_key(*s) not in keys))


class StartTransport(StartService):
    """The built-in service step, with what an approver needs to read about it."""

    name = "start-transport"
    summary = "Start the transport services found stopped"
    wording = Wording("start", "transport service", "transport services")

    @classmethod
    def risk(cls, records: Sequence[ChangeRecord]) -> str | None:
        return (
            f"Mail queued for {len(records)} stopped service(s) is delivered as soon as "
            "they run: expect a burst of deliveries and of delay notifications."
        )

    @classmethod
    def rollback(cls, records: Sequence[ChangeRecord]) -> tuple[str, ...]:
        return (
            "Stop them again with `Stop-Service <name>` (or `net stop <name>`) on the "
            "server, if a repair still needs transport stopped.",
        )


class RestartTransport(Playbook[Params, Stopped]):
    name = "restart_transport"
    title = "Start the Exchange transport services a repair left stopped"
    kb = "https://learn.microsoft.com/exchange/mail-flow/mail-flow"
    description = (
        "Finds the transport services (MTA and SMTP on 2000/2003, the Transport "
        "services on 2007 and later) that are stopped and starts them."
    )
    parameters = (
        Parameter(
            "servers",
            "only these Exchange servers (comma-separated)",
            parse_names,
            "EXCH01",
            default="every server",
        ),
    )
    outline = (StartTransport,)
    notice = ("Mail flow resumes on the servers concerned.",)

    def parse(self, raw: Mapping[str, str]) -> Params:
        return Params(parse_parameters(self.name, self.parameters, raw).get("servers"))

    def discover(self, world: World, params: Params) -> Discovery[Stopped]:
        servers = list(world.exchange.servers())
        known = {server.name.lower() for server in servers}
        unknown = sorted(name for name in params.servers or () if name.lower() not in known)
        if unknown:  # a scope that names nothing that exists is an error
            raise InputError(
                f"unknown Exchange server(s): {', '.join(unknown)}",
                target=f"playbook {self.name}",
                hint=f"known servers: {', '.join(s.name for s in servers)}",
            )
        stopped: list[tuple[str, str]] = []
        findings: list[Finding] = []
        for server in servers:
            if params.servers and server.name.lower() not in {s.lower() for s in params.servers}:
                continue
            names = server.version.transport_services
            states = world.exchange.service_states(server.name, names)
            for name in names:
                if states.get(name) is ServiceState.STOPPED:
                    stopped.append((server.name, name))
                elif name not in states:
                    findings.append(
                        Finding(
                            "not-found", f"{server.name} {name}", "no such service on this server"
                        )
                    )
        return Discovery(Stopped(tuple(stopped)), tuple(findings))

    def steps(self, selection: Stopped) -> list[Step[Any, Any]]:
        return [
            StartTransport([ServiceTarget(server, name) for server, name in selection.services])
        ]

    def load_selection(self, data: JsonValue) -> Stopped:
        services = data["services"] if isinstance(data, dict) else []
        pairs = [(str(pair[0]), str(pair[1])) for pair in services if isinstance(pair, list)]
        return Stopped(tuple(pairs))
