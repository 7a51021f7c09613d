"""Which CPUs each GPU's worker is pinned to: pure arithmetic on GPU facts.

A GPU's local CPUs are the CPUs of the NUMA node its PCI slot hangs off.
GPUs with the same local CPUs share them: the CPUs are cut into as many
contiguous runs as there are such GPUs, the runs differing in length by at
most one. When GPUs outnumber their local CPUs, each GPU gets one CPU and
neighbouring GPUs share it (2 GPUs per CPU for 4 GPUs on 2 CPUs): cpusets
then overlap, and the kernel shares those CPUs between the workers.
A GPU whose local CPUs are unknown counts as local to every CPU of the host.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence


def split_cpusets(
    local_cpus: Mapping[int, Sequence[int]], host_cpus: int
) -> dict[int, tuple[int, ...]]:
    """GPU index to the CPUs its worker gets.

    ``local_cpus`` maps each GPU that gets a worker to its local CPUs (empty
    when unknown: then all ``host_cpus`` CPUs of the host).
    """
    everything = tuple(range(host_cpus))
    groups: dict[tuple[int, ...], list[int]] = {}
    for index in sorted(local_cpus):
        cpus = tuple(sorted(set(local_cpus[index]))) or everything
        groups.setdefault(cpus, []).append(index)
    result: dict[int, tuple[int, ...]] = {}
    for cpus, indices in groups.items():
        result.update(zip(indices, _share(cpus, len(indices)), strict=True))
    return result


def _share(cpus: tuple[int, ...], parts: int) -> list[tuple[int, ...]]:
    """``cpus`` cut into ``parts`` runs; one shared CPU each when too few."""
    n = len(cpus)
    if n >= parts:
        return [cpus[i * n // parts : (i + 1) * n // parts] for i in range(parts)]
    return [(cpus[i * n // parts],) for i in range(parts)]


def format_cpuset(cpus: Iterable[int]) -> str:
    """Docker's ``cpuset_cpus`` text, runs collapsed: ``0-3,8,10-11``."""
    runs: list[list[int]] = []
    for cpu in sorted(set(cpus)):
        if runs and cpu == runs[-1][-1] + 1:
            runs[-1].append(cpu)
        else:
            runs.append([cpu])
    return ",".join(str(r[0]) if len(r) == 1 else f"{r[0]}-{r[-1]}" for r in runs)
