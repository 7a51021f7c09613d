"""Take the cluster down on some or all hosts: workers first, data kept if it can be.

How workers leave depends on whether the scheduler stays:

- The scheduler stays (``--limit`` selects worker hosts only): the selected
  hosts' workers are retired through the scheduler, so the data they hold
  moves to the remaining workers, then their containers are removed.
- The scheduler goes too: nothing would be left to hold the data, so there
  is nothing to retire into. Each worker container is stopped with SIGTERM
  (``docker stop``), on which a Dask worker closes itself cleanly and tells
  the scheduler it leaves; the scheduler's container is removed last, after
  every worker's, so it sees its workers leave rather than vanish.

Removing images (``purge_images``) takes the ``daskfleet/<cluster>`` tags and
the images the cluster's containers ran from the selected hosts. Each removed
container or image counts as one change; a second run changes nothing.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from contextlib import closing
from dataclasses import dataclass

import docker
import docker.errors

from daskfleet.containers import observe_containers, remove_container
from daskfleet.deploy import DeployOptions, QuietEvents, Recap, dashboard_url
from daskfleet.deploy.context import DeployContext
from daskfleet.deploy.envstage import remove_env_files
from daskfleet.deploy.steps import hold_restarts
from daskfleet.errors import DockerError, HealthError
from daskfleet.guard import guarded_run
from daskfleet.images.build import image_repository
from daskfleet.inventory.model import Host, Inventory
from daskfleet.plan import Observed, ObservedContainer
from daskfleet.remote_docker import FleetDocker
from daskfleet.retire import retire_hosts
from daskfleet.specs import scheduler_address
from daskfleet.ssh import SSHFleet
from daskfleet.tls import client_security

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class DownOptions:
    """Which hosts, whether images go too, and how long retiring may take."""

    limit: str | None = None
    purge_images: bool = False
    #: Seconds retiring workers may take; None means the inventory's timeout.
    timeout: float | None = None
    #: Seconds to wait for another run's deploy lock; 0: fail at once.
    lock_wait: float = 0.0


def take_down(
    inventory: Inventory, fleet: SSHFleet, options: DownOptions | None = None
) -> Recap:
    """Remove the cluster's containers (and images) from the selected hosts.

    Per-host failures (unreachable host, Docker error) land in the recap and
    the other hosts go on. When retiring workers through the scheduler
    fails, their hosts are marked failed and their containers kept, so no
    data is dropped without the user knowing.
    """
    options = options or DownOptions()
    started = time.monotonic()
    hosts = inventory.select(options.limit)
    recap = Recap.for_hosts(inventory.cluster, [h.name for h in hosts], check=False)
    recap.scheduler_address = scheduler_address(inventory)
    recap.dashboard_url = dashboard_url(inventory)
    deploy_options = DeployOptions(limit=options.limit, timeout=options.timeout)
    guard = guarded_run(
        fleet, inventory, "down", recap, lock_wait=options.lock_wait, lock_optional=True
    )
    with guard, closing(FleetDocker(fleet)) as fleet_docker:
        ctx = DeployContext(
            inventory, deploy_options, fleet, fleet_docker, recap, QuietEvents(), hosts
        )
        _observe(ctx)
        _retire(ctx)
        _remove(ctx, lambda c: c.role != "scheduler")
        _remove(ctx, lambda c: c.role == "scheduler")
        remove_env_files(ctx)
        if options.purge_images:
            _purge_images(ctx)
    recap.seconds = time.monotonic() - started
    return recap


def scheduler_leaves(inventory: Inventory, hosts: tuple[Host, ...]) -> bool:
    """Whether the scheduler's host is among those taken down."""
    return inventory.scheduler in hosts


def _observe(ctx: DeployContext) -> None:
    cluster = ctx.inventory.cluster

    def look(host: Host) -> Observed:
        containers = observe_containers(ctx.docker.client(host), cluster)
        return Observed(host.name, containers)

    ctx.observed.update(ctx.on_hosts(ctx.hosts, look))


