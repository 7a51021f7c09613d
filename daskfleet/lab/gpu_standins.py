"""Simulated GPUs for a lab host: stand-ins for the NVIDIA tools, nothing more.

A lab host with simulated GPUs gets two executables in its ``bin/`` dir,
which is first on the PATH of its dockerd and of its SSH sessions:

- ``nvidia-container-runtime-hook``: exits 0. dockerd registers its
  ``--gpus`` device driver when it finds an executable of that name at
  start, so containers asking for GPUs by UUID start, with
  ``NVIDIA_VISIBLE_DEVICES`` set to those UUIDs; no device is mounted.
- ``nvidia-smi``: answers ``--query-gpu=...`` (any fields it knows, CSV with
  or without header and units), ``-L`` and ``topo -m`` for made-up GPUs.

The GPUs' PCI bus ids lie in a PCI domain no machine has (``FACE``), so the
facts script finds no sysfs ``local_cpulist`` and asks ``topo -m``, whose
answer spreads the GPUs over two NUMA nodes of the machine's CPUs.
daskfleet's own code paths stay the real ones; only these tools are faked.
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

HOOK = "nvidia-container-runtime-hook"
SMI = "nvidia-smi"
#: What the stand-ins report as the driver and the GPUs' model.
DRIVER_VERSION = "550.0-lab"
GPU_NAME = "Lab Simulated GPU"
GPU_MEMORY_MIB = 16384

_HOOK_SCRIPT = f"""\
#!/bin/sh
# daskfleet lab stand-in for {HOOK}: lets dockerd register its --gpus
# driver; the simulated GPUs have no devices to set up.
exit 0
"""


@dataclass(frozen=True)
class SimulatedGpu:
    """One made-up GPU, as the stand-in ``nvidia-smi`` describes it."""

    index: int
    uuid: str
    pci_bus_id: str
    local_cpus: str


def simulated_gpus(host: str, count: int, cpus: int) -> tuple[SimulatedGpu, ...]:
    """``count`` GPUs for ``host``, stable UUIDs ``GPU-lab-<host>-<i>``.

    With two or more CPUs the GPUs are spread over two NUMA nodes (the
    first half of the CPUs and the second), as on a two-socket server.
    """
    nodes = 2 if count >= 2 and cpus >= 2 else 1
    gpus = []
    for i in range(count):
        node = i * nodes // count
        low, high = node * cpus // nodes, (node + 1) * cpus // nodes - 1
        local = str(low) if low == high else f"{low}-{high}"
        bus = f"0000FACE:{0x10 + i:02X}:00.0"
        gpus.append(SimulatedGpu(i, f"GPU-lab-{host}-{i}", bus, local))
    return tuple(gpus)


def render_nvidia_smi(gpus: tuple[SimulatedGpu, ...]) -> str:
    """The stand-in ``nvidia-smi``: a Python script with the GPUs inside."""
    table = gpu_table(gpus)
    return f"""\
#!{sys.executable}
# daskfleet lab stand-in for {SMI}: made-up GPUs, see daskfleet/lab/gpu_standins.py
import sys
from daskfleet.lab.gpu_standins import answer_nvidia_smi
code, out = answer_nvidia_smi(sys.argv[1:], {table!r})
(sys.stdout if code == 0 else sys.stderr).write(out)
sys.exit(code)
"""


def gpu_table(gpus: tuple[SimulatedGpu, ...]) -> str:
    """The GPUs as the JSON text the stand-in script carries."""
    return json.dumps([asdict(g) for g in gpus])


def answer_nvidia_smi(args: list[str], table: str) -> tuple[int, str]:
    """Exit code and output of ``nvidia-smi ARGS`` for the GPUs in ``table``."""
    gpus = [SimulatedGpu(**g) for g in json.loads(table)]
    if args == ["-L"]:
        lines = [f"GPU {g.index}: {GPU_NAME} (UUID: {g.uuid})" for g in gpus]
        return 0, "".join(f"{line}\n" for line in lines)
    if args == ["topo", "-m"]:
        return 0, _topo(gpus) + "\n"
    query = _option(args, "--query-gpu")
    if query is None:
        return 2, f"lab stand-in nvidia-smi: unsupported arguments: {args}\n"
    form = _option(args, "--format") or ""
    fields = query.split(",")
    lines = [] if "noheader" in form else [", ".join(fields)]
    lines += [
        ", ".join(_field(g, f, "nounits" not in form) for f in fields) for g in gpus
    ]
    return 0, "".join(f"{line}\n" for line in lines)


def _option(args: list[str], name: str) -> str | None:
    return next((a.split("=", 1)[1] for a in args if a.startswith(f"{name}=")), None)


def _field(gpu: SimulatedGpu, name: str, units: bool) -> str:
    values = {
        "index": str(gpu.index),
        "uuid": gpu.uuid,
        "name": GPU_NAME,
        "memory.total": f"{GPU_MEMORY_MIB} MiB" if units else str(GPU_MEMORY_MIB),
        "pci.bus_id": gpu.pci_bus_id,
        "driver_version": DRIVER_VERSION,
    }
    return values.get(name, "[N/A]")


def _topo(gpus: list[SimulatedGpu]) -> str:
    """``nvidia-smi topo -m`` as the real one lays it out (tab separated)."""
    header = ["", *(f"GPU{g.index}" for g in gpus), "CPU Affinity", "NUMA Affinity"]
    lines = ["\t".join(header)]
    for g in gpus:
        links = [" X " if o.index == g.index else "PHB" for o in gpus]
        lines.append("\t".join([f"GPU{g.index}", *links, g.local_cpus, "N/A"]))
    return "\n".join([*lines, "", "Legend:", "", "  X    = Self"])


def sync_standins(bin_dir: Path, gpus: tuple[SimulatedGpu, ...]) -> bool:
    """Install the stand-ins for ``gpus`` (none: remove them); True if changed.

    A changed hook only takes effect when the host's dockerd restarts.
    """
    wanted = {HOOK: _HOOK_SCRIPT, SMI: render_nvidia_smi(gpus)} if gpus else {}
    changed = False
    for name in (HOOK, SMI):
        path = bin_dir / name
        text = wanted.get(name)
        current = path.read_text() if path.exists() else None
        if current == text:
            continue
        changed = True
        if text is None:
            path.unlink()
        else:
            path.write_text(text)
            os.chmod(path, 0o755)
    return changed
