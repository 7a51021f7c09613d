"""The lab's GPU stand-ins answer the facts script as a real nvidia-smi would.

The whole facts script runs here under ``sh`` with the stand-ins first on
PATH, so its GPU part (sysfs, then ``nvidia-smi topo -m``) is exercised end
to end without root, a lab or a GPU.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from daskfleet.facts import FACTS_SCRIPT, parse_facts
from daskfleet.inventory import load_inventory
from daskfleet.lab import LabConfig, LabHost, LabState, render_inventory
from daskfleet.lab.gpu_standins import (
    HOOK,
    SMI,
    answer_nvidia_smi,
    gpu_table,
    render_nvidia_smi,
    simulated_gpus,
    sync_standins,
)


def test_four_gpus_on_two_cpus_make_two_numa_nodes() -> None:
    gpus = simulated_gpus("gpu2", 4, 2)
    assert [g.uuid for g in gpus] == [f"GPU-lab-gpu2-{i}" for i in range(4)]
    assert [g.local_cpus for g in gpus] == ["0", "0", "1", "1"]
    assert [g.local_cpus for g in simulated_gpus("h", 2, 16)] == ["0-7", "8-15"]
    assert [g.local_cpus for g in simulated_gpus("h", 1, 16)] == ["0-15"]


def test_query_honours_fields_and_format() -> None:
    gpus = simulated_gpus("h", 2, 2)
    table = gpu_table(gpus)
    assert repr(table) in render_nvidia_smi(gpus)
    code, out = answer_nvidia_smi(
        ["--query-gpu=uuid,memory.total", "--format=csv,noheader"], table
    )
    assert (code, out) == (0, "GPU-lab-h-0, 16384 MiB\nGPU-lab-h-1, 16384 MiB\n")
    code, out = answer_nvidia_smi(["--query-gpu=index", "--format=csv"], table)
    assert out == "index\n0\n1\n"
    assert answer_nvidia_smi(["-q"], table)[0] == 2


def test_facts_script_reads_the_stand_ins(tmp_path: Path) -> None:
    assert sync_standins(tmp_path, simulated_gpus("gpu2", 4, 2))
    assert not sync_standins(tmp_path, simulated_gpus("gpu2", 4, 2))
    env = {**os.environ, "PATH": f"{tmp_path}:{os.environ['PATH']}"}
    env["DOCKER_HOST"] = f"unix://{tmp_path}/no-docker.sock"
    result = subprocess.run(
        ["sh", "-s"], input=FACTS_SCRIPT, env=env, capture_output=True, text=True
    )
    facts = parse_facts("gpu2", result.stdout)
    assert [g.uuid for g in facts.gpus] == [f"GPU-lab-gpu2-{i}" for i in range(4)]
    assert [g.local_cpus for g in facts.gpus] == [(0,), (0,), (1,), (1,)]
    assert facts.gpus[3].pci_bus_id == "0000FACE:13:00.0"
    assert facts.gpu_driver == "550.0-lab"
    assert not [n for n in facts.notes if n.startswith("gpu")]


def test_no_gpus_removes_the_stand_ins(tmp_path: Path) -> None:
    sync_standins(tmp_path, simulated_gpus("h", 1, 1))
    assert (tmp_path / HOOK).stat().st_mode & 0o111
    assert sync_standins(tmp_path, ())
    assert not (tmp_path / HOOK).exists() and not (tmp_path / SMI).exists()


def test_lab_inventory_gives_host_two_its_gpus(tmp_path: Path) -> None:
    config = LabConfig("gpu", state_dir=Path("/var/lib/daskfleet/lab/gpu"))
    hosts = config.hosts(3)
    state = LabState(
        name="gpu",
        subnet=str(config.network),
        state_dir=config.root,
        hosts=tuple(LabHost.from_config(h, 4 if h.index == 2 else 0) for h in hosts),
        key_path=config.key_path,
        known_hosts=config.known_hosts,
        build_socket=config.build_socket,
        inventory_path=tmp_path / "gpu.yml",
    )
    assert LabState.from_json(state.to_json()) == state
    state.inventory_path.write_text(render_inventory(state))
    inventory = load_inventory(state.inventory_path)
    gpu_host = inventory.hosts["gpu2"]
    assert (gpu_host.gpus, gpu_host.gpu_worker) == ("all", "plain")
    assert gpu_host.memory == 4 << 30
    assert inventory.hosts["gpu3"].gpus is None
    assert inventory.image_kind == "gpu"
