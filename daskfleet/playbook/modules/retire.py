"""``retire``: drain the workers of the play's hosts through the scheduler.

Docker's restart policy of their containers is lifted first, so the workers
stay down once the scheduler has moved their data to the other workers and
closed them. A later deploy starts them again.
"""

from __future__ import annotations

from daskfleet.containers import observe_containers
from daskfleet.deploy.steps import hold_restarts
from daskfleet.inventory.model import Host
from daskfleet.playbook.module import (
    Arg,
    ClusterCall,
    ClusterModule,
    ModuleResult,
    register,
)
from daskfleet.retire import retire_hosts, worker_name_pattern
from daskfleet.specs import scheduler_address
from daskfleet.tls import client_security


@register
class RetireModule(ClusterModule):
    name = "retire"
    args = (Arg("timeout", "number"),)

    def run(self, call: ClusterCall) -> ModuleResult:
        ctx = call.ctx
        cluster = ctx.inventory.cluster
        call.session.lock()

        def running_workers(host: Host) -> list[str]:
            found = observe_containers(ctx.docker.client(host), cluster)
            return [c.name for c in found if c.role == "worker" and c.running]

        hosts = [h for h in ctx.healthy_hosts() if h.is_worker]
        found = {n: c for n, c in ctx.on_hosts(hosts, running_workers).items() if c}
        if call.check:
            return ModuleResult(changed_hosts=frozenset(found))
        hold_restarts(ctx, found)
        timeout = call.args.get("timeout") or ctx.timeout
        retired = retire_hosts(
            scheduler_address(ctx.inventory),
            list(found),
            timeout=timeout,
            security=client_security(ctx.inventory),
        )
        for host in found:
            mine = [n for n in retired if worker_name_pattern(host).fullmatch(n)]
            ctx.recap.hosts[host].changed += len(mine)
            ctx.recap.hosts[host].actions += [f"retire {n}" for n in mine]
        return ModuleResult(data={"retired": retired})
