"""What the steps of one deploy share: hosts, connections, findings, recap."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Protocol, TypeVar

from daskfleet.deploy.recap import Recap
from daskfleet.facts import Facts
from daskfleet.images import BuiltImage, HostImages, ImageArchive
from daskfleet.inventory.model import Host, Inventory
from daskfleet.notebook import NotebookImage
from daskfleet.plan import Observed, Plan
from daskfleet.remote_docker import FleetDocker
from daskfleet.ssh import SSHFleet

logger = logging.getLogger(__name__)
T = TypeVar("T")


class DeployEvents(Protocol):
    """Progress a front end may show; every method is optional to act on."""

    def stage(self, name: str) -> None: ...
    def ship_start(self, host: str, total: int) -> None: ...
    def ship_advance(self, host: str, nbytes: int) -> None: ...
    def ship_end(self, host: str) -> None: ...


class QuietEvents:
    """Events that show nothing: for library callers and ``--json``."""

    def stage(self, name: str) -> None:
        logger.info("== %s", name)

    def ship_start(self, host: str, total: int) -> None:
        pass

    def ship_advance(self, host: str, nbytes: int) -> None:
        pass

    def ship_end(self, host: str) -> None:
        pass


@dataclass(frozen=True)
class DeployOptions:
    """How to run: check mode, host limit, health timeout, host-key policy."""

    check: bool = False
    limit: str | None = None
    timeout: float | None = None
    accept_new_host_keys: bool = False
    connect_timeout: float = 10.0
    #: Seconds to wait for another run's deploy lock; 0: fail at once.
    lock_wait: float = 0.0


@dataclass
class DeployContext:
    """State one deploy builds up, step by step."""

    inventory: Inventory
    options: DeployOptions
    fleet: SSHFleet
    docker: FleetDocker
    recap: Recap
    events: DeployEvents
    hosts: tuple[Host, ...]
    facts: dict[str, Facts] = field(default_factory=dict)
    observed: dict[str, Observed] = field(default_factory=dict)
    host_images: dict[str, HostImages] = field(default_factory=dict)
    image: BuiltImage | None = None
    archive: ImageArchive | None = None
    plan: Plan | None = None
    #: The notebook's image and token, when the inventory asks for one.
    notebook: NotebookImage | None = None

    def healthy_hosts(self, names: Iterable[str] | None = None) -> list[Host]:
        """Selected hosts (or those named) with no failure recorded yet."""
        wanted = set(names) if names is not None else None
        return [
            h
            for h in self.hosts
            if (wanted is None or h.name in wanted)
            and not self.recap.hosts[h.name].errors
        ]

    def on_hosts(self, hosts: Iterable[Host], fn: Callable[[Host], T]) -> dict[str, T]:
        """Run ``fn`` on hosts in parallel; failures go into the recap."""
        results = self.fleet.map(fn, list(hosts))
        for name, result in results.items():
            recap = self.recap.hosts[name]
            recap.seconds += result.seconds
            if result.error is not None:
                recap.fail(result.error)
        return {n: r.value for n, r in results.items() if r.ok}  # type: ignore[misc]

    @property
    def timeout(self) -> float:
        return self.options.timeout or self.inventory.timeout
