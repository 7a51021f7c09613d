"""The lab for real: namespaces, sshd, dockerd, recovery and a clean down.

Runs as root on a machine with the lab's packages (see LAB_APT_PACKAGES).
Uses its own lab name and subnet so it never touches the user's lab.
"""

from __future__ import annotations

import ipaddress
import os
import random
import signal
import string
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import docker
import pytest
import yaml
from click.testing import CliRunner

from daskfleet.cli.lab import lab_group
from daskfleet.lab import (
    BASE_IMAGE,
    LabConfig,
    LabState,
    lab_down,
    lab_status,
    lab_up,
    load_state,
)
from daskfleet.lab.mounts import mounts_under
from daskfleet.lab.network import link_exists
from daskfleet.lab.reaper import pids_mentioning
from daskfleet.lab.requirements import missing_commands

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(os.geteuid() != 0, reason="the lab needs root"),
    pytest.mark.skipif(bool(missing_commands()), reason="lab packages missing"),
]

SUBNET = ipaddress.IPv4Network("10.213.9.0/24")
HOSTS = 2


@pytest.fixture(scope="module")
def config() -> LabConfig:
    suffix = "".join(random.choices(string.ascii_lowercase, k=4))
    return LabConfig(f"te{suffix}", subnet=SUBNET)


@pytest.fixture(scope="module")
def lab(
    config: LabConfig, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LabState]:
    inventory = tmp_path_factory.mktemp("lab") / "lab.yml"
    try:
        yield lab_up(config, HOSTS, inventory)
    finally:
        lab_down(config, purge=True)


def _ssh(state: LabState, address: str, command: str) -> str:
    result = subprocess.run(
        [
            *("ssh", "-F", "/dev/null", "-i", str(state.key_path)),
            *("-o", f"UserKnownHostsFile={state.known_hosts}"),
            *("-o", "StrictHostKeyChecking=yes", "-o", "BatchMode=yes"),
            *("-o", "IdentitiesOnly=yes", "-o", "ConnectTimeout=5"),
            *(f"root@{address}", command),
        ],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    return result.stdout


def _docker(socket: Path) -> docker.DockerClient:
    return docker.DockerClient(base_url=f"unix://{socket}", timeout=10)


def test_inventory_and_state(lab: LabState, config: LabConfig) -> None:
    data = yaml.safe_load(lab.inventory_path.read_text())
    assert data["cluster"] == config.name
    assert data["hosts"][f"{config.name}1"] == {
        "address": "10.213.9.11",
        "roles": ["scheduler"],
    }
    assert Path(data["defaults"]["identity_file"]).is_file()
    assert load_state(config.name) == lab


def test_ssh_reaches_each_host_and_its_own_docker(lab: LabState) -> None:
    for host in lab.hosts:
        out = _ssh(lab, host.address, "echo $DOCKER_HOST; ip -4 -br addr show eth0")
        docker_host, addr_line = out.splitlines()
        assert docker_host == f"unix://{host.docker_socket}"
        assert f"{host.address}/24" in addr_line
        root_dir = _ssh(lab, host.address, "docker info --format '{{.DockerRootDir}}'")
        assert root_dir.strip() == str(host.host_dir / "data")


def test_each_dockerd_answers_and_hosts_start_empty(lab: LabState) -> None:
    for host in lab.hosts:
        client = _docker(host.docker_socket)
        assert client.ping()
        assert client.images.list() == []
        client.close()
    build = _docker(lab.build_socket)
    assert build.images.get(BASE_IMAGE).tags == [BASE_IMAGE]
    build.close()


def test_status_command(lab: LabState, config: LabConfig) -> None:
    result = CliRunner().invoke(lab_group, ["status", "--name", config.name])
    assert result.exit_code == 0, result.output
    assert lab.hosts[0].address in result.output
    result = CliRunner().invoke(lab_group, ["status", "--name", config.name, "--json"])
    assert result.exit_code == 0, result.output
    assert '"ok": true' in result.output


def test_up_again_is_idempotent(lab: LabState, config: LabConfig) -> None:
    before = lab_status(config)
    again = lab_up(config, HOSTS, lab.inventory_path)
    assert again == lab
    after = lab_status(config)
    # The very same daemons still run: a second `up` restarted nothing.
    assert [(h.sshd_pid, h.dockerd_pid) for h in after.hosts] == [
        (h.sshd_pid, h.dockerd_pid) for h in before.hosts
    ]
    assert after.build_pid == before.build_pid


def test_up_recovers_killed_daemons(lab: LabState, config: LabConfig) -> None:
    before = lab_status(config)
    first, second = before.hosts
    assert first.dockerd_pid is not None and second.sshd_pid is not None
    os.kill(first.dockerd_pid, signal.SIGKILL)
    os.kill(second.sshd_pid, signal.SIGKILL)
    time.sleep(0.5)
    result = CliRunner().invoke(lab_group, ["status", "--name", config.name])
    assert result.exit_code == 1

    lab_up(config, HOSTS, lab.inventory_path)
    after = lab_status(config)
    assert after.ok
    assert after.hosts[0].dockerd_pid != first.dockerd_pid
    assert after.hosts[1].sshd_pid != second.sshd_pid
    assert _ssh(lab, second.address, "echo ok").strip() == "ok"


def test_down_leaves_nothing(lab: LabState, config: LabConfig) -> None:
    client = _docker(lab.build_socket)
    image = client.images.get(BASE_IMAGE)
    host_client = _docker(lab.hosts[0].docker_socket)
    host_client.images.load(b"".join(client.api.get_image(BASE_IMAGE)))
    # By id, so the daemon never tries a registry.
    host_client.containers.run(
        image.id, ["sleep", "600"], detach=True, network_mode="host", init=True
    )
    client.close()
    host_client.close()

    lab_down(config)

    live = [p for p in pids_mentioning(config.root) if _not_zombie(p)]
    assert live == []
    assert mounts_under(config.root) == []
    assert not link_exists(config.bridge)
    for host in lab.hosts:
        assert not Path("/var/run/netns", host.netns).exists()
    assert lab_status(config).ok is False


def _not_zombie(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[-1].split()[0] != "Z"
