"""What a running lab looks like, saved as JSON in its state dir.

Other parts of daskfleet (and the test-suite) read it back by lab name to
find a host's Docker socket or the build daemon's socket.
"""

from __future__ import annotations

import ipaddress
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from daskfleet.errors import LabError
from daskfleet.lab.baseimage import BASE_IMAGE
from daskfleet.lab.config import DEFAULT_NAME, HostConfig, LabConfig

STATE_VERSION = 1
#: Per-host defaults written into the lab inventory (fit a 2-core machine).
HOST_CPUS = 1
HOST_MEMORY = "2GiB"
#: A host with simulated GPUs: one worker container per GPU, whose memory
#: and CPUs are split between them (4 GPUs: 1GiB each, 2 sharing each CPU).
GPU_HOST_CPUS = min(2, os.cpu_count() or 1)
GPU_HOST_MEMORY = "4GiB"


@dataclass(frozen=True)
class LabHost:
    """One host of a running lab."""

    name: str
    address: str
    netns: str
    host_dir: Path
    docker_socket: Path
    #: Simulated GPUs (see :mod:`daskfleet.lab.gpu_standins`).
    gpus: int = 0

    @classmethod
    def from_config(cls, host: HostConfig, gpus: int = 0) -> LabHost:
        return cls(
            host.name,
            host.address,
            host.netns,
            host.host_dir,
            host.docker_socket,
            gpus,
        )


@dataclass(frozen=True)
class LabState:
    """A lab as ``lab up`` left it."""

    name: str
    subnet: str
    state_dir: Path
    hosts: tuple[LabHost, ...]
    key_path: Path
    known_hosts: Path
    build_socket: Path
    inventory_path: Path
    #: False for a lab of sshd-only hosts (``lab up --no-docker``).
    docker: bool = True
    #: The controller's rate limit towards the hosts (``200mbit``), or None.
    uplink_rate: str | None = None

    def host(self, name: str) -> LabHost:
        for host in self.hosts:
            if host.name == name:
                return host
        known = ", ".join(h.name for h in self.hosts)
        raise LabError(f"lab {self.name!r} has no host {name!r} (hosts: {known})")

    def to_json(self) -> str:
        data: dict[str, Any] = {
            "version": STATE_VERSION,
            "name": self.name,
            "subnet": self.subnet,
            "state_dir": str(self.state_dir),
            "key_path": str(self.key_path),
            "known_hosts": str(self.known_hosts),
            "build_socket": str(self.build_socket),
            "inventory_path": str(self.inventory_path),
            "docker": self.docker,
            "uplink_rate": self.uplink_rate,
            "hosts": [
                {
                    "name": h.name,
                    "address": h.address,
                    "netns": h.netns,
                    "host_dir": str(h.host_dir),
                    "docker_socket": str(h.docker_socket),
                    "gpus": h.gpus,
                }
                for h in self.hosts
            ],
        }
        return json.dumps(data, indent=2) + "\n"

    @classmethod
    def from_json(cls, text: str) -> LabState:
        data = json.loads(text)
        hosts = tuple(
            LabHost(
                h["name"],
                h["address"],
                h["netns"],
                Path(h["host_dir"]),
                Path(h["docker_socket"]),
                int(h.get("gpus", 0)),
            )
            for h in data["hosts"]
        )
        return cls(
            name=data["name"],
            subnet=data["subnet"],
            state_dir=Path(data["state_dir"]),
            hosts=hosts,
            key_path=Path(data["key_path"]),
            known_hosts=Path(data["known_hosts"]),
            build_socket=Path(data["build_socket"]),
            inventory_path=Path(data["inventory_path"]),
            docker=bool(data.get("docker", True)),
            uplink_rate=data.get("uplink_rate"),
        )


def load_state(name: str = DEFAULT_NAME, config: LabConfig | None = None) -> LabState:
    """The saved state of lab ``name``; LabError when it was never brought up."""
    config = config or LabConfig(name)
    try:
        return LabState.from_json(config.state_file.read_text())
    except FileNotFoundError:
        raise LabError(
            f"no lab named {name!r}: {config.state_file} does not exist",
            hint=f"daskfleet lab up --name {name}",
        ) from None
    except (ValueError, KeyError) as exc:
        raise LabError(f"cannot read lab state {config.state_file}: {exc}") from exc


def saved_state(config: LabConfig) -> LabState | None:
    """The saved state of ``config``'s lab, or None when it has none."""
    if not config.state_file.exists():
        return None
    return load_state(config.name, config)


def saved_config(
    name: str = DEFAULT_NAME, subnet: ipaddress.IPv4Network | None = None
) -> LabConfig:
    """The config of lab ``name``: ``subnet`` if given, else the one it was
    brought up with, else the default derived from the name."""
    if subnet is None:
        probe = LabConfig(name)
        if probe.state_file.exists():
            subnet = ipaddress.IPv4Network(load_state(name, probe).subnet)
    return LabConfig(name, subnet=subnet)


def host_docker_socket(name: str, host: str) -> Path:
    """The Docker socket of host ``host`` of lab ``name``."""
    return load_state(name).host(host).docker_socket


def build_socket(name: str = DEFAULT_NAME) -> Path:
    """The build daemon's Docker socket of lab ``name``."""
    return load_state(name).build_socket


_PLAIN = re.compile(r"^[A-Za-z0-9_./-]+$")


def _yaml_scalar(value: str) -> str:
    return value if _PLAIN.match(value) else json.dumps(value)


def render_inventory(state: LabState) -> str:
    """The lab's inventory in daskfleet's native format."""
    defaults = ", ".join(
        [
            "user: root",
            "port: 22",
            f"identity_file: {_yaml_scalar(str(state.key_path))}",
            f"known_hosts: {_yaml_scalar(str(state.known_hosts))}",
            f"cpus: {HOST_CPUS}",
            f"memory: {HOST_MEMORY}",
        ]
    )
    lines = [
        f"# Generated by `daskfleet lab up` for lab {state.name!r}; rewritten on",
        "# every run. Host 1 runs the scheduler, the others run workers.",
        *_gpu_comment(state),
        *_no_docker_comment(state),
        f"cluster: {state.name}",
        f"defaults: {{{defaults}}}",
        "image:",
        f"  base: {BASE_IMAGE}",
        f"  builder: {_yaml_scalar('unix://' + str(state.build_socket))}",
        "hosts:",
    ]
    for index, host in enumerate(state.hosts):
        extra = ", roles: [scheduler]" if index == 0 else ""
        if host.gpus:
            extra += (
                f", gpus: all, gpu_worker: plain, cpus: {GPU_HOST_CPUS}"
                f", memory: {GPU_HOST_MEMORY}"
            )
        lines.append(f"  {host.name}: {{address: {host.address}{extra}}}")
    return "\n".join(lines) + "\n"


def _no_docker_comment(state: LabState) -> list[str]:
    if state.docker:
        return []
    return [
        "# sshd only (lab up --no-docker): no host runs a Docker daemon; facts",
        "# and exec work here, ping and deploy (which need Docker) do not.",
    ]


def _gpu_comment(state: LabState) -> list[str]:
    gpu_hosts = [h for h in state.hosts if h.gpus]
    return [
        f"# {h.name} has {h.gpus} simulated GPUs (lab stand-ins for nvidia-smi and"
        " the container hook): plain Dask workers, one per GPU."
        for h in gpu_hosts
    ]
