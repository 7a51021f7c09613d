"""SSHFleet.map: per-host results, no host hiding another (no network)."""

from __future__ import annotations

import threading

import pytest

from daskfleet.errors import HostError, UnreachableError
from daskfleet.inventory.model import Host, Inventory
from daskfleet.ssh import SSHFleet


def inventory(count: int) -> Inventory:
    hosts = {f"h{i}": Host(name=f"h{i}", address=f"10.0.0.{i}") for i in range(count)}
    return Inventory(path="inv.yml", cluster="test", hosts=hosts)


def test_map_keeps_inventory_order_and_values() -> None:
    with SSHFleet(inventory(5)) as fleet:
        results = fleet.map(lambda host: host.address)
    assert list(results) == [f"h{i}" for i in range(5)]
    assert results["h3"].value == "10.0.0.3"
    assert results.ok


def test_one_failing_host_does_not_hide_the_others() -> None:
    def work(host: Host) -> str:
        if host.name == "h1":
            raise UnreachableError(host.name, "down")
        return "fine"

    with SSHFleet(inventory(3)) as fleet:
        results = fleet.map(work)
    assert set(results.succeeded) == {"h0", "h2"}
    assert results["h1"].unreachable
    assert not results.ok


def test_unexpected_exceptions_become_host_errors(
    caplog: pytest.LogCaptureFixture,
) -> None:
    def work(host: Host) -> str:
        raise KeyError("surprise")

    caplog.set_level("DEBUG", logger="daskfleet.ssh.fleet")
    with SSHFleet(inventory(1)) as fleet:
        results = fleet.map(work)
    error = results["h0"].error
    assert isinstance(error, HostError)
    assert str(error) == "h0: unexpected KeyError: 'surprise'"
    assert "Traceback" in caplog.text


def test_map_over_a_subset() -> None:
    inv = inventory(4)
    with SSHFleet(inv) as fleet:
        results = fleet.map(lambda host: 1, [inv.hosts["h2"]])
    assert list(results) == ["h2"]


def test_map_runs_hosts_in_parallel() -> None:
    barrier = threading.Barrier(6, timeout=5)

    def work(host: Host) -> bool:
        barrier.wait()
        return True

    # Six hosts meet at the barrier only if all six run at once; a serial
    # map would break the barrier and fail every host.
    with SSHFleet(inventory(6), workers=6) as fleet:
        results = fleet.map(work)
    assert results.ok
