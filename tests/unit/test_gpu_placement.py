"""GPU placement: cpusets, per-GPU budgets, worker kinds and their problems.

The whole containers of a GPU fleet are checked against hand-worked
expectations in fixtures/plan/gpu.specs.yml (test_plan.py); these are the
rules underneath.
"""

from __future__ import annotations

import pytest

from daskfleet.budget import plan_budget
from daskfleet.cpusets import format_cpuset, split_cpusets
from daskfleet.errors import PlanError
from daskfleet.facts import Facts, Gpu
from daskfleet.gpuworkers import DASK_CUDA_LABEL, gpu_worker_kind
from daskfleet.health import probe_problem
from daskfleet.inventory.model import Host, Inventory
from daskfleet.retire import worker_name_pattern
from daskfleet.specs import ImageRef, build_specs

GIB = 1 << 30
PLAIN_IMAGE = ImageRef("sha256:1", "daskfleet/t:1", "amd64")
CUDA_IMAGE = ImageRef("sha256:2", "daskfleet/t:2", "amd64", {DASK_CUDA_LABEL: "26.10"})


def gpu_facts(cpus: int, locals_: list[tuple[int, ...]]) -> Facts:
    gpus = tuple(
        Gpu(i, f"GPU-{i}", "T4", 16 * GIB, f"00000000:{i:02X}:00.0", cpus)
        for i, cpus in enumerate(locals_)
    )
    return Facts("g", cpus, 64 * GIB, "x86_64", "k", "27", None, None, None, gpus)


def fleet(host: Host) -> Inventory:
    head = Host("head", "10.0.0.1", roles=("scheduler",))
    return Inventory("inv.yml", "t", {"head": head, host.name: host})


def head_facts() -> Facts:
    return Facts("head", 2, 4 * GIB, "x86_64", "k", "27", None, None, None)


@pytest.mark.parametrize(
    ("local", "host_cpus", "expected"),
    [
        # two sockets, two GPUs each: each pair splits its socket
        (
            {0: range(8), 1: range(8), 2: range(8, 16), 3: range(8, 16)},
            16,
            {0: (0, 1, 2, 3), 1: (4, 5, 6, 7), 2: (8, 9, 10, 11), 3: (12, 13, 14, 15)},
        ),
        # uneven: runs differ by at most one CPU
        ({0: range(5), 1: range(5)}, 8, {0: (0, 1), 1: (2, 3, 4)}),
        # more GPUs than CPUs: neighbours share one CPU
        ({i: (0, 1) for i in range(4)}, 2, {0: (0,), 1: (0,), 2: (1,), 3: (1,)}),
        # unknown local CPUs: the whole host
        ({0: (), 1: ()}, 4, {0: (0, 1), 1: (2, 3)}),
        # a subset of GPUs shares only among itself
        ({1: range(8), 3: range(8)}, 8, {1: (0, 1, 2, 3), 3: (4, 5, 6, 7)}),
    ],
)
def test_split_cpusets(
    local: dict[int, range | tuple[int, ...]],
    host_cpus: int,
    expected: dict[int, tuple[int, ...]],
) -> None:
    assert split_cpusets({k: tuple(v) for k, v in local.items()}, host_cpus) == (
        expected
    )


def test_format_cpuset_collapses_runs() -> None:
    assert format_cpuset([3, 0, 1, 2, 8, 10, 11]) == "0-3,8,10-11"
    assert format_cpuset([5]) == "5"


def test_chosen_gpus_only_get_workers() -> None:
    host = Host("g", "10.0.0.2", cpus=8, memory=8 * GIB, gpus=(1, "GPU-3"))
    budget = plan_budget(host, gpu_facts(8, [tuple(range(8))] * 4))
    assert [g.index for g in budget.gpu_workers] == [1, 3]
    assert [g.cpuset for g in budget.gpu_workers] == [(0, 1, 2, 3), (4, 5, 6, 7)]
    assert [g.memory for g in budget.gpu_workers] == [4 * GIB, 4 * GIB]
    assert budget.workers is None
    assert budget.gpu_workers[0].layout.names("g") == ("g-gpu1",)


