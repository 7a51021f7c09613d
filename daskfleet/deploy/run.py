"""One deploy, start to finish: the steps in order, with one recap."""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Iterable, Iterator

from daskfleet.deploy import history, steps
from daskfleet.deploy.context import (
    DeployContext,
    DeployEvents,
    DeployOptions,
    QuietEvents,
)
from daskfleet.deploy.recap import Recap
from daskfleet.guard import guarded_run
from daskfleet.inventory.model import Host, Inventory
from daskfleet.remote_docker import FleetDocker
from daskfleet.specs import scheduler_address
from daskfleet.ssh import SSHFleet

logger = logging.getLogger(__name__)


def deploy(
    inventory: Inventory,
    options: DeployOptions | None = None,
    events: DeployEvents | None = None,
) -> Recap:
    """Bring the selected hosts to the inventory's cluster and prove it healthy.

    Errors that concern the whole cluster (image build, capacity) raise
    before any host changes; per-host failures land in the recap.
    """
    options = options or DeployOptions()
    started = time.monotonic()
    departed = departed_hosts(inventory, options)
    hosts = inventory.select(options.limit) + departed
    with cluster_run(inventory, options, "deploy", hosts, events) as ctx:
        _run_steps(ctx)
    recap = ctx.recap
    if not options.check:
        remember_hosts(inventory, departed, recap)
    recap.seconds = time.monotonic() - started
    return recap


@contextlib.contextmanager
def cluster_run(
    inventory: Inventory,
    options: DeployOptions,
    command: str,
    hosts: tuple[Host, ...],
    events: DeployEvents | None,
) -> Iterator[DeployContext]:
    """Connections, Docker clients, lock and audit line for one run's steps."""
    recap = start_recap(inventory, hosts, options.check)
    fleet = SSHFleet(
        inventory,
        accept_new_host_keys=options.accept_new_host_keys,
        connect_timeout=options.connect_timeout,
    )
    guard = guarded_run(
        fleet,
        inventory,
        command,
        recap,
        lock_wait=options.lock_wait,
        enabled=not options.check,
    )
    with fleet, guard:
        docker = FleetDocker(fleet)
        try:
            yield DeployContext(
                inventory, options, fleet, docker, recap, events or QuietEvents(), hosts
            )
        finally:
            docker.close()


def start_recap(inventory: Inventory, hosts: Iterable[Host], check: bool) -> Recap:
    """An empty recap of a run on ``hosts``, with the cluster's addresses."""
    recap = Recap.for_hosts(inventory.cluster, [h.name for h in hosts], check)
    recap.scheduler_address = scheduler_address(inventory)
    recap.dashboard_url = dashboard_url(inventory)
    recap.warnings += security_warnings(inventory)
    return recap


def security_warnings(inventory: Inventory) -> list[str]:
    """What every recap says about a cluster that runs without TLS."""
    if inventory.security == "tls":
        return []
    return [
        f"security: none in {inventory.path}: the scheduler port ({scheduler_address(inventory)}) runs code sent by anyone who can reach it; delete the line to use TLS (the default)"
    ]


def departed_hosts(inventory: Inventory, options: DeployOptions) -> tuple[Host, ...]:
    """Hosts of the last deploy that the inventory no longer lists.

    A ``--limit`` run leaves them alone: it is about the hosts it names.
    """
    if options.limit is not None:
        return ()
    previous = history.previous_hosts(inventory.cluster)
    gone = tuple(h for name, h in previous.items() if name not in inventory.hosts)
    if gone:
        logger.info("no longer in the inventory: %s", ", ".join(h.name for h in gone))
    return gone


def remember_hosts(
    inventory: Inventory, departed: tuple[Host, ...], recap: Recap
) -> None:
    """Record the inventory's hosts, and departed hosts not yet cleaned up."""
    previous = history.previous_hosts(inventory.cluster)
    pending = {n: h for n, h in previous.items() if n not in inventory.hosts}
    for host in departed:
        if not recap.hosts[host.name].errors:
            pending.pop(host.name, None)
    history.record_hosts(
        inventory.cluster, [*inventory.hosts.values(), *pending.values()]
    )


def _run_steps(ctx: DeployContext) -> None:
    steps.gather(ctx)
    steps.observe(ctx)
    steps.build(ctx)
    steps.plan(ctx)
    if ctx.options.check:
        return
    steps.ship(ctx)
    steps.scheduler(ctx)
    steps.workers(ctx)
    if scheduler_usable(ctx):
        steps.health(ctx)
    else:
        ctx.recap.errors.append(
            "the scheduler host failed, so the cluster's health was not checked"
        )


def scheduler_usable(ctx: DeployContext) -> bool:
    """Whether the scheduler's host has no failure recorded in this run."""
    name = ctx.inventory.scheduler.name
    host = ctx.recap.hosts.get(name)
    return host is None or not host.errors


def dashboard_url(inventory: Inventory) -> str:
    """Where the scheduler's dashboard answers."""
    address = inventory.scheduler.address
    if ":" in address:
        address = f"[{address}]"
    scheme = "https" if inventory.security == "tls" else "http"
    return f"{scheme}://{address}:{inventory.dashboard_port}"
