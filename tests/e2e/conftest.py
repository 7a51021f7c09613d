"""The lab fleet every end-to-end test runs on: one per test session.

Three real hosts (network namespaces with their own sshd and dockerd), host
1 the scheduler. The lab has its own name and subnet, so it never touches a
lab the user brought up by hand, and it is torn down even when tests fail.
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from distributed import Client

from daskfleet.client import open_client
from daskfleet.inventory import load_inventory
from daskfleet.lab import LabConfig, LabState, lab_down, lab_up
from daskfleet.lab import sshd as lab_sshd
from daskfleet.lab.requirements import missing_commands
from daskfleet.specs import scheduler_address
from daskfleet.tls import client_security

#: Another name (and with it another subnet) lets two test runs share a machine.
LAB_NAME = os.environ.get("DASKFLEET_E2E_LAB", "e2e")
LAB_SUBNET = ipaddress.IPv4Network("10.213.7.0/24") if LAB_NAME == "e2e" else None
LAB_HOSTS = 3


@dataclass
class Lab:
    """The session's lab, with the handles tests need to break and heal it."""

    config: LabConfig
    state: LabState

    @property
    def inventory_path(self) -> Path:
        return self.state.inventory_path

    @property
    def build_socket(self) -> Path:
        return self.state.build_socket

    @property
    def host_names(self) -> list[str]:
        return [h.name for h in self.state.hosts]

    def host_socket(self, name: str) -> Path:
        return self.state.host(name).docker_socket

    def stop_sshd(self, name: str) -> None:
        lab_sshd.stop(self.config.host(self.host_names.index(name) + 1))

    def start_sshd(self, name: str) -> None:
        lab_sshd.start(self.config.host(self.host_names.index(name) + 1))


@pytest.fixture(scope="session", autouse=True)
def deploy_history(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Keep test clusters' history, certificates and bundles out of ~."""
    names = ("DASKFLEET_STATE_DIR", "DASKFLEET_CONFIG_DIR")
    saved = {name: os.environ.get(name) for name in names}
    for name in names:
        os.environ[name] = str(tmp_path_factory.mktemp(name.lower()))
    yield
    for name, value in saved.items():
        if value is None:
            del os.environ[name]
        else:
            os.environ[name] = value


@pytest.fixture(scope="session")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    if os.geteuid() != 0:
        pytest.fail("the end-to-end tests need root: they build a lab fleet")
    missing = missing_commands()
    if missing:
        needed = ", ".join(sorted(set(missing.values())))
        pytest.fail(
            f"the lab needs the Debian packages {needed}: run scripts/bootstrap"
        )
    config = LabConfig(LAB_NAME, subnet=LAB_SUBNET)
    inventory = tmp_path_factory.mktemp("lab") / "lab.yml"
    try:
        yield Lab(config, lab_up(config, hosts=LAB_HOSTS, inventory_path=inventory))
    finally:
        lab_down(config, purge=True)


def cluster_client(
    inventory: Path | str, address: str | None = None, *, timeout: float = 30
) -> Client:
    """A Client of the inventory's cluster, with its client certificate when
    TLS is on; ``address`` replaces the scheduler's (a tunnel's local port)."""
    loaded = load_inventory(Path(inventory))
    return open_client(
        address or scheduler_address(loaded),
        timeout=timeout,
        security=client_security(loaded),
    )


@pytest.fixture(scope="session")
def connect() -> Callable[..., Client]:
    """:func:`cluster_client`, for tests: ``connect(inventory_path)``."""
    return cluster_client
