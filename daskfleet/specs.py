"""Desired containers: what each host should run, derived without any I/O.

:func:`build_specs` turns the inventory, each host's facts and the image into
one :class:`ContainerSpec` per container. It checks every host's capacity and
architecture first and reports all problems in one :class:`PlanError`.

How much of a host each container gets is decided in
:mod:`daskfleet.budget`; this module names the containers, writes their
commands, labels and Docker settings, and hashes them.

- Worker names are always ``<host>-<i>``, ``i`` from 0: Dask appends ``-<i>``
  to ``--name`` only when ``--nworkers`` is above 1, so a single worker is
  given ``--name <host>-0`` outright.
- A worker host with GPUs gets one worker container per GPU instead, named
  ``daskfleet-<cluster>-worker-<host>-gpu<index>`` (:mod:`daskfleet.gpuworkers`).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Literal

from daskfleet.budget import (
    GpuWorkerBudget,
    HostBudget,
    HostFacts,
    WorkerLayout,
    capacity_problems,
    format_number,
    plan_budget,
)
from daskfleet.cpusets import format_cpuset
from daskfleet.envfiles import EnvFile, env_file_for
from daskfleet.errors import PlanError
from daskfleet.gpuworkers import (
    GPU_ENVIRONMENT,
    LABEL_GPU,
    gpu_container_name,
    gpu_worker_kind,
    gpu_worker_parts,
    gpu_worker_problems,
)
from daskfleet.inventory.model import Host, Inventory, Role, Volume

#: What a container does: the inventory's roles, and the optional notebook.
ContainerRole = Literal["scheduler", "worker", "notebook"]

NETWORK_MODE = "host"
RESTART_POLICY = "unless-stopped"
GPU_DRIVER = "nvidia"

LABEL_PREFIX = "daskfleet."
LABEL_CLUSTER = "daskfleet.cluster"
LABEL_ROLE = "daskfleet.role"
LABEL_HOST = "daskfleet.host"
LABEL_SPEC_HASH = "daskfleet.spec-hash"
#: Compact JSON of the spec's salient settings, to explain a replacement.
LABEL_SPEC = "daskfleet.spec"
#: The image labels that record the versions it carries.
IMAGE_VERSION_LABEL_PREFIX = "org.daskfleet."


@dataclass(frozen=True)
class ImageRef:
    """The image every container runs: its ID, name and Docker architecture."""

    id: str
    name: str
    arch: str
    labels: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class ContainerSpec:
    """One container as it should run; ``labels`` lack only the hash label."""

    name: str
    host: str
    role: ContainerRole
    image: str
    command: tuple[str, ...]
    environment: Mapping[str, str]
    labels: Mapping[str, str]
    cpus: float
    memory: int
    volumes: tuple[Volume, ...] = ()
    #: GPU UUIDs handed to the container.
    gpus: tuple[str, ...] = ()
    workers: WorkerLayout | None = None
    #: What the hash records instead of the image ID, when not the ID itself.
    image_key: str | None = None
    #: CPUs the container is pinned to (``0-3,8``); empty: not pinned.
    cpuset: str = ""
    #: The inventory's ``env``, kept out of Docker's view (see envfiles).
    env_file: EnvFile | None = None

    @cached_property
    def spec_hash(self) -> str:
        """sha256 of everything Docker is given, except the hash label."""
        fields = self._docker_fields()
        fields["image"] = self.image_key or self.image
        if self.env_file is not None:
            fields["env_file"] = self.env_file.digest
        canonical = json.dumps(fields, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()

    @property
    def summary(self) -> dict[str, Any]:
        return dict(json.loads(self.labels[LABEL_SPEC]))

    @property
    def worker_names(self) -> tuple[str, ...]:
        return self.workers.names(self.host) if self.workers else ()

    def to_docker_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for docker SDK ``containers.create``."""
        kwargs = self._docker_fields()
        kwargs["labels"][LABEL_SPEC_HASH] = self.spec_hash
        kwargs["detach"] = True
        return kwargs

    def _docker_fields(self) -> dict[str, Any]:
        command, volumes = self.command, docker_volumes(self.volumes)
        if self.env_file is not None:
            command = self.env_file.wrap(command)
            volumes.update(self.env_file.volume())
        return {
            "name": self.name,
            "image": self.image,
            "command": list(command),
            "environment": dict(self.environment),
            "labels": dict(self.labels),
            "network_mode": NETWORK_MODE,
            "restart_policy": {"Name": RESTART_POLICY},
            "init": True,
            "nano_cpus": round(self.cpus * 1e9),
            "mem_limit": self.memory,
            "volumes": volumes,
            "device_requests": device_requests(self.gpus),
            # Only when pinned, so unpinned containers keep their hashes.
            **({"cpuset_cpus": self.cpuset} if self.cpuset else {}),
        }


