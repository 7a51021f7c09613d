"""How much of each host the cluster takes, and whether the host has it.

Pure arithmetic on the inventory and the host's facts; every default lives
here as a named constant.

- Budget: the inventory's ``cpus`` / ``memory``, else the host's facts minus
  a reserve for the operating system (:data:`CPU_RESERVE`,
  :data:`MEMORY_RESERVE_FRACTION`).
- The scheduler container gets the whole budget on a scheduler-only host. On
  a host that is also a worker it gets a share of the memory
  (:data:`SCHEDULER_SHARE_FRACTION`) and the worker container the rest. Both
  keep the full CPU budget as their cap: a CPU cap reserves nothing, and the
  scheduler is mostly idle.
- One worker container per host runs ``--nworkers`` processes. Unless the
  inventory sets ``nworkers`` / ``nthreads``, the split is Dask's own
  ``--nworkers auto`` (:func:`distributed.deploy.utils.nprocesses_nthreads`)
  over the whole CPUs of the budget.
- Each worker's ``--memory-limit`` is the worker container's memory less a
  headroom (:data:`WORKER_HEADROOM_FRACTION`), divided by the number of
  workers, so Dask spills and pauses before the kernel's OOM killer acts.
- A worker host with GPUs runs one worker container per GPU instead: the
  CPU budget and the worker memory are split evenly between them, and each
  is pinned to its share of the GPU's local CPUs (:mod:`daskfleet.cpusets`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from distributed.deploy.utils import nprocesses_nthreads

from daskfleet.cpusets import split_cpusets
from daskfleet.inventory.model import GpuRequest, Host
from daskfleet.sizes import format_size

GIB = 1024**3
MIB = 1024**2

#: CPUs left to the host's own processes when the inventory sets no ``cpus``,
#: on hosts with at least :data:`CPU_RESERVE_MIN_HOST_CPUS` CPUs.
CPU_RESERVE = 1
CPU_RESERVE_MIN_HOST_CPUS = 3
#: Memory left to the host when the inventory sets no ``memory``: this
#: fraction, at least the minimum, at most the cap (a fraction of the total).
MEMORY_RESERVE_FRACTION = 0.10
MEMORY_RESERVE_MIN = 1 * GIB
MEMORY_RESERVE_CAP_FRACTION = 0.5
#: Part of a worker container's memory kept below the sum of the workers'
#: ``--memory-limit``: fraction, minimum, cap as above.
WORKER_HEADROOM_FRACTION = 0.10
WORKER_HEADROOM_MIN = 256 * MIB
WORKER_HEADROOM_CAP_FRACTION = 0.5
#: A worker process with less memory than this is a planning error.
WORKER_MIN_MEMORY = 256 * MIB
#: The scheduler's memory on a host that also runs workers.
SCHEDULER_SHARE_FRACTION = 0.10
SCHEDULER_SHARE_MIN = 1 * GIB
SCHEDULER_SHARE_CAP_FRACTION = 0.5


class GpuFacts(Protocol):
    """One GPU as the facts layer reports it."""

    @property
    def index(self) -> int: ...
    @property
    def uuid(self) -> str: ...
    @property
    def local_cpus(self) -> Sequence[int]: ...


class HostFacts(Protocol):
    """What the planner needs from a host's facts (memory in bytes).

    :class:`daskfleet.facts.Facts` is one; tests may pass any other.
    """

    @property
    def host(self) -> str: ...
    @property
    def cpus(self) -> int: ...
    @property
    def memory(self) -> int: ...
    @property
    def arch(self) -> str: ...
    @property
    def docker_arch(self) -> str: ...
    @property
    def gpus(self) -> Sequence[GpuFacts]: ...


@dataclass(frozen=True)
class WorkerLayout:
    """The Dask worker processes one worker container runs."""

    nworkers: int
    nthreads: int
    #: Bytes per worker process.
    memory_limit: int
    resources: Mapping[str, float] = field(default_factory=dict)
    #: The GPU of a GPU worker (one process): its name is ``<host>-gpu<index>``.
    gpu_index: int | None = None

    def names(self, host: str) -> tuple[str, ...]:
        """``<host>-<i>`` for each process, ``i`` from 0."""
        if self.gpu_index is not None:
            return (f"{host}-gpu{self.gpu_index}",)
        return tuple(f"{host}-{i}" for i in range(self.nworkers))


@dataclass(frozen=True)
class GpuWorkerBudget:
    """The worker container of one GPU: its GPU, CPUs and memory."""

    index: int
    uuid: str
    cpuset: tuple[int, ...]
    #: The container's CPU cap and memory limit.
    cpus: float
    memory: int
    layout: WorkerLayout


@dataclass(frozen=True)
class HostBudget:
    """A host's resources as planned, split between its containers."""

    cpus: float
    memory: int
    scheduler_memory: int
    worker_memory: int
    #: UUIDs of the GPUs the worker container gets.
    gpus: tuple[str, ...]
    #: How many GPUs the inventory asks for, and entries the host lacks.
    gpus_requested: int
    unknown_gpus: tuple[int | str, ...]
    #: The one worker container's processes; None on GPU hosts (see below).
    workers: WorkerLayout | None
    #: One worker container per GPU on a worker host with GPUs.
    gpu_workers: tuple[GpuWorkerBudget, ...] = ()


