"""``teardown``: remove the cluster's containers from the play's hosts.

As ``daskfleet down``: when the scheduler stays, the leaving workers are
retired through it first; when it goes too, workers are stopped cleanly and
the scheduler goes last. In check mode the containers are only listed.
"""

from __future__ import annotations

from daskfleet.containers import observe_containers
from daskfleet.inventory.model import Host
from daskfleet.playbook.module import (
    Arg,
    ClusterCall,
    ClusterModule,
    ModuleResult,
    register,
)
from daskfleet.teardown import DownOptions, take_down


@register
class TeardownModule(ClusterModule):
    name = "teardown"
    args = (Arg("purge_images", "bool", default=False), Arg("timeout", "number"))

    def run(self, call: ClusterCall) -> ModuleResult:
        ctx = call.ctx
        if call.check:
            return self._preview(call)
        limit = ",".join(h.name for h in ctx.hosts)
        options = DownOptions(
            limit=limit,
            purge_images=bool(call.args.get("purge_images")),
            timeout=call.args.get("timeout") or ctx.options.timeout,
            lock_wait=ctx.options.lock_wait,
        )
        recap = take_down(ctx.inventory, ctx.fleet, options)
        call.session.adopt(recap)
        return ModuleResult(failed=not recap.ok, msg="; ".join(recap.errors))

    def _preview(self, call: ClusterCall) -> ModuleResult:
        ctx = call.ctx

        def names(host: Host) -> list[str]:
            found = observe_containers(ctx.docker.client(host), ctx.inventory.cluster)
            return [c.name for c in found]

        found = ctx.on_hosts(ctx.hosts, names)
        for host, containers in found.items():
            ctx.recap.hosts[host].actions += [f"would remove {n}" for n in containers]
        return ModuleResult(
            changed_hosts=frozenset(h for h, c in found.items() if c),
            data={"containers": found},
        )
