"""Status from recorded Docker inspect output and scheduler worker info."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from daskfleet.cli.status import format_duration
from daskfleet.errors import DockerError, UnreachableError
from daskfleet.inventory.model import Host
from daskfleet.results import HostResult
from daskfleet.status import (
    ClusterStatus,
    ContainerStatus,
    container_status,
    expected_workers,
    host_status,
    parse_docker_time,
    scheduler_not_running,
    worker_statuses,
)

FIXTURES = Path(__file__).parent / "fixtures" / "status"
ST2 = Host("st2", "10.213.5.12")
ST1 = Host("st1", "10.213.5.11", roles=("scheduler",))


def load(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text())


@pytest.fixture
def worker() -> ContainerStatus:
    return container_status(load("worker_inspect.json"), ["daskfleet/st:7664"])


@pytest.fixture
def scheduler_workers() -> dict[str, Any]:
    workers: dict[str, Any] = load("scheduler_workers.json")
    return workers


def result(*containers: ContainerStatus) -> HostResult[tuple[ContainerStatus, ...]]:
    return HostResult("st2", value=tuple(containers))


def test_container_status_reads_inspect_output(worker: ContainerStatus) -> None:
    assert worker.name == "daskfleet-st-worker-st2"
    assert (worker.role, worker.state, worker.nworkers) == ("worker", "running", 1)
    assert worker.short_image_id == "553ebdbcab7a"
    assert worker.image_tags == ("daskfleet/st:7664",)
    assert worker.started_at == datetime(
        2026, 12, 3, 16, 59, 35, 623822, tzinfo=timezone.utc
    )


def test_scheduler_container_expects_no_workers() -> None:
    scheduler = container_status(load("scheduler_inspect.json"))
    assert (scheduler.role, scheduler.nworkers) == ("scheduler", 0)
    assert scheduler.image_tags == ()


def test_uptime_only_while_running(worker: ContainerStatus) -> None:
    assert worker.started_at is not None
    later = worker.started_at + timedelta(minutes=5)
    assert worker.uptime(later) == 300
    stopped = ContainerStatus(
        "w", "worker", "exited", "sha256:1", (), worker.started_at
    )
    assert stopped.uptime(later) is None


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-12-03T16:59:35.62382295Z", datetime(2026, 12, 3, 16, 59, 35, 623822)),
        ("2026-12-03T16:59:35Z", datetime(2026, 12, 3, 16, 59, 35)),
        ("0001-01-01T00:00:00Z", None),
        ("", None),
        (None, None),
        ("yesterday", None),
    ],
)
def test_parse_docker_time(text: str | None, expected: datetime | None) -> None:
    want = expected.replace(tzinfo=timezone.utc) if expected else None
    assert parse_docker_time(text) == want


def test_expected_workers_follow_nworkers_label() -> None:
    containers = [
        ContainerStatus("s", "scheduler", "running", "i"),
        ContainerStatus("w", "worker", "running", "i", nworkers=3),
    ]
    assert expected_workers("gpu-1", containers) == ["gpu-1-0", "gpu-1-1", "gpu-1-2"]
    assert expected_workers("gpu-1", []) == []


def test_worker_statuses_carry_memory(scheduler_workers: dict[str, Any]) -> None:
    (w,) = worker_statuses("st2", ["st2-0"], scheduler_workers)
    assert (w.registered, w.expected, w.nthreads) == (True, True, 1)
    assert (w.memory, w.memory_limit) == (83492864, 1879048192)
    assert w.address == "tcp://10.213.5.12:43229"


def test_worker_statuses_missing_unexpected_and_unknown(
    scheduler_workers: dict[str, Any],
) -> None:
    missing, extra = worker_statuses("st2", ["st2-1"], scheduler_workers)
    assert (missing.name, missing.registered) == ("st2-1", False)
    assert (extra.name, extra.registered, extra.expected) == ("st2-0", True, False)
    (unknown,) = worker_statuses("st2", ["st2-0"], None)
    assert unknown.registered is None


def test_host_ok(worker: ContainerStatus, scheduler_workers: dict[str, Any]) -> None:
    status = host_status(ST2, result(worker), scheduler_workers)
    assert (status.status, status.problems) == ("ok", ())


def test_host_degraded_when_worker_not_registered(worker: ContainerStatus) -> None:
    status = host_status(ST2, result(worker), {})
    assert status.status == "degraded"
    assert status.problems == ("worker st2-0 is not registered with the scheduler",)


def test_host_degraded_without_its_container() -> None:
    status = host_status(ST2, result(), {})
    assert status.status == "degraded"
    assert status.problems[0].startswith("no worker container")


def test_host_degraded_when_container_stopped() -> None:
    stopped = ContainerStatus("daskfleet-st-scheduler", "scheduler", "exited", "i")
    status = host_status(ST1, result(stopped), None)
    assert status.problems == ("container daskfleet-st-scheduler is exited",)


def test_unknown_registration_is_not_a_problem(worker: ContainerStatus) -> None:
    assert host_status(ST2, result(worker), None).status == "ok"


def test_unreachable_and_failing_hosts() -> None:
    gone = HostResult[tuple[ContainerStatus, ...]](
        "st2", error=UnreachableError("st2", "connection refused")
    )
    status = host_status(ST2, gone, {})
    assert (status.status, status.error) == ("unreachable", "connection refused")
    broken = HostResult[tuple[ContainerStatus, ...]](
        "st2", error=DockerError("st2", "the Docker daemon does not answer")
    )
    assert host_status(ST2, broken, {}).status == "degraded"


def test_scheduler_not_running() -> None:
    running = ContainerStatus("s", "scheduler", "running", "i")
    exited = ContainerStatus("s", "scheduler", "exited", "i")
    assert scheduler_not_running("st1", {"st1": result(running)}) is None
    assert scheduler_not_running("st1", {"st2": result()}) is None
    assert scheduler_not_running("st1", {"st1": result(exited)}) == (
        "no scheduler container runs on st1"
    )


def test_cluster_status_json_shape(
    worker: ContainerStatus, scheduler_workers: dict[str, Any]
) -> None:
    status = ClusterStatus(
        cluster="st",
        scheduler="tcp://10.213.5.11:8786",
        dashboard="http://10.213.5.11:8787",
        scheduler_reachable=True,
        hosts={"st2": host_status(ST2, result(worker), scheduler_workers)},
    )
    data = json.loads(json.dumps(status.to_dict()))
    assert data["ok"] is True
    host = data["hosts"]["st2"]
    assert host["status"] == "ok"
    assert host["containers"][0]["name"] == "daskfleet-st-worker-st2"
    assert host["workers"][0]["memory"] == 83492864
    unreachable = ClusterStatus("st", "s", "d", scheduler_reachable=False, hosts={})
    assert not unreachable.ok


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (4.9, "4s"),
        (307, "5m07s"),
        (3 * 3600 + 300, "3h05m"),
        (2 * 86400 + 4 * 3600, "2d04h"),
    ],
)
def test_format_duration(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text