def plan_budget(host: Host, facts: HostFacts) -> HostBudget:
    """The host's CPUs, memory and GPUs, split between its containers."""
    cpus = host.cpus if host.cpus is not None else _default_cpus(facts.cpus)
    memory = host.memory if host.memory is not None else _default_memory(facts)

    scheduler_memory = 0
    if host.is_scheduler:
        scheduler_memory = memory
        if host.is_worker:
            scheduler_memory = _bounded_share(
                memory,
                SCHEDULER_SHARE_FRACTION,
                SCHEDULER_SHARE_MIN,
                SCHEDULER_SHARE_CAP_FRACTION,
            )
    worker_memory = memory - scheduler_memory if host.is_worker else 0

    gpus, requested, unknown = _select_gpus(host.gpus, facts.gpus)
    layout: WorkerLayout | None = None
    per_gpu: tuple[GpuWorkerBudget, ...] = ()
    if host.is_worker and gpus:
        per_gpu = _gpu_workers(host, facts, gpus, cpus, worker_memory)
    elif host.is_worker:
        layout = _worker_layout(host, cpus, worker_memory)
    return HostBudget(
        cpus,
        memory,
        scheduler_memory,
        worker_memory,
        gpus,
        requested,
        unknown,
        layout,
        per_gpu,
    )


def capacity_problems(
    path: str, host: Host, facts: HostFacts, budget: HostBudget
) -> list[str]:
    """Every reason ``host`` cannot give ``budget``, as messages for the user."""
    checks = (_cpu_problem, _memory_problem, _gpu_problem, _worker_memory_problem)
    found = [check(path, host, facts, budget) for check in checks]
    return [problem for problem in found if problem]


def _cpu_problem(
    path: str, host: Host, facts: HostFacts, budget: HostBudget
) -> str | None:
    if budget.cpus <= facts.cpus:
        return None
    want, fix = format_number(budget.cpus), _setting(host, "cpus")
    return f"{host.name}: cpus {want} requested but the host has {facts.cpus} CPUs; lower {fix} in {path} or remove it to use the host's own count"


def _memory_problem(
    path: str, host: Host, facts: HostFacts, budget: HostBudget
) -> str | None:
    if budget.memory <= facts.memory:
        return None
    want, have = format_size(budget.memory), format_size(facts.memory)
    fix = _setting(host, "memory")
    return f"{host.name}: memory {want} requested but the host has {have}; lower {fix} in {path} or remove it to use the host's own memory"


def _gpu_problem(
    path: str, host: Host, facts: HostFacts, budget: HostBudget
) -> str | None:
    fix, have = _setting(host, "gpus"), len(facts.gpus)
    if host.gpus == "all" and not facts.gpus:
        return f"{host.name}: all GPUs requested but the host has none; remove {fix} in {path}"
    if budget.unknown_gpus:
        want = _listing(budget.unknown_gpus)
        known = _listing([g.index for g in facts.gpus])
        return f"{host.name}: GPUs {want} requested but the host has only GPUs {known}; fix {fix} in {path}"
    if budget.gpus_requested > have:
        return f"{host.name}: gpus {budget.gpus_requested} requested but the host has {have} GPUs; lower {fix} in {path}"
    return None


def _worker_memory_problem(
    path: str, host: Host, facts: HostFacts, budget: HostBudget
) -> str | None:
    layouts = [budget.workers] if budget.workers else []
    layouts += [g.layout for g in budget.gpu_workers]
    layout = min(layouts, key=lambda x: x.memory_limit, default=None)
    if layout is None or layout.memory_limit >= WORKER_MIN_MEMORY:
        return None
    if layout.gpu_index is not None:
        each = format_size(max(layout.memory_limit, 0))
        minimum = format_size(WORKER_MIN_MEMORY)
        return f"{host.name}: each of {len(budget.gpu_workers)} GPU workers would get {each} of memory, less than the minimum {minimum}; raise {_setting(host, 'memory')} or use fewer GPUs ({_setting(host, 'gpus')}) in {path}"
    each = format_size(max(layout.memory_limit, 0))
    minimum = format_size(WORKER_MIN_MEMORY)
    memory, nworkers = _setting(host, "memory"), _setting(host, "nworkers")
    return f"{host.name}: each of {layout.nworkers} workers would get {each} of memory, less than the minimum {minimum}; raise {memory} or lower {nworkers} in {path}"


