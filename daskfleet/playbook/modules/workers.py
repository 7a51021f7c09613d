"""``workers``: place and start the workers as the deploy does.

Workers about to be replaced or removed are retired through the scheduler
first. Placement reads the host variables (``cpus``, ``memory``,
``volumes``, ``env``, ...), which a play may override in its ``vars:``.
Workers of hosts that left the inventory since the last deploy are removed
too, when the play covers every host and no ``--limit`` is given.
"""

from __future__ import annotations

from daskfleet.deploy import steps
from daskfleet.playbook.module import ClusterCall, ClusterModule, ModuleResult, register


@register
class WorkersModule(ClusterModule):
    name = "workers"
    handles_departed = True

    def run(self, call: ClusterCall) -> ModuleResult:
        call.session.stage()
        plan = call.ctx.plan
        assert plan is not None
        would = frozenset(
            a.host
            for a in plan.all_actions
            if a.changes and (a.role != "scheduler" or a.kind == "remove")
        )
        if not call.check:
            call.session.once("workers", steps.workers)
        workers = sorted(
            name for spec in plan.specs if spec.workers for name in spec.worker_names
        )
        return ModuleResult(
            data={"workers": workers},
            changed_hosts=would if call.check else None,
        )
