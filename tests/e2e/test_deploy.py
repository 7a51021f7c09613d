"""``daskfleet deploy`` on the lab fleet: real SSH, real dockerd, real Dask.

The tests run in file order and share one cluster: a cold deploy, a no-op
re-deploy, check mode, a one-host change, a dead host and its healing.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import docker
import pytest
import yaml

pytestmark = pytest.mark.e2e

DASKFLEET = [sys.executable, "-m", "daskfleet"]
MiB = 1 << 20
GiB = 1 << 30


def daskfleet(*args: str | Path) -> subprocess.CompletedProcess[str]:
    """Run the real command line, as a user would."""
    return subprocess.run(
        [*DASKFLEET, *map(str, args)], capture_output=True, text=True, timeout=600
    )


def deploy_json(inventory: Path, *extra: str) -> tuple[int, dict[str, Any]]:
    result = daskfleet("deploy", inventory, "--json", *extra)
    assert result.stdout, result.stderr
    return result.returncode, json.loads(result.stdout)


@pytest.fixture(scope="module")
def inventory(lab: Any, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the lab inventory that the tests may edit."""
    path = tmp_path_factory.mktemp("deploy") / "fleet.yml"
    path.write_text(Path(lab.inventory_path).read_text())
    return path


@pytest.fixture(scope="module")
def cluster(inventory: Path) -> str:
    return str(yaml.safe_load(inventory.read_text())["cluster"])


@pytest.fixture(scope="module")
def dockers(lab: Any) -> Iterator[dict[str, docker.DockerClient]]:
    """Each host's daemon, straight through its socket, to check from outside."""
    clients = {
        name: docker.DockerClient(base_url=f"unix://{lab.host_socket(name)}")
        for name in lab.host_names
    }
    yield clients
    # Leave the shared lab without this module's containers.
    for client in clients.values():
        for container in client.containers.list(all=True):
            if container.labels.get("daskfleet.cluster"):
                container.remove(force=True)
        client.close()


def cluster_containers(client: docker.DockerClient, cluster: str) -> list[Any]:
    return client.containers.list(
        all=True, filters={"label": f"daskfleet.cluster={cluster}"}
    )


def container_ids(
    dockers: dict[str, docker.DockerClient], cluster: str
) -> dict[str, str]:
    return {
        c.name: c.id
        for client in dockers.values()
        for c in cluster_containers(client, cluster)
    }


def test_cold_deploy_is_healthy(inventory: Path, lab: Any) -> None:
    code, recap = deploy_json(inventory)
    assert code == 0, (recap["errors"], recap["hosts"])
    assert recap["ok"] is True
    assert {h["status"] for h in recap["hosts"].values()} == {"changed"}
    # Three cold hosts: one relay chain; the controller sends the image once.
    chains = recap["plan"]["distribution"]["chains"]
    assert [c["hosts"] for c in chains] == [lab.host_names]
    head, *others = lab.host_names
    assert recap["hosts"][head]["bytes_sent"] > 10_000_000, "the whole image"
    for upstream, name in zip(lab.host_names, others, strict=False):
        host = recap["hosts"][name]
        assert host["bytes_sent"] == 0
        assert f"image relayed from {upstream}" in host["actions"]
    assert recap["health"]["ok"] is True


def test_client_sees_planned_workers(inventory: Path, lab: Any, connect: Any) -> None:
    _, *workers = lab.host_names
    with connect(inventory) as client:
        info = client.scheduler_info(n_workers=-1)["workers"].values()
    seen = {w["name"]: w for w in info}
    assert sorted(seen) == sorted(f"{name}-0" for name in workers)
    for worker in seen.values():
        # cpus: 1 and memory: 2GiB per lab host; the headroom is the larger
        # of 10% and 256MiB (docs/deploy.md).
        assert worker["nthreads"] == 1
        assert worker["memory_limit"] == 2 * GiB - max(round(0.2 * GiB), 256 * MiB)


def test_containers_carry_planned_limits(
    dockers: dict[str, docker.DockerClient], cluster: str, lab: Any
) -> None:
    for name in lab.host_names:
        (container,) = cluster_containers(dockers[name], cluster)
        config = container.attrs["HostConfig"]
        assert config["NanoCpus"] == 1_000_000_000
        assert config["NetworkMode"] == "host"
        assert config["RestartPolicy"]["Name"] == "unless-stopped"
        assert config["Memory"] > 0
    workers = [cluster_containers(dockers[n], cluster)[0] for n in lab.host_names[1:]]
    assert {w.attrs["HostConfig"]["Memory"] for w in workers} == {2 * GiB}


