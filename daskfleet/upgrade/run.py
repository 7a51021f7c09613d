"""``daskfleet upgrade``: stage the new image everywhere, then roll workers.

Order: facts, observe, image, plan, stage (ship to every host before any
worker is touched), then batch by batch (see :mod:`daskfleet.upgrade.roll`),
then a health check of the whole cluster.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from contextlib import closing
from dataclasses import dataclass, field
from typing import Any

from daskfleet.client import open_client
from daskfleet.deploy import steps
from daskfleet.deploy.context import (
    DeployContext,
    DeployEvents,
    DeployOptions,
)
from daskfleet.deploy.recap import Recap
from daskfleet.deploy.run import cluster_run
from daskfleet.errors import UpgradeError
from daskfleet.images import (
    BuildRequest,
    BuiltImage,
    Versions,
    build_image,
    docker_client,
)
from daskfleet.inventory.model import Inventory
from daskfleet.plan import Action
from daskfleet.specs import scheduler_address
from daskfleet.tls import client_security
from daskfleet.upgrade.batches import Batch, plan_batches
from daskfleet.upgrade.leftovers import drop_leftovers, split_leftovers
from daskfleet.upgrade.roll import roll_batch
from daskfleet.upgrade.settings import UpgradeSettings

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class UpgradeOptions:
    """The command line's choices; ``settings`` overrides the inventory's."""

    settings: UpgradeSettings = field(default_factory=UpgradeSettings)
    image: str | None = None
    rebuild: bool = False
    restart_cluster: bool = False
    check: bool = False
    timeout: float | None = None
    accept_new_host_keys: bool = False
    connect_timeout: float = 10.0
    #: Seconds to wait for another run's deploy lock; 0: fail at once.
    lock_wait: float = 0.0


def upgrade(
    inventory: Inventory,
    options: UpgradeOptions | None = None,
    events: DeployEvents | None = None,
) -> Recap:
    """Upgrade every worker to the new image, losing no data; see the module."""
    options = options or UpgradeOptions()
    started = time.monotonic()
    deploy_options = DeployOptions(
        check=options.check,
        timeout=options.timeout,
        accept_new_host_keys=options.accept_new_host_keys,
        connect_timeout=options.connect_timeout,
        lock_wait=options.lock_wait,
    )
    hosts = inventory.select(None)
    with cluster_run(inventory, deploy_options, "upgrade", hosts, events) as ctx:
        recap = ctx.recap
        try:
            _run(ctx, options)
        except UpgradeError as exc:
            if str(exc) not in recap.errors:
                recap.errors.append(str(exc))
    recap.seconds = time.monotonic() - started
    return recap


def _run(ctx: DeployContext, options: UpgradeOptions) -> None:
    steps.gather(ctx)
    steps.observe(ctx)
    _require_every_host(ctx, "before anything changed")
    leftovers = split_leftovers(ctx)
    ctx.image = _image(ctx, options)
    steps.plan(ctx)
    assert ctx.plan is not None
    batches = plan_batches(ctx.plan.all_actions, options.settings)
    scheduler = _scheduler_change(ctx.plan.all_actions)
    ctx.recap.sections["upgrade"] = batch_section(batches, scheduler, options.settings)
    if options.check:
        return

    ctx.events.stage("stage")
    steps.ship(ctx)
    _require_every_host(ctx, "while staging the image; no worker was touched")
    if scheduler is not None:
        _restart_cluster(ctx, scheduler, options)
        return
    roll_workers(ctx, batches, options.settings)
    # The notebook holds no cluster data: it is replaced once the workers are.
    steps.apply_actions(ctx, lambda a: a.role not in ("scheduler", "worker"))
    drop_leftovers(ctx, leftovers)
    steps.health(ctx)


def _require_every_host(ctx: DeployContext, when: str) -> None:
    failed = {n: h.errors for n, h in ctx.recap.hosts.items() if h.errors}
    if failed:
        names = ", ".join(sorted(failed))
        raise UpgradeError(f"the upgrade stopped: {names} failed {when}")


def _image(ctx: DeployContext, options: UpgradeOptions) -> BuiltImage:
    ctx.events.stage("image")
    with closing(docker_client(ctx.inventory.image.builder)) as client:
        if options.image is None:
            request = BuildRequest.from_inventory(ctx.inventory)
            return build_image(client, request, force=options.rebuild)
        return existing_image(client, options.image)


def existing_image(client: Any, reference: str) -> BuiltImage:
    """An image the user built, looked up on the build daemon."""
    import docker.errors

    try:
        image = client.images.get(reference)
    except docker.errors.ImageNotFound:
        raise UpgradeError(
            f"image {reference} is not on the build daemon",
            hint="build it there first, or leave out --image to build from the inventory",
        ) from None
    versions = Versions.from_labels(image.labels or {})
    if versions is None:
        raise UpgradeError(
            f"image {reference} does not record its Dask versions (org.daskfleet.* labels)",
            hint="build it FROM a daskfleet image so it inherits them",
        )
    tag = (
        reference if ":" in reference and not reference.startswith("sha256:") else None
    )
    return BuiltImage(
        id=image.id,
        tag=tag or (image.tags[0] if image.tags else image.id),
        architecture=image.attrs.get("Architecture", ""),
        os=image.attrs.get("Os", "linux"),
        size=int(image.attrs.get("Size", 0)),
        versions=versions,
        built=False,
        seconds=0.0,
    )


def _scheduler_change(actions: tuple[Action, ...]) -> Action | None:
    changes = [a for a in actions if a.role == "scheduler" and a.changes]
    return changes[0] if changes else None


def _restart_cluster(
    ctx: DeployContext, scheduler: Action, options: UpgradeOptions
) -> None:
    if not options.restart_cluster:
        why = "; ".join(scheduler.reasons) or scheduler.kind
        raise UpgradeError(
            f"the scheduler itself must be replaced ({why}), so workers cannot be rolled; in-memory results would be lost",
            hint="run again with --restart-cluster to replace the scheduler and every worker",
        )
    logger.warning(
        "--restart-cluster: the scheduler is replaced; in-memory results are lost"
    )
    steps.scheduler(ctx)
    steps.workers(ctx)
    steps.health(ctx)


def roll_workers(
    ctx: DeployContext,
    batches: list[Batch],
    settings: UpgradeSettings,
    section: str = "upgrade",
) -> None:
    """Roll the batches in order; raise UpgradeError when too many failed.

    Each batch's outcome goes into ``ctx.recap.sections[section]``, made by
    :func:`batch_section`.
    """
    total = sum(len(b.hosts) for b in batches)
    allowed = settings.max_failed.of(total)
    failed = 0
    address = scheduler_address(ctx.inventory)
    security = client_security(ctx.inventory)
    with open_client(address, timeout=30, security=security) as client:
        for batch in batches:
            ctx.events.stage(
                f"batch {batch.number}/{len(batches)}: {', '.join(batch.hosts)}"
            )
            started = time.monotonic()
            try:
                roll_batch(ctx, batch, settings, client)
            except UpgradeError as exc:
                failed += len(batch.hosts)
                seconds = time.monotonic() - started
                _record_failure(ctx, section, batch, exc, seconds)
                if failed > allowed or batch.canary:
                    raise
                continue
            _record_batch(ctx, section, batch, "ok", time.monotonic() - started)


def _record_batch(
    ctx: DeployContext, section: str, batch: Batch, status: str, seconds: float
) -> None:
    done = ctx.recap.sections[section]["batches"][batch.number - 1]
    done.update(status=status, seconds=round(seconds, 3))


def _record_failure(
    ctx: DeployContext, section: str, batch: Batch, exc: UpgradeError, seconds: float
) -> None:
    _record_batch(ctx, section, batch, "failed", seconds)
    for host in batch.hosts:
        ctx.recap.hosts[host].fail(f"batch {batch.number} failed (see below)")
    ctx.recap.errors.append(str(exc))


def batch_section(
    batches: list[Batch], scheduler: Action | None, settings: UpgradeSettings
) -> dict[str, Any]:
    """The recap's report of a rolling run: settings, scheduler change, batches."""
    return {
        "settings": {
            **{k: str(v) for k, v in dataclasses.asdict(settings).items()},
            "batch": str(settings.batch),
            "max_failed": str(settings.max_failed),
        },
        "scheduler": None if scheduler is None else scheduler.to_dict(),
        "batches": [
            {**b.to_dict(), "status": "planned", "seconds": None} for b in batches
        ],
    }