def test_gpu_resource_is_one_per_worker_whatever_the_inventory_says() -> None:
    host = Host("g", "a", memory=8 * GIB, gpus="all", resources={"GPU": 4, "X": 2})
    budget = plan_budget(host, gpu_facts(4, [(0, 1), (2, 3)]))
    assert all(g.layout.resources == {"GPU": 1, "X": 2} for g in budget.gpu_workers)


def test_cpu_cap_never_exceeds_the_cpuset() -> None:
    host = Host("g", "a", cpus=8, memory=8 * GIB, gpus="all")
    budget = plan_budget(host, gpu_facts(8, [(0,), (1,)]))
    assert [g.cpus for g in budget.gpu_workers] == [1, 1]


def test_worker_kind_follows_inventory_then_image() -> None:
    host = Host("g", "a", gpus="all")
    assert gpu_worker_kind(host, CUDA_IMAGE.labels) == "dask-cuda"
    assert gpu_worker_kind(host, PLAIN_IMAGE.labels) == "plain"
    plain = Host("g", "a", gpus="all", gpu_worker="plain")
    assert gpu_worker_kind(plain, CUDA_IMAGE.labels) == "plain"


def test_dask_cuda_settings_need_dask_cuda_workers() -> None:
    host = Host("g", "10.0.0.2", memory=8 * GIB, gpus="all", rmm_pool_size=GIB)
    facts = {"head": head_facts(), "g": gpu_facts(4, [(0, 1)])}
    with pytest.raises(PlanError, match="rmm_pool_size need dask-cuda workers"):
        build_specs(fleet(host), facts, PLAIN_IMAGE)
    specs = build_specs(fleet(host), facts, CUDA_IMAGE)
    assert specs["g"][0].command[-2:] == ("--rmm-pool-size", str(GIB))


def test_too_little_memory_per_gpu_is_a_planning_error() -> None:
    host = Host("g", "10.0.0.2", memory=GIB, gpus="all")
    facts = {"head": head_facts(), "g": gpu_facts(4, [(0, 1)] * 4)}
    with pytest.raises(PlanError, match="each of 4 GPU workers would get 128MiB"):
        build_specs(fleet(host), facts, PLAIN_IMAGE)


def test_a_gpu_the_host_lacks_is_a_planning_error() -> None:
    host = Host("g", "10.0.0.2", memory=8 * GIB, gpus=(0, "GPU-9"))
    facts = {"head": head_facts(), "g": gpu_facts(4, [(0, 1)])}
    with pytest.raises(PlanError, match="GPUs GPU-9 requested but the host has"):
        build_specs(fleet(host), facts, PLAIN_IMAGE)


def test_retire_and_health_know_gpu_worker_names() -> None:
    pattern = worker_name_pattern("g")
    assert pattern.fullmatch("g-gpu3")
    assert pattern.fullmatch("g-0")
    assert not pattern.fullmatch("g-gpu")
    assert not worker_name_pattern("g").fullmatch("g2-gpu0")


@pytest.mark.parametrize(
    ("gpu", "answer", "problem"),
    [
        (None, {"name": "w-0", "gpus": ""}, ""),
        ("GPU-1", {"name": "w-gpu1", "gpus": "GPU-1"}, ""),
        ("GPU-1", {"name": "w-gpu1", "gpus": ""}, "sees no GPU, planned GPU-1"),
        ("GPU-1", {"name": "w-gpu1", "gpus": "void"}, "sees no GPU, planned GPU-1"),
        (
            "GPU-1",
            {"name": "w-gpu1", "gpus": "GPU-1,GPU-2"},
            "sees GPU GPU-1, GPU-2, planned only GPU-1",
        ),
        (
            "GPU-1",
            {"name": "w-gpu1", "gpus": "all"},
            "sees GPU all, planned only GPU-1",
        ),
        ("GPU-1", {"name": "w-gpu2", "gpus": "GPU-1"}, "probe ran on w-gpu2"),
    ],
)
def test_probe_answers_about_gpus(
    gpu: str | None, answer: dict[str, str], problem: str
) -> None:
    name = "w-0" if gpu is None else "w-gpu1"
    assert probe_problem(name, gpu, answer) == problem
