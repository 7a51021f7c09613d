"""A GPU lab on the lab fleet: one worker per simulated GPU, pinned near it.

Its own lab (scheduler, a host with 4 simulated GPUs, a CPU host), brought
up for this module and purged at its end. The GPUs are lab stand-ins (see
daskfleet/lab/gpu_standins.py): the containers get them through Docker's
real device requests, but no CUDA runs. The tests run in file order.
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Iterator
from typing import Any

import docker
import pytest

from daskfleet.deploy import Recap, deploy
from daskfleet.inventory import Inventory, load_inventory
from daskfleet.lab import LabConfig, LabState, lab_down, lab_up
from daskfleet.lab.requirements import missing_commands
from daskfleet.ssh import SSHFleet
from daskfleet.teardown import DownOptions, take_down

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(os.geteuid() != 0, reason="the lab needs root"),
    pytest.mark.skipif(bool(missing_commands()), reason="lab packages missing"),
]

LAB = os.environ.get("DASKFLEET_E2E_GPU_LAB", "gpu")
SUBNET = ipaddress.IPv4Network("10.213.4.0/24") if LAB == "gpu" else None
GPUS = 4
GiB = 1 << 30
MiB = 1 << 20


@pytest.fixture(scope="module")
def gpu_lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LabState]:
    config = LabConfig(LAB, subnet=SUBNET)
    inventory = tmp_path_factory.mktemp("gpu") / "gpu.yml"
    try:
        yield lab_up(config, 3, inventory, gpus=GPUS)
    finally:
        lab_down(config, purge=True)


@pytest.fixture(scope="module")
def inventory(gpu_lab: LabState) -> Inventory:
    return load_inventory(gpu_lab.inventory_path)


@pytest.fixture(scope="module")
def recap(inventory: Inventory) -> Recap:
    return deploy(inventory)


@pytest.fixture(scope="module")
def hosts(gpu_lab: LabState) -> tuple[str, str, str]:
    scheduler, gpu, cpu = (h.name for h in gpu_lab.hosts)
    return scheduler, gpu, cpu


@pytest.fixture(scope="module")
def gpu_docker(gpu_lab: LabState, hosts: tuple[str, str, str]) -> Iterator[Any]:
    client = docker.DockerClient(
        base_url=f"unix://{gpu_lab.host(hosts[1]).docker_socket}"
    )
    yield client
    client.close()


def uuid(host: str, index: int) -> str:
    return f"GPU-lab-{host}-{index}"


def test_deploy_plans_a_worker_per_gpu(
    recap: Recap, hosts: tuple[str, str, str]
) -> None:
    assert recap.ok, (recap.errors, {h: r.errors for h, r in recap.hosts.items()})
    assert recap.plan is not None
    _, gpu, cpu = hosts
    specs = {s.name: s for s in recap.plan.specs}
    gpu_specs = [s for s in specs.values() if s.host == gpu]
    assert [s.name for s in gpu_specs] == [
        f"daskfleet-{LAB}-worker-{gpu}-gpu{i}" for i in range(GPUS)
    ]
    assert [s.worker_names for s in gpu_specs] == [
        (f"{gpu}-gpu{i}",) for i in range(GPUS)
    ]
    assert [s.worker_names for s in specs.values() if s.host == cpu] == [(f"{cpu}-0",)]


def test_each_gpu_container_has_its_gpu_cpuset_and_memory(
    recap: Recap, gpu_docker: Any, hosts: tuple[str, str, str]
) -> None:
    gpu = hosts[1]
    for i, cpus in enumerate(["0", "0", "1", "1"]):
        container = gpu_docker.containers.get(f"daskfleet-{LAB}-worker-{gpu}-gpu{i}")
        config = container.attrs["HostConfig"]
        (request,) = config["DeviceRequests"]
        assert request["DeviceIDs"] == [uuid(gpu, i)]
        assert config["CpusetCpus"] == cpus
        assert config["Memory"] == GiB
        assert "CUDA_DEVICE_ORDER=PCI_BUS_ID" in container.attrs["Config"]["Env"]
        # The kernel enforces them (cgroup v1 inside the container).
        cgroup = "/sys/fs/cgroup"
        out = container.exec_run(
            [
                "cat",
                f"{cgroup}/cpuset/cpuset.cpus",
                f"{cgroup}/memory/memory.limit_in_bytes",
            ]
        ).output.decode()
        assert out.split() == [cpus, str(GiB)]


def test_client_sees_one_gpu_resource_per_gpu_worker(
    recap: Recap, gpu_lab: LabState, hosts: tuple[str, str, str], connect: Any
) -> None:
    _, gpu, cpu = hosts
    with connect(gpu_lab.inventory_path) as client:
        info = client.scheduler_info(n_workers=-1)["workers"].values()
    seen = {w["name"]: w for w in info}
    assert sorted(seen) == sorted([f"{cpu}-0", *(f"{gpu}-gpu{i}" for i in range(GPUS))])
    for i in range(GPUS):
        worker = seen[f"{gpu}-gpu{i}"]
        assert worker["resources"] == {"GPU": 1}
        # 1GiB per GPU worker less the 256MiB minimum headroom
        assert worker["memory_limit"] == GiB - 256 * MiB
    assert seen[f"{cpu}-0"]["resources"] == {}


def test_gpu_tasks_run_only_on_gpu_workers_each_seeing_its_gpu(
    recap: Recap, gpu_lab: LabState, hosts: tuple[str, str, str], connect: Any
) -> None:
    gpu = hosts[1]

    def where() -> tuple[str, str]:
        import os

        from distributed import get_worker

        return str(get_worker().name), os.environ.get("NVIDIA_VISIBLE_DEVICES", "")

    with connect(gpu_lab.inventory_path) as client:
        futures = [
            client.submit(where, resources={"GPU": 1}, pure=False) for _ in range(16)
        ]
        answers = set(client.gather(futures))
    assert {name for name, _ in answers} <= {f"{gpu}-gpu{i}" for i in range(GPUS)}
    for name, visible in answers:
        assert visible == uuid(gpu, int(name.rsplit("gpu", 1)[1]))


def test_health_checked_every_gpu_worker(
    recap: Recap, hosts: tuple[str, str, str]
) -> None:
    assert recap.health is not None
    checked = {w.name for w in recap.health.workers if w.ok}
    assert {f"{hosts[1]}-gpu{i}" for i in range(GPUS)} <= checked


def test_second_deploy_changes_nothing(recap: Recap, inventory: Inventory) -> None:
    again = deploy(inventory)
    assert again.ok, again.errors
    assert again.changed == 0


def test_taking_the_gpu_host_down_retires_its_workers(
    recap: Recap, inventory: Inventory, gpu_docker: Any, hosts: tuple[str, str, str]
) -> None:
    gpu = hosts[1]
    with SSHFleet(inventory) as fleet:
        down = take_down(inventory, fleet, DownOptions(limit=gpu))
        assert down.ok, down.errors
        retired = [a for a in down.hosts[gpu].actions if a.startswith("retire ")]
        assert sorted(retired) == [f"retire {gpu}-gpu{i}" for i in range(GPUS)]
        assert gpu_docker.containers.list(all=True) == []
        assert take_down(inventory, fleet).ok
