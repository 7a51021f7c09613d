"""Observed state of a lab: which namespaces and daemons are alive."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from daskfleet.lab import dockerd, network, sshd
from daskfleet.lab.config import LabConfig
from daskfleet.lab.state import load_state


@dataclass(frozen=True)
class HostStatus:
    """One lab host as observed now."""

    name: str
    address: str
    netns: bool
    sshd_pid: int | None
    dockerd_pid: int | None
    docker_answers: bool

    @property
    def ok(self) -> bool:
        return (
            self.netns
            and self.sshd_pid is not None
            and self.dockerd_pid is not None
            and self.docker_answers
        )


@dataclass(frozen=True)
class LabStatus:
    """Every host and the build daemon of one lab."""

    name: str
    subnet: str
    hosts: tuple[HostStatus, ...]
    build_pid: int | None
    build_answers: bool
    build_socket: str

    @property
    def ok(self) -> bool:
        hosts_ok = all(h.ok for h in self.hosts)
        return hosts_ok and self.build_pid is not None and self.build_answers

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["ok"] = self.ok
        for host, row in zip(self.hosts, data["hosts"], strict=True):
            row["ok"] = host.ok
        return data


def lab_status(config: LabConfig) -> LabStatus:
    """Look at every host and the build daemon of a lab brought up before."""
    state = load_state(config.name, config)
    rows = []
    for saved in state.hosts:
        index = int(saved.name[len(config.name) :])
        host = config.host(index)
        spec = dockerd.host_daemon(host)
        rows.append(
            HostStatus(
                name=host.name,
                address=host.address,
                netns=network.netns_usable(host),
                sshd_pid=sshd.sshd_pid(host),
                dockerd_pid=dockerd.dockerd_pid(spec),
                docker_answers=dockerd.ping(spec.socket),
            )
        )
    build = dockerd.build_daemon(config)
    return LabStatus(
        name=config.name,
        subnet=str(config.network),
        hosts=tuple(rows),
        build_pid=dockerd.dockerd_pid(build),
        build_answers=dockerd.ping(build.socket),
        build_socket=str(build.socket),
    )
