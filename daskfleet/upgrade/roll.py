"""Roll one batch: check room, retire, swap containers, prove, or roll back.

The containers a batch replaces are not deleted at once: each is renamed
``<name>.previous`` and kept stopped on its host until the new one has
proven healthy, so a failed batch can be put back exactly as it was.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Iterable, Mapping
from typing import Any

import dask.config
import docker
import docker.errors
from distributed import Client

from daskfleet.containers import remove_container, run_container
from daskfleet.deploy.context import DeployContext
from daskfleet.deploy.steps import expected_workers, hold_restarts
from daskfleet.errors import HealthError, UpgradeError
from daskfleet.health import ExpectedWorker, HealthReport, check_health
from daskfleet.inventory.model import Host
from daskfleet.plan import Action
from daskfleet.retire import retire_hosts, workers_of_hosts
from daskfleet.sizes import format_size
from daskfleet.specs import RESTART_POLICY, scheduler_address
from daskfleet.tls import client_security
from daskfleet.upgrade.batches import Batch
from daskfleet.upgrade.settings import UpgradeSettings

logger = logging.getLogger(__name__)

PREVIOUS_SUFFIX = ".previous"
_GPU_CONTAINER = re.compile(r"-gpu(\d+)$")
LOG_TAIL_LINES = 15


def previous_name(name: str) -> str:
    return name + PREVIOUS_SUFFIX


def roll_batch(
    ctx: DeployContext, batch: Batch, settings: UpgradeSettings, client: Client
) -> None:
    """Replace the batch's containers; raise UpgradeError if it fails.

    On failure the batch is rolled back (unless ``settings.rollback`` is
    off) and the error names each failing host with its log tail.
    """
    check_room(client, batch)
    replaced = {a.host: [a.name] for a in batch.actions if a.kind == "replace"}
    hold_restarts(ctx, replaced)
    try:
        retire_hosts(
            scheduler_address(ctx.inventory),
            batch.hosts,
            timeout=ctx.timeout,
            security=client_security(ctx.inventory),
        )
    except HealthError as exc:
        _restore(ctx, batch, renamed=False)
        raise UpgradeError(
            f"batch {batch.number}: {exc}; its workers were restarted"
        ) from exc

    _swap(ctx, batch)
    problems = _prove(ctx, batch, settings)
    if not problems:
        _drop_previous(ctx, batch)
        return
    logs = _log_tails(ctx, batch)
    if settings.rollback:
        _restore(ctx, batch, renamed=True)
        problems += _prove_restored(ctx, batch)
    raise UpgradeError(_failure_message(batch, problems, logs, settings.rollback))


def check_room(client: Client, batch: Batch) -> None:
    """Refuse a batch whose data the remaining workers cannot take in."""
    workers = client.scheduler_info(n_workers=-1)["workers"]
    leaving = workers_of_hosts(workers, batch.hosts)
    held = sum(workers[a]["metrics"].get("managed_bytes", 0) for a in leaving)
    target = float(dask.config.get("distributed.worker.memory.target") or 0.6)
    room = sum(
        max(0, int(w["memory_limit"] * target) - w["metrics"].get("memory", 0))
        for a, w in workers.items()
        if a not in leaving
    )
    if held > room:
        raise UpgradeError(
            f"batch {batch.number} ({', '.join(batch.hosts)}) holds {format_size(held)} but the other workers have room for {format_size(room)} below their spill threshold; nothing was changed",
            hint="use a smaller --batch, add workers, or release results before upgrading",
        )


def _swap(ctx: DeployContext, batch: Batch) -> None:
    def swap(host: Host) -> None:
        client = ctx.docker.client(host)
        for action in _actions_of(batch, host.name):
            _swap_one(client, action)

    ctx.on_hosts(_hosts(ctx, batch.hosts), swap)
    for action in batch.actions:
        ctx.recap.hosts[action.host].changed += 1
        ctx.recap.hosts[action.host].actions.append(f"{action.kind} {action.name}")


def _swap_one(client: docker.DockerClient, action: Action) -> None:
    assert action.spec is not None
    if action.kind == "start":
        client.containers.get(action.name).start()
        return
    if action.kind == "replace":
        remove_container(client, previous_name(action.name))
        old = client.containers.get(action.name)
        if old.status in ("running", "restarting"):
            old.stop()
        old.rename(previous_name(action.name))
    run_container(client, action.spec)


def _prove(ctx: DeployContext, batch: Batch, settings: UpgradeSettings) -> list[str]:
    """Problems of the new workers, after the deadline and the quiet time."""
    expected = expected_workers(a.spec for a in batch.actions if a.spec is not None)
    report = _check(ctx, expected, batch, settings.healthy_deadline)
    if not report.ok or settings.min_healthy_time <= 0:
        return report.problems()
    time.sleep(settings.min_healthy_time)
    again = _check(ctx, expected, batch, 30.0)
    moved = [
        f"worker {w.name} restarted during the {settings.min_healthy_time:g} s it had to stay healthy"
        for w, v in zip(report.workers, again.workers, strict=True)
        if v.address != w.address
    ]
    return again.problems() + moved


def _check(
    ctx: DeployContext, expected: list[ExpectedWorker], batch: Batch, timeout: float
) -> HealthReport:
    others = [h for h in ctx.inventory.hosts if h not in batch.hosts]
    return check_health(
        scheduler_address(ctx.inventory),
        expected,
        timeout=timeout,
        tolerated_hosts=others,
        security=client_security(ctx.inventory),
    )


def _restore(ctx: DeployContext, batch: Batch, *, renamed: bool) -> None:
    """Put the batch's previous containers back and start them."""

    def restore(host: Host) -> None:
        client = ctx.docker.client(host)
        for action in _actions_of(batch, host.name):
            if action.kind != "replace":
                remove_container(client, action.name)
                continue
            if renamed:
                remove_container(client, action.name)
                client.containers.get(previous_name(action.name)).rename(action.name)
            old = client.containers.get(action.name)
            old.update(restart_policy={"Name": RESTART_POLICY})
            old.start()

    ctx.on_hosts(_hosts(ctx, batch.hosts), restore)
    for host in batch.hosts:
        ctx.recap.hosts[host].actions.append("rolled back to the previous containers")


