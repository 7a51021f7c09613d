"""The benchmark's own lab fleet, and what the benchmarks do to it.

One 3-host lab named ``bench`` (its own subnet) by default, or any size,
sshd-only or with a limited controller uplink, brought up for a run and
purged after it, even when the run fails. Hosts are reset through their
Docker sockets; deploys run through the real ``daskfleet`` command line.
"""

from __future__ import annotations

import ipaddress
import itertools
import json
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import docker

from daskfleet.images.wheelhouse import cache_root
from daskfleet.lab import LabConfig, LabState, lab_down, lab_up

LAB_NAME = "bench"
LAB_SUBNET = ipaddress.IPv4Network("10.213.6.0/24")
HOSTS = 3
BENCH_DIR = Path(__file__).resolve().parent
DASKFLEET = [str(Path(sys.executable).with_name("daskfleet"))]
STAGE_LINE = re.compile(r"== (\w+)")


@contextmanager
def bench_lab(
    workdir: Path,
    *,
    name: str = LAB_NAME,
    subnet: ipaddress.IPv4Network | None = LAB_SUBNET,
    hosts: int = HOSTS,
    docker: bool = True,
    uplink_rate: str | None = None,
) -> Iterator[LabState]:
    """A fresh lab for one run; down and purged whatever happens.

    By default the 3-host lab ``bench``; ``docker=False`` gives sshd-only
    hosts, ``uplink_rate`` (``200mbit``) limits this machine's traffic to
    them (not between them): see :func:`transfer_mbit`.
    """
    config = LabConfig(name, subnet=subnet)
    try:
        yield lab_up(
            config,
            hosts=hosts,
            inventory_path=workdir / f"{name}.yml",
            docker=docker,
            uplink_rate=uplink_rate,
        )
    finally:
        lab_down(config, purge=True)


_RECEIVE = """\
import socket, sys, time
server = socket.create_server((sys.argv[1], int(sys.argv[2])))
print("ready", flush=True)
conn, _ = server.accept()
total, started = 0, None
while chunk := conn.recv(1 << 20):
    started = started or time.monotonic()
    total += len(chunk)
print(total, time.monotonic() - (started or time.monotonic()), flush=True)
"""
_SEND = """\
import socket, sys
conn = socket.create_connection((sys.argv[1], int(sys.argv[2])))
block = bytes(1 << 20)
for _ in range(int(sys.argv[3])):
    conn.sendall(block)
conn.close()
"""


def transfer_mbit(
    state: LabState, sender: str | None, receiver: str, megabytes: int = 100
) -> float:
    """Mbit/s of one TCP stream from host ``sender`` (None: this machine)
    to host ``receiver``, each end in its host's network namespace."""

    def inside(name: str | None) -> list[str]:
        if name is None:
            return []
        return ["nsenter", f"--net=/var/run/netns/{state.host(name).netns}"]

    address, port = state.host(receiver).address, "5999"
    listener = subprocess.Popen(
        [*inside(receiver), sys.executable, "-c", _RECEIVE, address, port],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert listener.stdout is not None
    listener.stdout.readline()
    subprocess.run(
        [*inside(sender), sys.executable, "-c", _SEND, address, port, str(megabytes)],
        check=True,
    )
    received, seconds = listener.stdout.readline().split()
    listener.wait()
    return int(received) * 8 / float(seconds) / 1e6


def host_clients(state: LabState) -> list[Any]:
    return [docker.DockerClient(f"unix://{h.docker_socket}") for h in state.hosts]


def build_client(state: LabState) -> Any:
    return docker.DockerClient(f"unix://{state.build_socket}")


def remove_containers(state: LabState) -> None:
    for client in host_clients(state):
        for container in client.containers.list(all=True):
            container.remove(force=True)


def reset_cold(state: LabState) -> None:
    """No container and no image left on any host."""
    remove_containers(state)
    for client in host_clients(state):
        client.images.prune(filters={"dangling": False})
        for image in client.images.list(all=True):
            client.images.remove(image.id, force=True)


def forget_archives(image_id: str) -> None:
    """Drop the controller's saved archive and payloads of ``image_id``."""
    for path in (cache_root() / "archives").glob(
        image_id.removeprefix("sha256:") + "*"
    ):
        if path.is_dir():
            shutil.rmtree(path)
        else:
            path.unlink()


@dataclass
class DeployRun:
    """One ``daskfleet deploy --json``: wall time, recap, stage start times."""

    wall: float
    recap: dict[str, Any]
    stages: list[tuple[str, float]] = field(default_factory=list)

    def stage_seconds(self) -> dict[str, float]:
        """Seconds from each stage's start to the next (last: to exit)."""
        marks = [("startup", 0.0), *self.stages, ("end", self.wall)]
        return {
            name: round(nxt - start, 2)
            for (name, start), (_, nxt) in itertools.pairwise(marks)
        }

    @property
    def bytes_sent(self) -> dict[str, int]:
        return {n: h["bytes_sent"] for n, h in self.recap["hosts"].items()}


def run_deploy(inventory: Path, prefix: list[str] | None = None) -> DeployRun:
    """Run the CLI, noting when each stage's log line arrives."""
    argv = [*(prefix or DASKFLEET), "-v", "deploy", str(inventory), "--json"]
    started = time.monotonic()
    proc = subprocess.Popen(
        argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    assert proc.stderr is not None and proc.stdout is not None
    stages, log = [], []
    for line in proc.stderr:
        log.append(line)
        found = STAGE_LINE.search(line)
        if found:
            stages.append((found.group(1), time.monotonic() - started))
    out = proc.stdout.read()
    proc.wait()
    wall = time.monotonic() - started
    if proc.returncode != 0:
        raise RuntimeError(f"{argv} exit {proc.returncode}:\n{''.join(log[-20:])}")
    return DeployRun(wall, json.loads(out), stages)


def changed_dockerfile(workdir: Path, line: str) -> Path:
    """A copy of images/Dockerfile with ``line`` added at its end."""
    source = BENCH_DIR.parent / "images" / "Dockerfile"
    target = workdir / "Dockerfile.changed"
    target.write_text(source.read_text() + line + "\n")
    return target


def with_packages(inventory: Path, packages: list[str]) -> Path:
    """A copy of the lab inventory whose ``image.packages`` adds ``packages``."""
    text = inventory.read_text().replace(
        "image:\n", f"image:\n  packages: [{', '.join(packages)}]\n", 1
    )
    target = inventory.with_name("bench-packages.yml")
    target.write_text(text)
    return target
