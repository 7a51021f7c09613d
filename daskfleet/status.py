"""The cluster as it runs now: containers per host, workers the scheduler sees.

Read-only. Each host's containers come from its Docker daemon over SSH; the
workers each container should run come from its ``daskfleet.spec`` label
(``nworkers``), named ``<host>-<i>``; whether they are there, and their
memory, comes from the scheduler. A host is ``ok``, ``unreachable`` or
``degraded`` (a container missing or stopped, a worker not registered, or
its Docker daemon failing); the scheduler being down is reported as such.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from contextlib import closing
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Literal

import docker
import docker.errors
from distributed.security import Security
from docker.models.containers import Container

from daskfleet.client import open_client
from daskfleet.containers import cluster_containers
from daskfleet.deploy import dashboard_url
from daskfleet.errors import HealthError
from daskfleet.inventory.model import Host, Inventory
from daskfleet.plan import RUNNING_STATES, ObservedContainer
from daskfleet.remote_docker import FleetDocker
from daskfleet.results import HostResult
from daskfleet.retire import workers_of_hosts
from daskfleet.specs import LABEL_ROLE, scheduler_address
from daskfleet.ssh import SSHFleet
from daskfleet.tls import client_security

logger = logging.getLogger(__name__)

HostState = Literal["ok", "unreachable", "degraded"]
#: Scheduler worker address to the scheduler's description of that worker.
WorkerInfo = Mapping[str, Mapping[str, Any]]

_SHORT_ID = 12


@dataclass(frozen=True)
class ContainerStatus:
    """One container of the cluster as its host's Docker daemon reports it."""

    name: str
    role: str
    state: str
    image_id: str
    image_tags: tuple[str, ...] = ()
    started_at: datetime | None = None
    #: Worker processes the container was started with (its spec label).
    nworkers: int = 0

    @property
    def running(self) -> bool:
        return self.state in RUNNING_STATES

    @property
    def short_image_id(self) -> str:
        """The image ID as ``docker ps`` shows it: 12 hex digits."""
        return self.image_id.removeprefix("sha256:")[:_SHORT_ID]

    def uptime(self, now: datetime) -> float | None:
        """Seconds since the container started; None when it is not running."""
        if not self.running or self.started_at is None:
            return None
        return max(0.0, (now - self.started_at).total_seconds())

    def to_dict(self, now: datetime) -> dict[str, Any]:
        uptime = self.uptime(now)
        return {
            "name": self.name,
            "role": self.role,
            "state": self.state,
            "image_id": self.image_id,
            "image_tags": list(self.image_tags),
            "started_at": self.started_at.isoformat() if self.started_at else None,
            "uptime_seconds": None if uptime is None else round(uptime, 1),
            "nworkers": self.nworkers,
        }


@dataclass(frozen=True)
class WorkerStatus:
    """A worker a container should run, and what the scheduler says of it.

    ``registered`` is None when the scheduler could not be asked.
    ``expected`` is False for a worker registered under the host's naming
    pattern that no container of the host accounts for.
    """

    name: str
    registered: bool | None
    address: str | None = None
    memory: int | None = None
    memory_limit: int | None = None
    nthreads: int | None = None
    expected: bool = True
    #: Task counts from the worker's last heartbeat: running, waiting to
    #: run, and results held in memory.
    executing: int | None = None
    queued: int | None = None
    in_memory: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "registered": self.registered,
            "address": self.address,
            "memory": self.memory,
            "memory_limit": self.memory_limit,
            "nthreads": self.nthreads,
            "expected": self.expected,
            "executing": self.executing,
            "queued": self.queued,
            "in_memory": self.in_memory,
        }


@dataclass(frozen=True)
class HostStatus:
    """One host: its containers, its workers and what is wrong with them."""

    host: str
    status: HostState
    containers: tuple[ContainerStatus, ...] = ()
    workers: tuple[WorkerStatus, ...] = ()
    problems: tuple[str, ...] = ()
    #: Why the host could not be inspected (SSH or Docker failed).
    error: str | None = None

    def to_dict(self, now: datetime) -> dict[str, Any]:
        return {
            "status": self.status,
            "containers": [c.to_dict(now) for c in self.containers],
            "workers": [w.to_dict() for w in self.workers],
            "problems": list(self.problems),
            "error": self.error,
        }