def _prove_restored(ctx: DeployContext, batch: Batch) -> list[str]:
    expected = [
        worker
        for action in batch.actions
        if action.observed is not None and action.kind == "replace"
        for worker in expected_from_summary(
            action.host, action.name, action.observed.summary
        )
    ]
    report = _check(ctx, expected, batch, ctx.timeout)
    return [f"after rollback: {p}" for p in report.problems()]


def expected_from_summary(
    host: str, container: str, summary: Mapping[str, Any] | None
) -> list[ExpectedWorker]:
    """The workers an existing container runs, read from its spec label.

    A GPU worker container (``...-gpu<index>``) runs one worker named
    ``<host>-gpu<index>``; others run ``nworkers`` named ``<host>-<i>``.
    """
    if not summary or "nthreads" not in summary:
        return []
    gpu = _GPU_CONTAINER.search(container) if "gpu" in summary else None
    if gpu is not None:
        names = [f"{host}-gpu{gpu.group(1)}"]
    else:
        names = [f"{host}-{i}" for i in range(int(summary.get("nworkers", 1)))]
    resources = {
        name: float(amount)
        for name, amount in (
            item.split("=", 1)
            for item in str(summary.get("resources") or "").split(",")
            if item
        )
    }
    return [
        ExpectedWorker(
            name,
            host,
            int(summary["nthreads"]),
            int(summary["memory_limit"]),
            resources,
        )
        for name in names
    ]


def _drop_previous(ctx: DeployContext, batch: Batch) -> None:
    def drop(host: Host) -> None:
        client = ctx.docker.client(host)
        for action in _actions_of(batch, host.name):
            remove_container(client, previous_name(action.name))

    ctx.on_hosts(_hosts(ctx, batch.hosts), drop)


def _log_tails(ctx: DeployContext, batch: Batch) -> dict[str, str]:
    """The last log lines of each new container, to say why it failed."""

    def tail(host: Host) -> str:
        client = ctx.docker.client(host)
        lines = []
        for action in _actions_of(batch, host.name):
            try:
                raw = client.containers.get(action.name).logs(tail=LOG_TAIL_LINES)
            except docker.errors.NotFound:
                continue
            lines.append(raw.decode(errors="replace").rstrip())
        return "\n".join(lines)

    return ctx.on_hosts(_hosts(ctx, batch.hosts), tail)


def _failure_message(
    batch: Batch, problems: list[str], logs: Mapping[str, str], rolled_back: bool
) -> str:
    lines = [f"batch {batch.number} ({', '.join(batch.hosts)}) did not become healthy:"]
    lines += [f"  {p}" for p in problems]
    for host, text in logs.items():
        if text:
            lines.append(f"  {host} container log (last lines):")
            lines += [f"    {line}" for line in text.splitlines()[-LOG_TAIL_LINES:]]
    lines.append(
        "  the batch was rolled back to its previous containers; later batches were not started"
        if rolled_back
        else "  no rollback: the failed containers were left as they are"
    )
    return "\n".join(lines)


def _actions_of(batch: Batch, host: str) -> list[Action]:
    return [a for a in batch.actions if a.host == host]


def _hosts(ctx: DeployContext, names: Iterable[str]) -> list[Host]:
    wanted = set(names)
    return [h for h in ctx.hosts if h.name in wanted]
