"""Service steps: stop the transport services so no mail lands in the wrong mailbox, and start
again exactly the ones that were stopped."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from remediate.engine.changes import Change, Impact, NoOp, Planned, WouldFail
from remediate.engine.step import Step, StepContext
from remediate.model import ServiceState
from remediate.steps.targets import ServiceTarget


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
