"""``daskfleet status``, ``logs`` and ``down`` on the lab fleet.

The tests run in file order on one cluster this module deploys itself: it
is inspected, one worker host is taken down (its data moving to the other
worker), then the whole cluster, then the images. The module leaves the
shared lab without any container of the cluster, even when a test fails.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import docker
import pytest
from click.testing import CliRunner, Result

from daskfleet.cli.main import cli

pytestmark = pytest.mark.e2e


def daskfleet(*args: str | Path) -> Result:
    return CliRunner().invoke(cli, [str(a) for a in args])


def as_json(*args: str | Path) -> tuple[int, dict[str, Any]]:
    result = daskfleet(*args, "--json")
    assert result.stdout.startswith("{"), result.output
    return result.exit_code, json.loads(result.stdout)


@pytest.fixture(scope="module")
def inventory(lab: Any) -> Path:
    return Path(lab.inventory_path)


@pytest.fixture(scope="module")
def hosts(lab: Any) -> list[str]:
    """Scheduler host first, then the two worker hosts."""
    return list(lab.host_names)


@pytest.fixture(scope="module")
def dockers(lab: Any) -> Iterator[dict[str, docker.DockerClient]]:
    """Each host's daemon through its socket, to check from outside."""
    clients = {
        name: docker.DockerClient(base_url=f"unix://{lab.host_socket(name)}")
        for name in lab.host_names
    }
    yield clients
    for client in clients.values():
        for container in client.containers.list(all=True):
            if container.labels.get("daskfleet.cluster"):
                container.remove(force=True)
        client.close()


@pytest.fixture(scope="module")
def cluster(inventory: Path, dockers: dict[str, docker.DockerClient]) -> str:
    """The cluster, deployed by this module whatever the lab held before."""
    code, recap = as_json("deploy", inventory)
    assert code == 0, recap["hosts"]
    return str(recap["cluster"])


def containers(client: docker.DockerClient, cluster: str) -> dict[str, str]:
    found = client.containers.list(
        all=True, filters={"label": f"daskfleet.cluster={cluster}"}
    )
    return {c.name: c.status for c in found}


def test_status_shows_every_host_ok(
    inventory: Path, cluster: str, hosts: list[str]
) -> None:
    code, status = as_json("status", inventory)
    assert code == 0, status
    assert status["scheduler_reachable"] is True
    assert status["dashboard"].startswith("https://")
    assert set(status["hosts"]) == set(hosts)
    for name in hosts[1:]:
        host = status["hosts"][name]
        assert host["status"] == "ok"
        (container,) = host["containers"]
        assert (container["role"], container["state"]) == ("worker", "running")
        assert container["image_tags"][0].startswith(f"daskfleet/{cluster}:")
        (worker,) = host["workers"]
        assert (worker["name"], worker["registered"]) == (f"{name}-0", True)
        assert 0 < worker["memory"] < worker["memory_limit"]
    scheduler = status["hosts"][hosts[0]]
    assert [c["role"] for c in scheduler["containers"]] == ["scheduler"]
    assert scheduler["workers"] == []


def test_status_table(inventory: Path, cluster: str, hosts: list[str]) -> None:
    result = daskfleet("status", inventory)
    assert result.exit_code == 0, result.output
    assert f"{hosts[1]}-0" in result.output
    assert f"cluster {cluster} is ok (3 of 3 hosts ok)" in result.output


def test_logs_show_the_scheduler(
    inventory: Path, cluster: str, hosts: list[str]
) -> None:
    result = daskfleet("logs", inventory, "--role", "scheduler", "--all")
    assert result.exit_code == 0, result.output
    header = f"==> {hosts[0]} daskfleet-{cluster}-scheduler (scheduler, running) <=="
    assert result.stdout.startswith(header)
    assert "Scheduler at:" in result.stdout
    assert "worker" not in result.stdout.splitlines()[0]


def test_logs_of_one_host_and_role(
    inventory: Path, cluster: str, hosts: list[str]
) -> None:
    result = daskfleet("logs", inventory, hosts[1], "--role", "worker", "-n", "5")
    assert result.exit_code == 0, result.output
    headers = [line for line in result.stdout.splitlines() if line.startswith("==>")]
    assert headers == [
        f"==> {hosts[1]} daskfleet-{cluster}-worker-{hosts[1]} (worker, running) <=="
    ]
    assert len(result.stdout.splitlines()) <= 6