def _worker_layout(host: Host, cpus: float, memory: int) -> WorkerLayout:
    cores = max(1, math.floor(cpus))
    if host.nworkers:
        nworkers = host.nworkers
    elif host.nthreads:
        nworkers = max(1, cores // host.nthreads)
    else:
        nworkers = _dask_auto_nworkers(cores)
    nthreads = host.nthreads or max(1, cores // nworkers)
    memory_limit = _per_worker_memory(memory, nworkers)
    return WorkerLayout(nworkers, nthreads, memory_limit, dict(host.resources))


def _per_worker_memory(memory: int, nworkers: int) -> int:
    """A container's memory less the headroom, split between its workers."""
    headroom = _bounded_share(
        memory,
        WORKER_HEADROOM_FRACTION,
        WORKER_HEADROOM_MIN,
        WORKER_HEADROOM_CAP_FRACTION,
    )
    return (memory - headroom) // nworkers


def _gpu_workers(
    host: Host, facts: HostFacts, uuids: tuple[str, ...], cpus: float, memory: int
) -> tuple[GpuWorkerBudget, ...]:
    """One worker per chosen GPU, pinned near it; CPUs and memory split evenly."""
    chosen = [g for g in facts.gpus if g.uuid in uuids]
    cpusets = split_cpusets({g.index: g.local_cpus for g in chosen}, facts.cpus)
    share_cpus, share_memory = cpus / len(chosen), memory // len(chosen)
    resources = {**host.resources, "GPU": 1.0}
    result = []
    for gpu in chosen:
        cpuset = cpusets[gpu.index]
        cap = min(share_cpus, len(cpuset))
        nthreads = host.nthreads or max(1, math.floor(cap))
        limit = _per_worker_memory(share_memory, 1)
        layout = WorkerLayout(1, nthreads, limit, resources, gpu_index=gpu.index)
        result.append(
            GpuWorkerBudget(gpu.index, gpu.uuid, cpuset, cap, share_memory, layout)
        )
    return tuple(result)


def _dask_auto_nworkers(cores: int) -> int:
    nworkers, _ = nprocesses_nthreads(cores)  # type: ignore[no-untyped-call]
    return int(nworkers)


def _default_cpus(host_cpus: int) -> int:
    if host_cpus >= CPU_RESERVE_MIN_HOST_CPUS:
        return host_cpus - CPU_RESERVE
    return host_cpus


def _default_memory(facts: HostFacts) -> int:
    reserve = _bounded_share(
        facts.memory,
        MEMORY_RESERVE_FRACTION,
        MEMORY_RESERVE_MIN,
        MEMORY_RESERVE_CAP_FRACTION,
    )
    return facts.memory - reserve


def _bounded_share(total: int, fraction: float, minimum: int, cap: float) -> int:
    """``fraction`` of ``total``, at least ``minimum``, at most ``cap * total``."""
    return math.floor(min(max(total * fraction, minimum), total * cap))


def _select_gpus(
    request: GpuRequest | None, gpus: Sequence[GpuFacts]
) -> tuple[tuple[str, ...], int, tuple[int | str, ...]]:
    """(chosen GPU UUIDs, number requested, requested entries not found)."""
    if request is None:
        return (), 0, ()
    if request == "all":
        return tuple(g.uuid for g in gpus), len(gpus), ()
    if isinstance(request, int):
        return tuple(g.uuid for g in gpus[:request]), request, ()
    by_key: dict[int | str, str] = {g.index: g.uuid for g in gpus}
    by_key.update({g.uuid: g.uuid for g in gpus})
    chosen = tuple(by_key[key] for key in request if key in by_key)
    unknown = tuple(key for key in request if key not in by_key)
    return chosen, len(request), unknown


def _setting(host: Host, key: str) -> str:
    source = host.sources.get(key)
    where = f" (set by {source})" if source else ""
    return f"`{key}` for {host.name}{where}"


def _listing(items: Sequence[int | str]) -> str:
    return ", ".join(str(i) for i in items) if items else "none"


def format_number(value: float) -> str:
    """``2`` for 2.0, ``2.5`` for 2.5: how CPU counts and resources are shown."""
    return str(int(value)) if float(value).is_integer() else repr(float(value))
