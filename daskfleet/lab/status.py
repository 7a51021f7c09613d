"""Observed state of a lab: which namespaces and daemons are alive."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from daskfleet.lab import dockerd, network, sshd, uplink
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
    #: Whether this host should run a dockerd (not in an sshd-only lab).
    docker: bool = True

    @property
    def ok(self) -> bool:
        docker_ok = self.dockerd_pid is not None and self.docker_answers
        return (
            self.netns and self.sshd_pid is not None and (docker_ok or not self.docker)
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
    #: Whether the lab runs Docker daemons (not ``lab up --no-docker``).
    docker: bool = True
    #: The uplink limit the lab was brought up with (``200mbit``), or None.
    uplink_rate: str | None = None
    #: The limit in force on the bridge now, in bytes per second, or None.
    uplink_bytes_per_second: int | None = None

    @property
    def ok(self) -> bool:
        hosts_ok = all(h.ok for h in self.hosts)
        build_ok = self.build_pid is not None and self.build_answers
        return hosts_ok and (build_ok or not self.docker) and self.uplink_ok

    @property
    def uplink_ok(self) -> bool:
        """The limit in force is the one asked for (or none of either)."""
        if self.uplink_rate is None:
            return self.uplink_bytes_per_second is None
        expected = uplink.bits_per_second(self.uplink_rate) / 8
        found = self.uplink_bytes_per_second
        return found is not None and abs(found - expected) <= expected * 0.01

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["ok"] = self.ok
        data["uplink_ok"] = self.uplink_ok
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
                docker=state.docker,
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
        docker=state.docker,
        uplink_rate=state.uplink_rate,
        uplink_bytes_per_second=uplink.observed_rate(config),
    )
