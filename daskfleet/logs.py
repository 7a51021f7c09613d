"""The cluster's container logs, host by host, container by container."""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from contextlib import closing
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

import docker
from docker.models.containers import Container

from daskfleet.containers import cluster_containers
from daskfleet.inventory.model import Host, Role
from daskfleet.remote_docker import FleetDocker
from daskfleet.results import Results
from daskfleet.specs import LABEL_ROLE
from daskfleet.ssh import SSHFleet

logger = logging.getLogger(__name__)

DEFAULT_TAIL = 100
_DURATION = re.compile(r"(\d+(?:\.\d+)?)([smhd])")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
#: Scheduler first, then workers, then anything else.
_ROLE_ORDER = {"scheduler": 0, "worker": 1}


@dataclass(frozen=True)
class LogRequest:
    """Which containers and how much of their logs."""

    role: Role | None = None
    tail: int | None = DEFAULT_TAIL
    since: datetime | None = None


@dataclass(frozen=True)
class ContainerLog:
    """The last lines of one container's output (stdout and stderr)."""

    host: str
    name: str
    role: str
    state: str
    lines: tuple[str, ...]

    @property
    def header(self) -> str:
        return f"==> {self.host} {self.name} ({self.role}, {self.state}) <=="

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "role": self.role,
            "state": self.state,
            "lines": list(self.lines),
        }


def collect_logs(
    cluster: str,
    hosts: Sequence[Host],
    fleet: SSHFleet,
    request: LogRequest | None = None,
) -> Results[list[ContainerLog]]:
    """Each host's cluster containers' logs; failures stay per host."""
    request = request or LogRequest()
    with closing(FleetDocker(fleet)) as fleet_docker:
        return fleet.map(
            lambda h: host_logs(fleet_docker.client(h), h.name, cluster, request),
            hosts,
        )


def host_logs(
    client: docker.DockerClient, host: str, cluster: str, request: LogRequest
) -> list[ContainerLog]:
    """The logs of one host's containers of ``cluster``, scheduler first."""
    containers = [
        c
        for c in cluster_containers(client, cluster)
        if request.role is None or c.labels.get(LABEL_ROLE) == request.role
    ]
    logs = [_container_log(host, c, request) for c in containers]
    return sorted(logs, key=lambda log: (_ROLE_ORDER.get(log.role, 2), log.name))


def _container_log(
    host: str, container: Container, request: LogRequest
) -> ContainerLog:
    kwargs: dict[str, Any] = {"timestamps": False}
    kwargs["tail"] = "all" if request.tail is None else request.tail
    if request.since is not None:
        # An epoch number: the SDK drops the zone of a datetime it is given.
        kwargs["since"] = request.since.timestamp()
    raw: bytes = container.logs(**kwargs)
    logger.debug("%s: %d bytes of logs from %s", host, len(raw), container.name)
    return ContainerLog(
        host,
        container.name,
        container.labels.get(LABEL_ROLE, "unknown"),
        container.status,
        split_lines(raw),
    )


def split_lines(raw: bytes) -> tuple[str, ...]:
    """Decoded lines, without their endings; undecodable bytes replaced."""
    return tuple(raw.decode("utf-8", errors="replace").splitlines())


def parse_since(text: str, now: datetime | None = None) -> datetime:
    """A start time: ``90s``, ``10m``, ``1h30m``, ``2d`` ago, or ISO 8601.

    Raises ValueError naming the accepted forms.
    """
    now = now or datetime.now(timezone.utc)
    spec = text.strip().lower()
    parts = _DURATION.findall(spec)
    if parts and "".join(a + u for a, u in parts) == spec:
        seconds = sum(float(a) * _UNIT_SECONDS[u] for a, u in parts)
        return now - timedelta(seconds=seconds)
    try:
        stamp = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ValueError(
            f"{text!r} is neither a duration (90s, 10m, 1h30m, 2d) nor an ISO time (2024-05-01T12:00)"
        ) from None
    # A time without a zone is the controller's local time.
    return stamp.astimezone(timezone.utc)