def docker_volumes(volumes: Sequence[Volume]) -> dict[str, dict[str, str]]:
    """Volumes in the docker SDK's ``{host_path: {bind, mode}}`` form."""
    return {
        v.host_path: {"bind": v.container_path, "mode": "ro" if v.read_only else "rw"}
        for v in volumes
    }


def device_requests(gpus: Sequence[str]) -> list[dict[str, Any]]:
    """GPU requests as plain dicts that docker SDK's ``DeviceRequest`` takes."""
    if not gpus:
        return []
    return [{"driver": GPU_DRIVER, "device_ids": list(gpus), "capabilities": [["gpu"]]}]


def scheduler_container_name(cluster: str) -> str:
    return f"daskfleet-{cluster}-scheduler"


def worker_container_name(cluster: str, host: str) -> str:
    return f"daskfleet-{cluster}-worker-{host}"


def scheduler_address(inventory: Inventory) -> str:
    """The URL workers and clients use to reach the scheduler."""
    address = _bracketed(inventory.scheduler.address)
    protocol = "tls" if inventory.security == "tls" else "tcp"
    return f"{protocol}://{address}:{inventory.scheduler_port}"


def build_specs(
    inventory: Inventory, facts: Mapping[str, HostFacts], image: ImageRef
) -> dict[str, list[ContainerSpec]]:
    """Containers per host, in inventory order; hosts without facts are left out.

    Raises :class:`PlanError` listing every host that cannot take its share.
    """
    budgets: dict[str, HostBudget] = {}
    problems: list[str] = []
    for host in inventory.hosts.values():
        host_facts = facts.get(host.name)
        if host_facts is None:
            continue
        budget = budgets[host.name] = plan_budget(host, host_facts)
        problems += capacity_problems(inventory.path, host, host_facts, budget)
        problems += _placement_problems(inventory.path, host, host_facts, image)
    if problems:
        lines = "\n".join(f"  - {p}" for p in problems)
        raise PlanError(f"the cluster {inventory.cluster} does not fit:\n{lines}")

    return {
        name: _host_specs(inventory, inventory.hosts[name], budget, image)
        for name, budget in budgets.items()
    }


def _placement_problems(
    path: str, host: Host, facts: HostFacts, image: ImageRef
) -> list[str]:
    name, problems = host.name, []
    if image.arch != facts.docker_arch:
        problems.append(
            f"{name}: the image {image.name} is built for {image.arch} but the host is {facts.docker_arch} ({facts.arch}); build the image for {facts.docker_arch} or remove {name} from {path}"
        )
    problems += [
        f"{name}: label {key} is reserved for daskfleet; rename it in {path}"
        for key in sorted(host.labels)
        if key.startswith(LABEL_PREFIX)
    ]
    return problems + gpu_worker_problems(path, host, image.labels)


def format_resources(resources: Mapping[str, float]) -> str:
    """``--resources`` text, sorted by name: ``"GPU=1,MEM=2.5"``."""
    return ",".join(f"{k}={format_number(v)}" for k, v in sorted(resources.items()))


def _host_specs(
    inventory: Inventory, host: Host, budget: HostBudget, image: ImageRef
) -> list[ContainerSpec]:
    roles: list[Role] = ["scheduler"] if host.is_scheduler else []
    if budget.workers is not None:
        roles.append("worker")
    specs = [_spec(inventory, host, role, budget, image) for role in roles]
    specs += [_gpu_spec(inventory, host, gpu, image) for gpu in budget.gpu_workers]
    return specs


def _gpu_spec(
    inventory: Inventory, host: Host, gpu: GpuWorkerBudget, image: ImageRef
) -> ContainerSpec:
    """The worker container of one GPU: pinned, with that GPU alone."""
    kind = gpu_worker_kind(host, image.labels)
    resources = format_resources(gpu.layout.resources)
    command, details = gpu_worker_parts(
        kind, scheduler_address(inventory), host, gpu, resources
    )
    summary = _summary(details, image.id, gpu.cpus, gpu.memory, (gpu.uuid,), host)
    labels = {**_labels(inventory, host, "worker", summary), LABEL_GPU: gpu.uuid}
    name = gpu_container_name(inventory.cluster, host.name, gpu.index)
    return ContainerSpec(
        name=name,
        host=host.name,
        role="worker",
        image=image.id,
        command=command,
        environment=dict(GPU_ENVIRONMENT),
        labels=labels,
        cpus=gpu.cpus,
        memory=gpu.memory,
        volumes=host.volumes,
        gpus=(gpu.uuid,),
        workers=gpu.layout,
        cpuset=format_cpuset(gpu.cpuset),
        env_file=env_file_for(inventory.cluster, name, host.env),
    )


