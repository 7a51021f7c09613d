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


class _Opened:
    """Stands in for an open fabric Connection in the bound tests below."""

    is_connected = True


class _HandshakeLog:
    """Records how many handshakes run at once; waits for ``together`` of them."""

    def __init__(self, together: int) -> None:
        self.barrier = threading.Barrier(together, timeout=30)
        self.lock = threading.Lock()
        self.active = self.most = self.calls = 0

    def __call__(self, host: Host, options: object) -> _Opened:
        with self.lock:
            self.active += 1
            self.calls += 1
            self.most = max(self.most, self.active)
        self.barrier.wait()  # breaks (and fails the test) unless `together` overlap
        with self.lock:
            self.active -= 1
        return _Opened()


def _connect_all(
    monkeypatch: pytest.MonkeyPatch, inv: Inventory, log: _HandshakeLog, **bounds: int
) -> SSHFleet:
    monkeypatch.setattr("daskfleet.ssh.fleet.open_connection", log)
    fleet = SSHFleet(inv, **bounds)  # type: ignore[arg-type]
    results = fleet.map(fleet.connection)
    assert results.ok, results
    return fleet


def test_handshakes_to_one_server_are_bounded_by_max_parallel(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Twelve names for one sshd (one address and port).
    hosts = {f"h{i}": Host(name=f"h{i}", address="10.0.0.1") for i in range(12)}
    log = _HandshakeLog(together=3)
    fleet = _connect_all(
        monkeypatch,
        Inventory(path="i.yml", cluster="t", hosts=hosts),
        log,
        max_parallel=3,
        max_handshakes=32,
    )
    assert log.most == 3
    assert fleet.handshakes == log.calls == 12


def test_handshakes_to_many_servers_are_bounded_by_max_handshakes(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    log = _HandshakeLog(together=6)
    fleet = _connect_all(
        monkeypatch, inventory(24), log, max_parallel=2, max_handshakes=6
    )
    assert log.most == 6
    # Connections are kept: asking again opens nothing.
    for host in fleet.inventory.hosts.values():
        fleet.connection(host)
    assert fleet.handshakes == log.calls == 24
