"""GPU facts: what ``nvidia-smi`` and sysfs say about a host's GPUs.

The facts script (:data:`daskfleet.facts.FACTS_SCRIPT`) runs
:data:`GPU_SCRIPT` on hosts that have ``nvidia-smi``; the pure functions here
read its sections:

- ``gpus``: one CSV line per GPU from ``nvidia-smi --query-gpu``.
- ``gpu_cpus``: ``<pci bus id> <cpu list>`` per GPU, the list read from the
  PCI device's ``local_cpulist`` in sysfs (``-`` where it could not be read).
- ``gpu_topo``: ``nvidia-smi topo -m``, asked only when sysfs did not answer
  for every GPU; its ``CPU Affinity`` column gives the same lists.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

_MIB = 1024 * 1024

GPU_QUERY = "index,uuid,name,memory.total,pci.bus_id,driver_version"

# POSIX sh functions and calls, spliced into the facts script (which defines
# ``emit`` and sets ``rc``). nvidia-smi prints the PCI domain with 8 digits,
# sysfs with 4, and lowercase.
GPU_SCRIPT = f"""\
gpu_local_cpus() {{
  status=0
  for bus in $(nvidia-smi --query-gpu=pci.bus_id --format=csv,noheader); do
    dev=$(printf '%s' "$bus" | tr 'A-F' 'a-f')
    case $dev in ????????:*) dev=${{dev#????}};; esac
    if cpus=$(cat "/sys/bus/pci/devices/$dev/local_cpulist" 2>/dev/null); then
      echo "$bus $cpus"
    else
      echo "$bus -"; status=1
    fi
  done
  return $status
}}
emit gpus nvidia-smi --query-gpu={GPU_QUERY} --format=csv,noheader,nounits
emit gpu_cpus gpu_local_cpus
if [ "$rc" != 0 ]; then emit gpu_topo nvidia-smi topo -m; fi
"""

_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_GPU_ROW = re.compile(r"^GPU(\d+)$")


@dataclass(frozen=True)
class Gpu:
    """One GPU as ``nvidia-smi`` reports it; ``memory`` in bytes.

    ``local_cpus`` are the CPUs nearest the GPU (its NUMA node), empty when
    neither sysfs nor ``nvidia-smi topo`` told.
    """

    index: int
    uuid: str
    name: str
    memory: int
    pci_bus_id: str = ""
    local_cpus: tuple[int, ...] = ()


@dataclass(frozen=True)
class GpuQuery:
    """The GPUs and the driver version from the ``--query-gpu`` CSV."""

    gpus: tuple[Gpu, ...]
    driver: str | None


def parse_gpu_query(text: str) -> GpuQuery:
    """Lines of ``nvidia-smi --query-gpu=<GPU_QUERY> --format=csv,noheader,
    nounits``; the first four fields alone (older scripts) are accepted."""
    gpus, drivers = [], set()
    for line in text.splitlines():
        if not line.strip():
            continue
        fields = [x.strip() for x in line.split(",")]
        if len(fields) not in (4, 6):
            raise ValueError(f"unexpected nvidia-smi line: {line!r}")
        index, uuid, name, memory = fields[:4]
        bus = fields[4] if len(fields) == 6 else ""
        gpus.append(Gpu(int(index), uuid, name, int(float(memory)) * _MIB, bus))
        if len(fields) == 6:
            drivers.add(fields[5])
    driver = ", ".join(sorted(drivers)) if drivers else None
    return GpuQuery(tuple(gpus), driver)


def parse_cpu_list(text: str) -> tuple[int, ...]:
    """``0-3,8,10-11`` (the kernel's cpulist format) as sorted CPU numbers."""
    cpus: set[int] = set()
    for part in text.strip().split(","):
        if not part:
            continue
        low, _, high = part.partition("-")
        if not low.isdigit() or (high and not high.isdigit()):
            raise ValueError(f"not a CPU list: {text!r}")
        cpus.update(range(int(low), int(high or low) + 1))
    return tuple(sorted(cpus))


def parse_sysfs_cpus(text: str) -> dict[str, tuple[int, ...]]:
    """PCI bus id (as nvidia-smi writes it) to local CPUs; ``-`` lines left out."""
    found = {}
    for line in text.splitlines():
        bus, _, cpus = line.strip().partition(" ")
        if bus and cpus.strip() not in ("", "-"):
            found[bus] = parse_cpu_list(cpus)
    return found


def parse_topo_cpus(text: str) -> dict[int, tuple[int, ...]]:
    """GPU index to local CPUs, from ``nvidia-smi topo -m``'s CPU Affinity."""
    lines = [_ANSI.sub("", line) for line in text.splitlines()]
    at = next((i for i, line in enumerate(lines) if "CPU Affinity" in line), None)
    if at is None:
        raise ValueError("no CPU Affinity column in nvidia-smi topo -m")
    names = [h.strip() for h in lines[at].split("\t")]
    if names[0]:  # the row labels' empty heading was stripped with the text
        names.insert(0, "")
    column = names.index("CPU Affinity")
    found = {}
    for line in lines[at + 1 :]:
        fields = [f.strip() for f in line.split("\t")]
        match = _GPU_ROW.match(fields[0])
        if match and len(fields) > column and fields[column] not in ("", "N/A"):
            found[int(match[1])] = parse_cpu_list(fields[column])
    return found


def with_local_cpus(
    gpus: tuple[Gpu, ...],
    by_bus: Mapping[str, tuple[int, ...]],
    by_index: Mapping[int, tuple[int, ...]],
) -> tuple[Gpu, ...]:
    """``gpus`` with their local CPUs: sysfs first, then the topo matrix."""
    return tuple(
        Gpu(
            g.index,
            g.uuid,
            g.name,
            g.memory,
            g.pci_bus_id,
            by_bus.get(g.pci_bus_id) or by_index.get(g.index, ()),
        )
        for g in gpus
    )
