"""The plain script daskfleet is measured against.

Host after host: ``docker save IMAGE | ssh HOST docker load``; then
``ssh HOST docker run`` of the same scheduler and worker commands daskfleet
plans (host network, same image, same CPU and memory limits); then wait
until every worker has registered with the scheduler.
"""

from __future__ import annotations

import shlex
import subprocess
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass

from distributed import Client
from distributed.versions import VersionMismatchWarning

from daskfleet.lab import LabState
from daskfleet.specs import ContainerSpec


@dataclass
class BaselineRun:
    wall: float
    #: Seconds of each host's ``save | ssh load``, in the order they ran.
    loads: dict[str, float]
    start_and_wait: float


def ssh_argv(state: LabState, address: str) -> list[str]:
    return [
        *("ssh", "-i", str(state.key_path), "-o", "BatchMode=yes"),
        *("-o", f"UserKnownHostsFile={state.known_hosts}"),
        f"root@{address}",
    ]


def docker_run_argv(spec: ContainerSpec, image: str) -> list[str]:
    argv = ["docker", "run", "-d", "--name", spec.name, "--network", "host"]
    argv += ["--init", "--restart", "unless-stopped"]
    argv += ["--cpus", str(spec.cpus), "--memory", str(spec.memory)]
    for key, value in spec.environment.items():
        argv += ["-e", f"{key}={value}"]
    return [*argv, image, *spec.command]


def load_image(state: LabState, address: str, image: str) -> None:
    save = ["docker", "-H", f"unix://{state.build_socket}", "save", image]
    saver = subprocess.Popen(save, stdout=subprocess.PIPE)
    load = [*ssh_argv(state, address), "docker", "load"]
    loader = subprocess.run(load, stdin=saver.stdout, capture_output=True)
    assert saver.stdout is not None
    saver.stdout.close()
    if saver.wait() != 0 or loader.returncode != 0:
        raise RuntimeError(f"load on {address} failed: {loader.stderr.decode()}")


def run_baseline(
    state: LabState, image: str, specs: Sequence[ContainerSpec], scheduler: str
) -> BaselineRun:
    addresses = {h.name: h.address for h in state.hosts}
    started = time.monotonic()
    loads = {}
    for host in state.hosts:
        begun = time.monotonic()
        load_image(state, host.address, image)
        loads[host.name] = time.monotonic() - begun

    begun = time.monotonic()
    for spec in sorted(specs, key=lambda s: s.role != "scheduler"):
        command = shlex.join(docker_run_argv(spec, image))
        remote = [*ssh_argv(state, addresses[spec.host]), command]
        subprocess.run(remote, check=True, capture_output=True)
    workers = sum(len(s.worker_names) for s in specs)
    # Python 3.11.x micro versions differ between controller and image.
    warnings.simplefilter("ignore", VersionMismatchWarning)
    with Client(scheduler, timeout=60) as client:  # type: ignore[no-untyped-call]
        client.wait_for_workers(workers, timeout=120)
    end = time.monotonic()
    return BaselineRun(end - started, loads, end - begun)