def test_logs_name_the_known_hosts(inventory: Path, hosts: list[str]) -> None:
    result = daskfleet("logs", inventory, "nosuchhost")
    assert result.exit_code == 2
    assert f"its hosts are: {', '.join(hosts)}" in result.output


def test_unreachable_host_is_reported_others_shown(
    lab: Any, inventory: Path, cluster: str, hosts: list[str]
) -> None:
    lab.stop_sshd(hosts[2])
    try:
        code, status = as_json("status", inventory, "--connect-timeout", "2")
        logs = daskfleet("logs", inventory, "-n", "1", "--connect-timeout", "2")
    finally:
        lab.start_sshd(hosts[2])
    assert code == 1
    assert status["hosts"][hosts[2]]["status"] == "unreachable"
    assert "SSH" in status["hosts"][hosts[2]]["error"]
    assert status["hosts"][hosts[1]]["status"] == "ok"
    assert logs.exit_code == 1
    assert f"==> {hosts[2]} UNREACHABLE" in logs.stdout
    assert f"==> {hosts[1]} daskfleet-{cluster}-worker" in logs.stdout


def test_down_one_worker_host_keeps_its_data(
    inventory: Path,
    cluster: str,
    hosts: list[str],
    dockers: dict[str, docker.DockerClient],
    connect: Any,
) -> None:
    _, status = as_json("status", inventory)
    leaving = status["hosts"][hosts[2]]["workers"][0]["address"]
    with connect(inventory, timeout=10) as client:
        [future] = client.scatter([list(range(1000))], workers=[leaving])
        code, recap = as_json("down", inventory, "--limit", hosts[2], "--yes")
        assert client.gather(future) == list(range(1000))
        assert leaving not in client.who_has([future])[future.key]
    assert code == 0, recap
    assert list(recap["hosts"]) == [hosts[2]]
    assert recap["hosts"][hosts[2]]["changed"] == 1
    assert f"retire {hosts[2]}-0" in recap["hosts"][hosts[2]]["actions"]
    assert containers(dockers[hosts[2]], cluster) == {}
    for name in hosts[:2]:
        assert set(containers(dockers[name], cluster).values()) == {"running"}


def test_status_shows_the_host_without_containers(
    inventory: Path, hosts: list[str]
) -> None:
    code, status = as_json("status", inventory)
    assert code == 1
    gone = status["hosts"][hosts[2]]
    assert (gone["status"], gone["containers"], gone["workers"]) == ("degraded", [], [])
    assert status["hosts"][hosts[1]]["status"] == "ok"


def test_down_removes_every_container(
    inventory: Path,
    cluster: str,
    hosts: list[str],
    dockers: dict[str, docker.DockerClient],
) -> None:
    code, recap = as_json("down", inventory, "--yes")
    assert code == 0, recap
    assert recap["changed"] == 2
    assert recap["hosts"][hosts[2]]["changed"] == 0
    for client in dockers.values():
        assert containers(client, cluster) == {}


def test_second_down_changes_nothing(inventory: Path) -> None:
    code, recap = as_json("down", inventory, "--yes")
    assert (code, recap["changed"]) == (0, 0)


def test_status_reports_the_scheduler_down(inventory: Path, hosts: list[str]) -> None:
    code, status = as_json("status", inventory)
    assert code == 1
    assert status["scheduler_reachable"] is False
    assert status["scheduler_error"] == f"no scheduler container runs on {hosts[0]}"
    result = daskfleet("status", inventory)
    assert result.exit_code == 1
    assert "does not answer" in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)


def test_down_purges_images(
    inventory: Path, cluster: str, dockers: dict[str, docker.DockerClient]
) -> None:
    code, recap = as_json("down", inventory, "--yes", "--purge-images")
    assert code == 0, recap
    assert recap["changed"] >= len(dockers)  # at least one image per host
    for client in dockers.values():
        tags = [t for image in client.images.list() for t in image.tags]
        assert not [t for t in tags if t.startswith(f"daskfleet/{cluster}:")]
