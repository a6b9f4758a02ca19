"""Service steps: stop the services that deliver mail into the affected databases, so no mail
lands in the wrong mailbox, and start again exactly the ones that were stopped."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from remediate.engine.changes import Change, Impact, NoOp, Planned, WouldFail
from remediate.engine.step import Step, StepContext
from remediate.errors import Refused
from remediate.model import HUB_TRANSPORT, ExchangeServer, ExchangeVersion, ServiceState
from remediate.steps.targets import ServiceTarget


def delivering_services(
    home: ExchangeServer, organisation: Sequence[ExchangeServer]
) -> list[tuple[str, str]]:
    """The (server, service) pairs that deliver mail into the databases on ``home``.

    Exchange 2000/2003: the MTA Stacks and SMTP on the server itself (KB278447). Exchange
    2007/2010: the store driver runs on the Hub Transport servers of the server's Active
    Directory site, so Microsoft Exchange Transport on each of them, a Mailbox-only server has
    none of its own. Exchange 2013 and later: the Mailbox Transport Delivery service
    (MSExchangeDelivery) on the server holding the database delivers what Transport on any
    server hands it (Exchange 2013 transport architecture)."""
    if home.version.legacy:
        return [(home.name, "MSExchangeMTA"), (home.name, "SMTPSVC")]
    if home.version in (ExchangeVersion.E2007, ExchangeVersion.E2010):
        hubs = [server for server in organisation
                if HUB_TRANSPORT in server.roles and server.site == home.site
                and server.version is home.version]
        if not hubs:
            site = f"site {home.site}" if home.site else "its site"
            raise Refused(
                f"the Hub Transport servers of {site} deliver mail into {home.name}'s databases "
                "(Exchange " + home.version.value + "), and none of them is in the inventory",
                target=home.name,
                hint="add an [[exchange]] entry for each Hub Transport server of the site "
                "(Get-ExchangeServer | Where-Object { $_.IsHubTransportServer }), then plan again",
            )
        return [(hub.name, "MSExchangeTransport") for hub in hubs]
    return [(home.name, "MSExchangeDelivery")]


class _SetService(Step[ServiceTarget, ServiceState | None]):
    desired: ServiceState
    action: str
    deadline_s = 900.0  # stopping MTA stacks can take 10-15 minutes
    poll_s = 5.0
    poll_max_s = 30.0

    def observe(
        self, ctx: StepContext, targets: Sequence[ServiceTarget]
    ) -> Mapping[str, ServiceState | None]:
        server = targets[0].server
        states = ctx.world.exchange.service_states(server, [target.service for target in targets])
        return {target.key: states.get(target.service) for target in targets}

    def plan(self, target: ServiceTarget, observation: ServiceState | None) -> Change:
        if observation is None:
            return WouldFail(target.key, f"no service {target.service} on {target.server}")
        if observation is self.desired:
            return NoOp(target.key, f"already {self.desired.value}")
        return Planned(target.key, self.action, before=observation.value, after=self.desired.value)

    def apply(self, ctx: StepContext, pending: Sequence[tuple[ServiceTarget, Planned]]) -> None:
        server = pending[0][0].server
        ctx.world.exchange.set_services(
            server, [target.service for target, _ in pending], self.desired
        )


class StopService(_SetService):
    name = "stop-service"
    impact = Impact.DISRUPTIVE
    summary = "Stop the MTA/SMTP (transport) services so no more mail lands in blank mailboxes"
    desired = ServiceState.STOPPED
    action = "stop"


class StartService(_SetService):
    name = "start-service"
    impact = Impact.REVERSIBLE
    summary = "Start again exactly the services this run stopped"
    desired = ServiceState.RUNNING
    action = "start"