@dataclass(frozen=True)
class ClusterStatus:
    """Every selected host's status and whether the scheduler answers."""

    cluster: str
    scheduler: str
    dashboard: str
    scheduler_reachable: bool
    hosts: dict[str, HostStatus]
    scheduler_error: str | None = None
    observed_at: datetime = field(default_factory=lambda: datetime.now(timezone.utc))

    @property
    def ok(self) -> bool:
        hosts_ok = all(h.status == "ok" for h in self.hosts.values())
        return hosts_ok and self.scheduler_reachable

    def to_dict(self) -> dict[str, Any]:
        return {
            "cluster": self.cluster,
            "ok": self.ok,
            "scheduler": self.scheduler,
            "dashboard": self.dashboard,
            "scheduler_reachable": self.scheduler_reachable,
            "scheduler_error": self.scheduler_error,
            "hosts": {
                name: h.to_dict(self.observed_at) for name, h in self.hosts.items()
            },
        }


def cluster_status(
    inventory: Inventory,
    hosts: Sequence[Host],
    fleet: SSHFleet,
    *,
    timeout: float = 10.0,
) -> ClusterStatus:
    """Inspect ``hosts``, then ask the scheduler for its workers.

    ``timeout`` bounds the wait for the scheduler, which is not asked when
    its host was inspected and runs no scheduler container. Unreachable hosts and an
    unreachable scheduler are reported in the result, never raised.
    """
    address = scheduler_address(inventory)
    with closing(FleetDocker(fleet)) as fleet_docker:
        results = fleet.map(
            lambda h: _host_containers(fleet_docker.client(h), inventory.cluster),
            hosts,
        )
    not_running = scheduler_not_running(inventory.scheduler.name, results)
    if not_running is None:
        workers, scheduler_error = _ask_scheduler(
            address, timeout, client_security(inventory)
        )
    else:
        workers, scheduler_error = None, not_running
    statuses = {
        host.name: host_status(host, results[host.name], workers) for host in hosts
    }
    return ClusterStatus(
        cluster=inventory.cluster,
        scheduler=address,
        dashboard=dashboard_url(inventory),
        scheduler_reachable=workers is not None,
        hosts=statuses,
        scheduler_error=scheduler_error,
    )


def scheduler_not_running(
    name: str, results: Mapping[str, HostResult[tuple[ContainerStatus, ...]]]
) -> str | None:
    """Why the scheduler cannot answer, when its host's containers say so."""
    result = results.get(name)
    if result is None or result.value is None:
        return None
    if any(c.role == "scheduler" and c.running for c in result.value):
        return None
    return f"no scheduler container runs on {name}"


def _ask_scheduler(
    address: str, timeout: float, security: Security | None
) -> tuple[WorkerInfo | None, str | None]:
    """The scheduler's workers, or None and why it could not be asked."""
    try:
        with open_client(address, timeout=timeout, security=security) as client:
            workers: WorkerInfo = client.scheduler_info(n_workers=-1)["workers"]
            return workers, None
    except HealthError as exc:
        logger.info("scheduler %s: %s", address, exc.message)
        return None, exc.message


def _host_containers(
    client: docker.DockerClient, cluster: str
) -> tuple[ContainerStatus, ...]:
    return tuple(
        container_status(c.attrs, _image_tags(client, c))
        for c in cluster_containers(client, cluster)
    )


def _image_tags(client: docker.DockerClient, container: Container) -> tuple[str, ...]:
    try:
        tags: list[str] = client.images.get(container.attrs.get("Image", "")).tags
    except docker.errors.NotFound:
        return ()
    return tuple(tags)


def container_status(
    attrs: Mapping[str, Any], image_tags: Sequence[str] = ()
) -> ContainerStatus:
    """A container's status from Docker's ``inspect`` output."""
    labels = attrs.get("Config", {}).get("Labels") or {}
    observed = ObservedContainer(
        name=str(attrs.get("Name", "")).lstrip("/"),
        image_id=attrs.get("Image", ""),
        state=attrs.get("State", {}).get("Status", "unknown"),
        labels=labels,
    )
    summary = observed.summary or {}
    return ContainerStatus(
        name=observed.name,
        role=labels.get(LABEL_ROLE, "unknown"),
        state=observed.state,
        image_id=observed.image_id,
        image_tags=tuple(image_tags),
        started_at=parse_docker_time(attrs.get("State", {}).get("StartedAt")),
        nworkers=int(summary.get("nworkers", 0)) if observed.role == "worker" else 0,
    )


