"""``scheduler``: create, replace or start the scheduler container as planned."""

from __future__ import annotations

from daskfleet.deploy import steps
from daskfleet.playbook.module import ClusterCall, ClusterModule, ModuleResult, register


@register
class SchedulerModule(ClusterModule):
    """The deploy's scheduler step; stages the image first if no task did."""

    name = "scheduler"

    def run(self, call: ClusterCall) -> ModuleResult:
        call.session.stage()
        plan = call.ctx.plan
        assert plan is not None
        would = frozenset(
            a.host for a in plan.all_actions if a.role == "scheduler" and a.changes
        )
        if not call.check:
            call.session.once("scheduler", steps.scheduler)
        return ModuleResult(
            data={"address": call.ctx.recap.scheduler_address},
            changed_hosts=would if call.check else None,
        )