def _summary(
    details: Mapping[str, Any],
    image: str,
    cpus: float,
    memory: int,
    gpus: Sequence[str],
    host: Host,
) -> dict[str, Any]:
    """The settings worth naming when a container is replaced."""
    return {
        **details,
        "image": image,
        "cpus": cpus,
        "memory": memory,
        "gpus": list(gpus),
        "volumes": [str(v) for v in host.volumes],
        "env": sorted(host.env),
        "labels": dict(host.labels),
    }


def _labels(
    inventory: Inventory, host: Host, role: Role, summary: Mapping[str, Any]
) -> dict[str, str]:
    return {
        **host.labels,
        LABEL_CLUSTER: inventory.cluster,
        LABEL_ROLE: role,
        LABEL_HOST: host.name,
        LABEL_SPEC: json.dumps(summary, sort_keys=True, separators=(",", ":")),
    }


def _spec(
    inventory: Inventory, host: Host, role: Role, budget: HostBudget, image: ImageRef
) -> ContainerSpec:
    is_worker = role == "worker"
    if budget.workers is not None and is_worker:
        command, details = _worker_parts(inventory, host, budget.workers)
    else:
        command, details = _scheduler_parts(inventory, host)
    memory = budget.worker_memory if is_worker else budget.scheduler_memory
    gpus = budget.gpus if is_worker else ()

    image_key = None if is_worker else scheduler_image_key(image)
    summary = _summary(details, image_key or image.id, budget.cpus, memory, gpus, host)
    labels = _labels(inventory, host, role, summary)
    if is_worker:
        name = worker_container_name(inventory.cluster, host.name)
    else:
        name = scheduler_container_name(inventory.cluster)
    return ContainerSpec(
        name=name,
        host=host.name,
        role=role,
        image=image.id,
        command=command,
        environment={},
        labels=labels,
        cpus=budget.cpus,
        memory=memory,
        volumes=host.volumes,
        gpus=gpus,
        workers=budget.workers if is_worker else None,
        image_key=image_key,
        env_file=env_file_for(inventory.cluster, name, host.env),
    )


def scheduler_image_key(image: ImageRef) -> str | None:
    """What the scheduler needs of the image: its Python and Dask versions.

    The scheduler runs no user code, so an image that only adds packages
    leaves it running (replacing it would drop every result in memory).
    None when the image does not record its versions.
    """
    names = ("python", "dask", "distributed", "cloudpickle", "msgpack")
    found = [image.labels.get(f"{IMAGE_VERSION_LABEL_PREFIX}{n}") for n in names]
    if any(v is None for v in found):
        return None
    return " ".join(f"{n}={v}" for n, v in zip(names, found, strict=True))


def _scheduler_parts(
    inventory: Inventory, host: Host
) -> tuple[tuple[str, ...], dict[str, Any]]:
    """The scheduler's command and the settings that shape it."""
    dashboard = f"{_bracketed(host.address)}:{inventory.dashboard_port}"
    command = (
        *("dask", "scheduler", "--host", host.address),
        *("--port", str(inventory.scheduler_port)),
        *("--dashboard-address", dashboard),
    )
    details = {
        "address": host.address,
        "port": inventory.scheduler_port,
        "dashboard_port": inventory.dashboard_port,
    }
    return command, details


def _worker_parts(
    inventory: Inventory, host: Host, layout: WorkerLayout
) -> tuple[tuple[str, ...], dict[str, Any]]:
    """The worker container's command and the settings that shape it."""
    # Dask appends "-<i>" to --name only for more than one worker process.
    name = host.name if layout.nworkers > 1 else layout.names(host.name)[0]
    resources = format_resources(layout.resources)
    command: tuple[str, ...] = (
        *("dask", "worker", scheduler_address(inventory)),
        *("--name", name, "--host", host.address),
        *("--nworkers", str(layout.nworkers), "--nthreads", str(layout.nthreads)),
        *("--memory-limit", str(layout.memory_limit)),
    )
    if resources:
        command += ("--resources", resources)
    details = {
        "address": host.address,
        "scheduler": scheduler_address(inventory),
        "nworkers": layout.nworkers,
        "nthreads": layout.nthreads,
        "memory_limit": layout.memory_limit,
        "resources": resources,
    }
    return command, details


def _bracketed(address: str) -> str:
    """An IPv6 literal in brackets, so a port can follow it."""
    return f"[{address}]" if ":" in address else address