def parse_docker_time(text: str | None) -> datetime | None:
    """Docker's RFC 3339 time (nanoseconds, ``Z``); None for its zero time."""
    if not text or text.startswith("0001-"):
        return None
    stamp, _, fraction = text.rstrip("Z").partition(".")
    digits = fraction.split("+")[0].split("-")[0][:6]
    try:
        parsed = datetime.fromisoformat(f"{stamp}.{digits:0<6}")
    except ValueError:
        return None
    return parsed.replace(tzinfo=timezone.utc)


def expected_workers(host: str, containers: Sequence[ContainerStatus]) -> list[str]:
    """``<host>-<i>`` for every worker process the host's containers run."""
    count = sum(c.nworkers for c in containers if c.role == "worker")
    return [f"{host}-{i}" for i in range(count)]


def worker_statuses(
    host: str, expected: Sequence[str], scheduler_workers: WorkerInfo | None
) -> tuple[WorkerStatus, ...]:
    """Each expected worker, then any other worker registered as the host's."""
    if scheduler_workers is None:
        return tuple(WorkerStatus(name, registered=None) for name in expected)
    by_name = {
        name: address
        for address, name in workers_of_hosts(scheduler_workers, [host]).items()
    }
    names = list(expected) + sorted(set(by_name) - set(expected))
    return tuple(
        _worker(name, by_name.get(name), scheduler_workers, name in expected)
        for name in names
    )


def _worker(
    name: str, address: str | None, workers: WorkerInfo, expected: bool
) -> WorkerStatus:
    if address is None:
        return WorkerStatus(name, registered=False, expected=expected)
    info = workers[address]
    metrics = info.get("metrics", {})
    memory = metrics.get("memory")
    tasks = metrics.get("task_counts") or {}
    return WorkerStatus(
        name,
        registered=True,
        address=address,
        memory=None if memory is None else int(memory),
        memory_limit=info.get("memory_limit"),
        nthreads=info.get("nthreads"),
        expected=expected,
        executing=_count(tasks, _EXECUTING),
        queued=_count(tasks, _QUEUED),
        in_memory=_count(tasks, ("memory",)),
    )


#: Worker task states (the heartbeat's ``task_counts``) shown as one number.
_EXECUTING = ("executing", "long-running")
_QUEUED = ("ready", "constrained", "waiting", "fetch", "flight")


def _count(task_counts: Mapping[str, int], states: Sequence[str]) -> int:
    return sum(int(task_counts.get(state, 0)) for state in states)


def host_status(
    host: Host,
    result: HostResult[tuple[ContainerStatus, ...]],
    scheduler_workers: WorkerInfo | None,
) -> HostStatus:
    """Classify one host from its containers and the scheduler's workers."""
    if result.error is not None:
        return HostStatus(
            host.name,
            "unreachable" if result.unreachable else "degraded",
            error=result.error.message.removeprefix(f"{host.name}: "),
        )
    containers = result.value or ()
    workers = worker_statuses(
        host.name, expected_workers(host.name, containers), scheduler_workers
    )
    problems = host_problems(host, containers, workers)
    return HostStatus(
        host.name, "degraded" if problems else "ok", containers, workers, problems
    )


def host_problems(
    host: Host,
    containers: Sequence[ContainerStatus],
    workers: Sequence[WorkerStatus],
) -> tuple[str, ...]:
    """What is wrong: missing or stopped containers, unregistered workers."""
    roles = {c.role for c in containers}
    problems = [
        f"no {role} container (run `daskfleet deploy` to start it)"
        for role in host.roles
        if role not in roles
    ]
    problems += [
        f"container {c.name} is {c.state}" for c in containers if not c.running
    ]
    problems += [
        f"worker {w.name} is not registered with the scheduler"
        for w in workers
        if w.registered is False
    ]
    return tuple(problems)