def _retire(ctx: DeployContext) -> None:
    """Retire the leaving hosts' workers when the scheduler stays up."""
    if scheduler_leaves(ctx.inventory, ctx.hosts):
        logger.info("the scheduler goes down too: workers are stopped, not retired")
        staying = {h.name for h in ctx.inventory.workers} - {h.name for h in ctx.hosts}
        if staying:
            logger.warning(
                "the scheduler goes down but workers on %s stay, without a scheduler",
                ", ".join(sorted(staying)),
            )
        return
    workers = {
        name: [c.name for c in observed.containers if c.role == "worker" and c.running]
        for name, observed in ctx.observed.items()
    }
    leaving = [name for name, found in workers.items() if found]
    hold_restarts(ctx, {name: workers[name] for name in leaving})
    try:
        retired = retire_hosts(
            scheduler_address(ctx.inventory),
            leaving,
            timeout=ctx.timeout,
            security=client_security(ctx.inventory),
        )
    except HealthError as exc:
        for name in leaving:
            ctx.recap.hosts[name].fail(f"{exc}; its containers were left running")
        return
    for name in retired:
        host = name.rsplit("-", 1)[0]
        ctx.recap.hosts[host].actions.append(f"retire {name}")


def _remove(ctx: DeployContext, chosen: Callable[[ObservedContainer], bool]) -> None:
    todo = {
        name: [c.name for c in observed.containers if chosen(c)]
        for name, observed in ctx.observed.items()
    }
    hosts = ctx.healthy_hosts(name for name, names in todo.items() if names)

    def remove(host: Host) -> list[str]:
        client = ctx.docker.client(host)
        return [n for n in todo[host.name] if _remove_one(client, host.name, n)]

    for name, removed in ctx.on_hosts(hosts, remove).items():
        ctx.recap.hosts[name].changed += len(removed)
        ctx.recap.hosts[name].actions += [f"remove {n}" for n in removed]


def _remove_one(client: docker.DockerClient, host: str, name: str) -> bool:
    try:
        removed = remove_container(client, name)
    except docker.errors.APIError as exc:
        raise DockerError(
            host, f"removing {name} failed: {exc.explanation or exc}"
        ) from exc
    if removed:
        logger.info("%s: removed %s", host, name)
    return removed


def _purge_images(ctx: DeployContext) -> None:
    repository = image_repository(ctx.inventory.cluster)

    def purge(host: Host) -> list[str]:
        observed = ctx.observed.get(host.name, Observed(host.name))
        used = {c.image_id for c in observed.containers}
        client = ctx.docker.client(host)
        return remove_images(client, host.name, repository, used)

    for name, removed in ctx.on_hosts(ctx.healthy_hosts(), purge).items():
        ctx.recap.hosts[name].changed += len(removed)
        ctx.recap.hosts[name].actions += [f"remove image {i}" for i in removed]


def remove_images(
    client: docker.DockerClient, host: str, repository: str, used: set[str]
) -> list[str]:
    """Remove images tagged ``repository:*`` or in ``used``; return what went.

    Only the cluster's own tags are removed (an image also tagged otherwise
    keeps its other tags); an image a container outside the cluster still
    uses is kept and logged.
    """
    removed = []
    for image in client.images.list():
        ours = [t for t in image.tags if t.rpartition(":")[0] == repository]
        if not ours and image.id not in used:
            continue
        label = ours[0] if ours else image.short_id
        try:
            for reference in ours or [image.id]:
                client.images.remove(reference)
        except docker.errors.NotFound:
            continue
        except docker.errors.APIError as exc:
            logger.warning("%s: kept image %s: %s", host, label, exc.explanation)
            continue
        logger.info("%s: removed image %s", host, label)
        removed.append(label)
    return removed
