"""Certificate rotation: a new CA, new host and client certificates, new
containers, for the whole cluster (``daskfleet deploy --rotate-certs``).

A Dask process trusts one set of CA certificates from its start, so a new
CA means new containers, and a scheduler that is replaced starts empty.
The order, and why:

1. Facts and observation of every host: one that cannot be reached stops
   the rotation before anything changes.
2. The controller sets its certificates aside and issues new ones.
3. Image, plan (every container is replaced: the certificates' fingerprints
   are part of their specs) and ship: each host gets its new bundle in a
   directory of its own, beside the one its running containers use. A
   failure up to here deletes the new certificates and puts the old ones
   back; no running container saw a difference.
4. The scheduler is replaced. There is no way back from here: it trusts
   only the new CA, so workers still on the old certificates cannot join
   it, and the results it held in memory are lost.
5. Workers are replaced a batch at a time by the upgrade's roller (the
   inventory's ``upgrade:`` settings); each batch must prove healthy before
   the next starts. There is no rollback: the previous containers could not
   join the new scheduler.
6. The notebook, then a health check of the whole cluster. Once healthy,
   the old certificates are deleted on the controller and on the hosts.

A run that stops after step 4 says which worker hosts are done, keeps both
sets of certificates on the controller, and ``daskfleet deploy`` finishes
it with the new ones.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from pathlib import Path

from daskfleet.deploy import steps
from daskfleet.deploy.context import DeployContext, DeployEvents, DeployOptions
from daskfleet.deploy.recap import Recap
from daskfleet.deploy.run import cluster_run, scheduler_usable
from daskfleet.errors import DaskfleetError, RotationError, UpgradeError
from daskfleet.inventory.model import Inventory
from daskfleet.tls import begin_rotation, finish_rotation, undo_rotation
from daskfleet.upgrade.batches import plan_batches
from daskfleet.upgrade.run import batch_section, roll_workers

logger = logging.getLogger(__name__)

COMMAND = "deploy --rotate-certs"
SECTION = "rotation"
RESULTS_LOST = (
    "certificate rotation restarts the scheduler: results it held in memory are lost"
)


def rotate_certificates(
    inventory: Inventory,
    options: DeployOptions | None = None,
    events: DeployEvents | None = None,
) -> Recap:
    """Issue new certificates and replace every container; see the module."""
    options = options or DeployOptions()
    if inventory.security != "tls":
        raise RotationError(
            f"{inventory.path} has security: none, so the cluster has no certificates to rotate",
            hint="delete the security: none line to turn TLS on, then run daskfleet deploy",
        )
    if options.check or options.limit is not None:
        raise RotationError(
            "certificate rotation replaces every container of the cluster; it has no check mode and no host limit",
            hint="leave out --check and --limit",
        )
    started = time.monotonic()
    with cluster_run(
        inventory, options, COMMAND, inventory.select(None), events
    ) as ctx:
        try:
            _rotate(ctx)
        except (RotationError, UpgradeError) as exc:
            if str(exc) not in ctx.recap.errors:
                ctx.recap.errors.append(str(exc))
    ctx.recap.seconds = time.monotonic() - started
    return ctx.recap


def _rotate(ctx: DeployContext) -> None:
    steps.gather(ctx)
    steps.observe(ctx)
    _require_every_host(ctx, "before anything changed")
    backup = _stage_new_certificates(ctx)

    ctx.recap.warnings.append(RESULTS_LOST)
    steps.scheduler(ctx)
    if not scheduler_usable(ctx):
        raise RotationError(_unfinished(ctx, backup, scheduler_done=False))
    _replace_workers(ctx, backup)
    steps.apply_actions(ctx, lambda a: a.role not in ("scheduler", "worker"))
    steps.health(ctx)
    if ctx.recap.ok:
        finish_rotation(ctx.inventory.cluster)
        return
    ctx.recap.errors.append(_unfinished(ctx, backup, scheduler_done=True))


def _stage_new_certificates(ctx: DeployContext) -> Path:
    """New certificates on the controller and beside the old ones on hosts.

    On any failure the old certificates are put back and RotationError says
    that nothing changed.
    """
    cluster = ctx.inventory.cluster
    backup = begin_rotation(cluster)
    try:
        steps.build(ctx)
        steps.plan(ctx)
        ctx.events.stage("stage certificates and image")
        steps.ship(ctx)
        _require_every_host(ctx, "while the new certificates were installed")
    except DaskfleetError as exc:
        undo_rotation(cluster)
        raise RotationError(
            f"{exc.message}; nothing changed: every container still runs with the old certificates, which are back in place on this controller",
            hint=f"fix that, then run daskfleet deploy --rotate-certs {ctx.inventory.path} again",
        ) from exc
    except BaseException:
        undo_rotation(cluster)
        raise
    return backup


def _replace_workers(ctx: DeployContext, backup: Path) -> None:
    assert ctx.plan is not None
    settings = dataclasses.replace(ctx.inventory.upgrade, rollback=False)
    batches = plan_batches(ctx.plan.all_actions, settings)
    ctx.recap.sections[SECTION] = batch_section(batches, None, settings)
    try:
        roll_workers(ctx, batches, settings, SECTION)
    except UpgradeError as exc:
        raise RotationError(
            f"{exc.message}\n{_unfinished(ctx, backup, scheduler_done=True)}"
        ) from exc


def _require_every_host(ctx: DeployContext, when: str) -> None:
    failed = sorted(n for n, h in ctx.recap.hosts.items() if h.errors)
    if failed:
        raise RotationError(
            f"certificate rotation stopped: {', '.join(failed)} failed {when}"
        )


def _unfinished(ctx: DeployContext, backup: Path, *, scheduler_done: bool) -> str:
    """Where a rotation that stopped after changing containers left the cluster."""
    inventory = ctx.inventory
    rerun = f"daskfleet deploy {inventory.path}"
    if not scheduler_done:
        return (
            f"certificate rotation stopped: the scheduler on {inventory.scheduler.name} could not be replaced, so it may be down; "
            f"the new certificates are in use on this controller (the old ones are kept in {backup}); "
            f"run {rerun} to finish with the new certificates"
        )
    batches = ctx.recap.sections.get(SECTION, {}).get("batches", [])
    done = [h for b in batches if b["status"] == "ok" for h in b["hosts"]]
    pending = [h.name for h in inventory.workers if h.name not in done]
    return (
        f"certificate rotation did not finish: the scheduler runs with the new CA; "
        f"workers with new certificates: {', '.join(done) or 'none'}; "
        f"still on the old ones, unable to join: {', '.join(pending) or 'none'}; "
        f"the old certificates are kept in {backup}; run {rerun} to finish with the new certificates"
    )