def test_second_deploy_changes_nothing(
    inventory: Path, dockers: dict[str, docker.DockerClient], cluster: str
) -> None:
    before = container_ids(dockers, cluster)
    code, recap = deploy_json(inventory)
    assert code == 0, recap
    assert recap["changed"] == 0
    assert {h["status"] for h in recap["hosts"].values()} == {"ok"}
    assert all(h["bytes_sent"] == 0 for h in recap["hosts"].values())
    assert container_ids(dockers, cluster) == before


def set_host_var(inventory: Path, host: str, key: str, value: Any) -> None:
    data = yaml.safe_load(inventory.read_text())
    data["hosts"][host][key] = value
    inventory.write_text(yaml.safe_dump(data, sort_keys=False))


def test_check_mode_changes_nothing(
    inventory: Path, dockers: dict[str, docker.DockerClient], cluster: str, lab: Any
) -> None:
    changed_host = lab.host_names[2]
    set_host_var(inventory, changed_host, "cpus", 2)
    before = container_ids(dockers, cluster)
    code, recap = deploy_json(inventory, "--check")
    assert code == 0, recap
    actions = recap["plan"]["hosts"]
    kinds = {h: [a["kind"] for a in acts] for h, acts in actions.items()}
    assert kinds[changed_host] == ["replace"]
    assert "cpus 1 -> 2" in actions[changed_host][0]["reasons"]
    assert all(k == ["unchanged"] for h, k in kinds.items() if h != changed_host)
    assert container_ids(dockers, cluster) == before

    text = daskfleet("deploy", inventory, "--check")
    assert text.returncode == 0, text.stderr
    assert "replace" in text.stdout and "cpus 1 -> 2" in text.stdout
    assert "nothing done" in text.stdout


def test_changing_one_host_replaces_only_its_worker_and_keeps_its_data(
    inventory: Path,
    dockers: dict[str, docker.DockerClient],
    cluster: str,
    lab: Any,
    connect: Any,
) -> None:
    changed_host = lab.host_names[2]
    before = container_ids(dockers, cluster)
    with connect(inventory) as client:
        workers = client.scheduler_info(n_workers=-1)["workers"]
        (held_on,) = [a for a, w in workers.items() if w["name"] == f"{changed_host}-0"]
        data = client.scatter(list(range(50)), workers=[held_on])
        code, recap = deploy_json(inventory)
        # The replaced worker was retired first: its keys moved elsewhere.
        assert client.gather(data) == list(range(50))
    assert code == 0, recap
    assert recap["changed"] == 1
    assert recap["hosts"][changed_host]["changed"] == 1
    after = container_ids(dockers, cluster)
    replaced = {name for name in before if before[name] != after.get(name)}
    assert replaced == {f"daskfleet-{cluster}-worker-{changed_host}"}
    (worker,) = cluster_containers(dockers[changed_host], cluster)
    assert worker.attrs["HostConfig"]["NanoCpus"] == 2_000_000_000
    assert recap["health"]["workers"][f"{changed_host}-0"]["problems"] == []


def test_unreachable_host_is_reported_and_healed(
    inventory: Path, dockers: dict[str, docker.DockerClient], cluster: str, lab: Any
) -> None:
    down = lab.host_names[1]
    for container in cluster_containers(dockers[down], cluster):
        container.remove(force=True)
    lab.stop_sshd(down)
    try:
        code, recap = deploy_json(inventory)
    finally:
        lab.start_sshd(down)
    assert code == 1
    assert recap["ok"] is False
    assert recap["hosts"][down]["status"] == "unreachable"
    assert recap["hosts"][down]["errors"]
    others = [h for h in lab.host_names if h != down]
    assert all(recap["hosts"][h]["status"] == "ok" for h in others), recap["hosts"]

    code, recap = deploy_json(inventory)
    assert code == 0, recap
    assert recap["hosts"][down]["status"] == "changed"
    assert len(cluster_containers(dockers[down], cluster)) == 1


def test_host_removed_from_inventory_is_retired_and_removed(
    inventory: Path, dockers: dict[str, docker.DockerClient], cluster: str, lab: Any
) -> None:
    gone = lab.host_names[2]
    original = inventory.read_text()
    data = yaml.safe_load(original)
    del data["hosts"][gone]
    inventory.write_text(yaml.safe_dump(data, sort_keys=False))
    try:
        code, recap = deploy_json(inventory)
    finally:
        inventory.write_text(original)
    assert code == 0, (recap["errors"], recap["hosts"])
    assert recap["hosts"][gone]["status"] == "changed"
    (action,) = recap["hosts"][gone]["actions"]
    assert action.startswith(f"remove daskfleet-{cluster}-worker-{gone}")
    assert cluster_containers(dockers[gone], cluster) == []
    assert sorted(recap["health"]["workers"]) == [f"{lab.host_names[1]}-0"]
